"""What language a piece of text is in, offline: scripts, simplified-only characters, function
words. The ``language_mixing`` filter's machinery (``filters.language_mixing``), pure functions,
applied to ``prose.prose`` of a text (what is not prose removed).

``language`` names the language of a text (a code, or ``latin`` / ``cjk`` when only the script
is sure); ``uniform`` says when a whole text can hold only one language (the fast path, no
sentence is looked at); ``main_language`` is the language a text is written in throughout;
``foreign_sentences`` the sentences in none of the allowed languages.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import numpy as np

SCRIPTS = (
    "latin",
    "cjk",
    "kana",
    "hangul",
    "cyrillic",
    "greek",
    "arabic",
    "devanagari",
    "bengali",
    "thai",
    "hebrew",
    "other",
)

_SENTENCE = re.compile(r"[.!?;。！？；\n]+")
_LETTER = re.compile(r"[^\W\d_]")  # any Unicode letter
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ɏ]{2,}")
TRANSLATION = re.compile(
    r"translat|翻译|译成|译为|翻訳|訳して|訳す|번역|перевед|перевод|tradu[czi]|übersetz|অনুবাদ|แปล|ترجم"
    r"|用英文|用英语|用中文|用日语|英語で|日本語で|in english|into (english|chinese|french|german|spanish|japanese)",
    re.IGNORECASE,
)
# characters of simplified Chinese that Japanese does not use (its forms are 們 這 説 個 為 ...)
_SIMPLIFIED = frozenset(
    "们这说么个为还过对时吗呢让计题问间关开经发现实样两边进后从种类"
    "结买卖电脑读认识语话车门长东书马见鸟给钱钟头习颗块张辆岁总于应该觉"
)
_SIMPLIFIED_RX = re.compile("[" + "".join(sorted(_SIMPLIFIED)) + "]")
_STOPWORDS = {
    "en": "the and is are of to that this it we so with for what which be not have has let me you can will there "
    "then was were an as at by from on or if do does how its our their they would should each many much "
    "also but because when where who why into than these those all any",
    "de": "der die das und ist nicht ein eine mit zu von den dem sich auf für wir es ich dass wie sind auch noch bei "
    "aus einen einer wird werden oder aber im zum zur jede jeder wieviele viele kann muss hat haben sie was "
    "welche warum",
    "fr": "le la les et est des une un du que qui pour dans pas sur avec nous il ce cette sont au aux par mais donc je "
    "elle ils où chaque combien très aussi peut faut avons sommes quel quelle comment pourquoi",
    "es": "el la los las y es de que un una por para con se del al como más pero lo su hay entre está muy cada "
    "cuántos cuántas tiene puede entonces ahora también cuando porque este esta estos sus qué cuál cómo dónde",
    "it": "il lo gli e è di che una con sono della del nel alla anche più questo ogni quanti molto perché allora",
    "pt": "o os e é de que não um uma para com da em por dos das mais como cada quantos tem também muito você então "
    "isso",
}
# only the words that tell the languages apart ("de", "que", "la" are in several of them)
_SHARED = {w for w, n in Counter(w for words in _STOPWORDS.values() for w in set(words.split())).items() if n > 1}
_STOP = {lang: frozenset(words.split()) - _SHARED for lang, words in _STOPWORDS.items()}
# letters and marks only some of them use, and French elisions (l'on, d'accord, qu'il, c'est)
_CUES = {
    "es": re.compile(r"[¿¡ñ]|(?<=[a-zá-ú]{2} )y(?= [a-zá-ú]{2})"),
    "de": re.compile(r"[ßäöü]"),
    "pt": re.compile(r"[ãõ]"),
    "fr": re.compile(r"\b(?:l|d|qu|c|j|n|s)['’][a-zà-ÿ]|[œêû]"),
}


_CUE_CHARS = {"es": "¿¡ñ", "de": "ßäöü", "pt": "ãõ", "fr": "'’œêû"}


def _cues(low: str, lang: str) -> int:
    cue = _CUES.get(lang)
    if cue is None or not (any(c in low for c in _CUE_CHARS[lang]) or (lang == "es" and " y " in low)):
        return 0  # none of its marks: skip the regex
    return len(cue.findall(low))


LATIN_WORD = re.compile(r"[A-Za-zÀ-ɏ]+")
_BY_SCRIPT = {
    "hangul": "ko",
    "cyrillic": "ru",
    "greek": "el",
    "arabic": "ar",
    "devanagari": "hi",
    "bengali": "bn",
    "thai": "th",
    "hebrew": "he",
}
# a CJK character or a hangul syllable carries about what three Latin letters do
_WEIGHT = {"cjk": 3, "kana": 2, "hangul": 3}
AMBIGUOUS = {"latin": {"en", "de", "fr", "es", "it", "pt"}, "cjk": {"zh", "ja"}}


def script_of(ch: str) -> str | None:
    """The script of one letter, or None for anything that is not a letter."""
    o = ord(ch)
    if ch.isascii():
        return "latin" if ch.isalpha() else None
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "cjk"
    if 0x3040 <= o <= 0x30FF:
        return "kana"
    if 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF:
        return "hangul"
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "DEVANAGARI", "BENGALI", "THAI", "HEBREW"):
        if name.startswith(script):
            return script.lower()
    return "other"


_FAST = {  # scripts counted with one C-level regex each; the rest per character (rare)
    "latin": re.compile(r"[A-Za-z]"),
    "cjk": re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"),
    "kana": re.compile(r"[\u3040-\u30ff]"),
    "hangul": re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"),
}
_RANGES = {  # the same scripts as code point ranges, for counting whole regions with numpy
    "latin": [(0x41, 0x5A), (0x61, 0x7A)],
    "cjk": [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)],
    "kana": [(0x3040, 0x30FF)],
    "hangul": [(0xAC00, 0xD7AF), (0x1100, 0x11FF)],
}


_OTHER = re.compile(r"[^\W\d_\x00-\x7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff]")


def letter_counts(text: str) -> dict[str, int]:
    """Letters per script (punctuation, digits, symbols and spaces are not letters)."""
    if len(text) < 400:  # a sentence: a few C-level regex counts beat numpy's per-call overhead
        counts = {name: n for name, rx in _FAST.items() if (n := len(rx.findall(text)))}
        for ch in _OTHER.findall(text):
            if sc := script_of(ch):
                counts[sc] = counts.get(sc, 0) + 1
        return counts
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    counts, known = {}, np.zeros(len(cp), dtype=bool)
    for name, ranges in _RANGES.items():
        mask = np.zeros(len(cp), dtype=bool)
        for lo, hi in ranges:
            mask |= (cp >= lo) & (cp <= hi)
        if n := int(np.count_nonzero(mask)):
            counts[name] = n
        known |= mask
    for ch in _OTHER.findall(text):  # other scripts' letters, one by one (rare)
        sc = script_of(ch)
        if sc:
            counts[sc] = counts.get(sc, 0) + 1
    return counts


def dominant(counts: dict[str, int]) -> str | None:
    return max(counts, key=counts.get) if counts else None


def language(text: str, counts: dict[str, int] | None = None, short: bool = False) -> str | None:
    """The language of a piece of prose: a code (``en``, ``zh``, ``ja``, ...), ``latin`` / ``cjk``
    when only the script is sure, or None for no letters. ``short``: a short text (a prompt) may
    be placed by a single function word.

    >>> language("**合計得点:**"), language("我们这样计算"), language("これは本です"), language("GPU CUDA")
    ('cjk', 'zh', 'ja', 'latin')
    >>> language("Die Antwort ist zwölf, und das ist richtig"), language("Ответ: двенадцать")
    ('de', 'ru')
    """
    counts = letter_counts(text) if counts is None else counts
    if not counts:
        return None
    cjk, kana = counts.get("cjk", 0), counts.get("kana", 0)
    weighted = {k: v * _WEIGHT.get(k, 1) for k, v in counts.items()}
    if cjk + kana and weighted.get("cjk", 0) + weighted.get("kana", 0) >= max(weighted.values()):
        if kana >= 0.1 * (cjk + kana):
            return "ja"
        return "zh" if _SIMPLIFIED_RX.search(text) else "cjk"
    script = dominant(weighted)
    if script == "latin":
        low = text.lower()
        words = [w for w in LATIN_WORD.findall(low) if len(w) > 1]  # single letters are as often symbols
        hits = sorted(
            ((sum(w in stop for w in words) + _cues(low, lang), lang) for lang, stop in _STOP.items()), reverse=True
        )
        enough = 1 if short and len(words) <= 12 else 2  # a short question has few function words
        if len(words) >= (2 if short else 4) and hits[0][0] >= enough and hits[0][0] > hits[1][0]:
            return hits[0][1]
        return "latin"
    return _BY_SCRIPT.get(script, script)


_SCRIPT_CHARS = {
    "latin": "A-Za-z\u00c0-\u024f",
    "cjk": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "kana": "\u3040-\u30ff",
    "hangul": "\uac00-\ud7af\u1100-\u11ff",
    "cyrillic": "\u0400-\u04ff",
    "greek": "\u0370-\u03ff",
    "arabic": "\u0600-\u06ff",
    "devanagari": "\u0900-\u097f",
    "bengali": "\u0980-\u09ff",
    "thai": "\u0e00-\u0e7f",
    "hebrew": "\u0590-\u05ff",
}
_SCRIPTS_OF = {
    "zh": {"cjk"},
    "ja": {"cjk", "kana"},
    "ko": {"hangul", "cjk"},
    "cjk": {"cjk", "kana"},
    **{lang: {"latin"} for lang in AMBIGUOUS["latin"] | {"latin"}},
    **{lang: {script} for script, lang in _BY_SCRIPT.items()},
}
_OUTSIDE: dict[frozenset, re.Pattern] = {}


def _outside(scripts: frozenset) -> re.Pattern:
    """A letter of a script not in ``scripts`` (or of no script listed here)."""
    if scripts not in _OUTSIDE:
        inside = "".join(_SCRIPT_CHARS[x] for x in scripts)
        _OUTSIDE[scripts] = re.compile(f"[^\\W\\d_{inside}]")
    return _OUTSIDE[scripts]


def foreign_sentences(text: str, allowed: set) -> list[tuple[str, dict, str | None]]:
    """The sentences of ``text`` in none of the ``allowed`` languages, with their letter counts
    and language. Only sentences that could be foreign are looked at: those with letters of
    another script, and within a script the ones that can be confused (Latin-script languages
    when the text's function words are not all of one; kanji when a simplified-only character
    appears in Japanese text)."""
    allowed = {a for a in allowed if a}
    scripts = frozenset(x for a in allowed for x in _SCRIPTS_OF.get(a, ()))
    outside = _outside(scripts)
    latin = bool(allowed & AMBIGUOUS["latin"]) and uniform(text, {"latin": 1}) not in allowed
    kanji = "ja" in allowed and _SIMPLIFIED_RX.search(text) is not None
    out = []
    for sentence in _SENTENCE.split(text):
        if not (
            outside.search(sentence)
            or (latin and LATIN_WORD.search(sentence))
            or (kanji and _SIMPLIFIED_RX.search(sentence))
        ):
            continue
        counts = letter_counts(sentence)
        lang = language(sentence, counts)
        # a script-only guess (Latin words without function words: names, terms) is no language
        if lang not in (None, "latin") and not any(compatible(lang, a) for a in allowed):
            out.append((sentence, counts, lang))
    return out


def _weight(counts: dict[str, int]) -> int:
    return sum(v * _WEIGHT.get(k, 1) for k, v in counts.items())


_LATIN_RUN = {}


def _latin_run(words: int) -> re.Pattern:
    if words not in _LATIN_RUN:
        _LATIN_RUN[words] = re.compile(r"[A-Za-zÀ-ɏ]{2,}(?:[\s,'’-]+[A-Za-zÀ-ɏ]{2,}){" + str(words - 1) + ",}")
    return _LATIN_RUN[words]


def uniform(text: str, counts: dict[str, int], min_words: int = 4, min_chars: int = 4) -> str | None:
    """The language of a text that can hold only one (one script; Latin text whose function
    words are all of one language; kanji and kana without a simplified-only character), without
    looking at its sentences; None when it may mix. A minor script too thin to make a foreign
    sentence (no run of ``min_words`` Latin words, fewer than ``min_chars`` other letters: a
    variable ``x`` in Chinese text) does not count."""
    scripts = set(counts)
    if len(scripts) > 1:
        main = max(counts, key=lambda k: counts[k] * _WEIGHT.get(k, 1))
        scripts = {
            k
            for k in scripts
            if k == main or (_latin_run(min_words).search(text) if k == "latin" else counts[k] >= min_chars)
        }
    if scripts <= {"latin"}:
        low = text.lower()
        words = Counter(w for w in LATIN_WORD.findall(low) if len(w) > 1)
        hits = sorted(
            ((sum(words[w] for w in stop) + _cues(low, lang), lang) for lang, stop in _STOP.items()), reverse=True
        )
        return hits[0][1] if hits[0][0] >= 5 and hits[1][0] <= 0.05 * hits[0][0] else None
    if scripts <= {"cjk", "kana"}:
        simplified = _SIMPLIFIED_RX.search(text) is not None
        if "kana" in scripts:
            return None if simplified else "ja"
        return "zh" if simplified else "cjk"
    if len(scripts) == 1:
        return _BY_SCRIPT.get(next(iter(scripts)))
    return None


def main_language(
    text: str, share: float = 0.8, counts: dict | None = None, one: str | None = None, also: str | None = None
) -> str | None:
    """The language ``text`` is written in throughout: the one it starts in and whose sentences
    (or sentences that may be in it) hold at least ``share`` of its letters; None for a mixed text.
    ``counts`` / ``one``: its ``letter_counts`` and ``uniform`` language, when already known.
    ``also``: a language of another script whose passages do not count against it (the
    prompt's: an English thinking may draft the answer's headings in Chinese)."""
    counts = letter_counts(text) if counts is None else counts
    first = next((language(x) for x in _SENTENCE.split(text, 3)[:3] if _LETTER.search(x)), None)
    if one is not None or (one := uniform(text, counts)) is not None:
        return one if compatible(first, one) else None
    own = language(text, counts)
    if own is None:
        return None
    if first is None:
        first = next((language(x) for x in _SENTENCE.split(text) if _LETTER.search(x)), None)
    total = _weight(counts)
    if also and _SCRIPTS_OF.get(also) == _SCRIPTS_OF.get(own):
        also = None  # passages told apart by their script only: Spanish in English thinking counts
    other = sum(_weight(c) for _, c, _ in foreign_sentences(text, {own, also}))
    # a trace that starts in one language and drifts into another is not written in either
    return own if total - other >= share * total and compatible(first, own) else None


def compatible(a: str | None, b: str | None) -> bool:
    """Whether two languages (codes or ``latin`` / ``cjk``) may be the same."""
    if a is None or b is None or a == b:
        return True
    return b in AMBIGUOUS.get(a, ()) or a in AMBIGUOUS.get(b, ())


# --- code-switched words: a word of another script inside a sentence ("three equal整数 parts")
