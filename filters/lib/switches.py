"""Language switches a sentence-level reading cannot see, for ``language_mixing``: a single
code-switched word of another script inside prose ("three equal整数 parts"), the prompt's own
language when it pastes code or English terms, and the prompt's text quoted back in the thinking.
Pure functions over text; ``filters.lib.langid`` reads whole sentences.
"""

from __future__ import annotations

import re

from .langid import (
    _SCRIPTS_OF,
    _SIMPLIFIED,
    AMBIGUOUS,
    _outside,
    _weight,
    language,
    letter_counts,
    script_of,
)
from .prose import prose

# a run of letters of one non-Latin script (CJK, kana and hangul together: Japanese mixes kanji and kana)
_RUN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff]+"
    r"|[\u0400-\u04ff]+|[\u0370-\u03ff]+|[\u0600-\u06ff]+|[\u0590-\u05ff]+|[\u0900-\u097f]+"
    r"|[\u0980-\u09ff]+|[\u0e00-\u0e7f]+"
)
# how many letters a run of each script needs to be a word of prose: one character of a script that
# writes a word or syllable per character; an alphabet's word needs a few letters, and Greek more
# (single Greek letters and pairs are formula symbols: "the angle θ", "αβ")
_MIN_RUN = {"cjk": 1, "kana": 1, "hangul": 1, "greek": 4}
# characters written in Chinese but not in Japanese (simplified forms, Chinese-only pronouns and particles)
_CHINESE_ONLY = re.compile("[" + "".join(sorted((_SIMPLIFIED - set("后于")) | set("你您她吗呢吧"))) + "]")
# a sentence about words (a gloss, a translation, a term named in its language) mentions them: not a switch
_META = re.compile(
    r"chinese|japanese|korean|russian|greek|mandarin|kanji|hanzi|pinyin|hiragana|katakana|\bwords?\b"
    r"|\bterms?\b|\bcharacters?\b|\bmeans?\b|\bmeaning|translat|literally|\bcalled\b|中文|汉语|中国語"
    r"|漢字|汉字",
    re.IGNORECASE,
)
_GLOSS = re.compile(r"\s*[(（]\s*[A-Za-z]")
_SENTENCE_END = re.compile(r"[.!?。！？\n]")


def _sentence_around(text: str, start: int, end: int) -> str:
    """The sentence ``text[start:end]`` stands in (up to 300 characters either side)."""
    left = text[max(0, start - 300) : start]
    m = None
    for m in _SENTENCE_END.finditer(left):  # noqa: B007 - the loop leaves m at the last match
        pass
    left = left[m.end() :] if m else left
    right = text[end : end + 300]
    m = _SENTENCE_END.search(right)
    return left + text[start:end] + (right[: m.start()] if m else right)


def code_switches(text: str, allowed: set, prompt: str = "") -> list[tuple[str, str]]:
    """The words of ``text`` in a script that none of the ``allowed`` languages writes (a CJK or
    hangul character inside English prose, a Korean syllable inside Japanese; Latin is never one:
    terms and names in Latin letters are everywhere), and Chinese words inside Japanese (a kanji
    run with a character Japanese does not use): each with the sentence it stands in. Not counted:
    words the prompt contains (the model quotes it), and words in a sentence that talks about
    words ("the term 若干 in Chinese", "the word 乘 means times").

    >>> [w for w, _ in code_switches("Divide it into three equal整数 parts.", {"en"})]
    ['整数']
    >>> code_switches("The word 乘 means times. We need 合計 as the prompt says.", {"en"}, prompt="合計は？")
    []
    >>> [w for w, _ in code_switches("その믐（満月）の日。你现在的位置になりました。", {"ja"})]
    ['믐', '你现在的位置']
    >>> code_switches("The angle θ and αβ are symbols; so is Δx. It sounds like 積んでおく (tsunde oku).", {"en"})
    []
    >>> [w for w, _ in code_switches("The answer is a person using a轮椅 (four wheels) in the evening.", {"en"})]
    ['轮椅']
    """
    allowed = {a for a in allowed if a}
    scripts = frozenset(x for a in allowed for x in _SCRIPTS_OF.get(a, ()))
    japanese = "ja" in allowed and "zh" not in allowed and "cjk" not in allowed
    if not _outside(scripts | {"latin"}).search(text) and not (japanese and _CHINESE_ONLY.search(text)):
        return []
    out = []
    for m in _RUN.finditer(text):
        run = m.group()
        if japanese and "kana" in scripts:  # Japanese: a Chinese word is a kanji run with a Chinese-only character
            words = [
                w for w in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+", run) if _CHINESE_ONLY.search(w)
            ]
        else:
            words = []
        other = "".join(ch for ch in run if (sc := script_of(ch)) is not None and sc not in scripts)
        if other and len(other) >= _MIN_RUN.get(script_of(other[0]), 3):
            words.append(other)
        words = [w for w in words if w not in prompt]
        # a word set off by a space and glossed in parentheses is mentioned: "like 積んでおく (tsunde
        # oku)"; a switch is glued to the sentence ("using a轮椅 (four wheels)")
        if words and _GLOSS.match(text, m.end()) and (m.start() == 0 or not text[m.start() - 1].isalnum()):
            continue
        if words:
            sentence = _sentence_around(text, m.start(), m.end())
            if not _META.search(sentence):
                out += [(w, sentence.strip()) for w in words]
    return out


_WORD_SCRIPTS = ("cjk", "kana", "hangul")
_LATIN_ONLY = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def prompt_language(prompt: str) -> str | None:
    """The language a prompt is written in. Where its Latin words hold no function word (names,
    menu paths: "Xcode → Open Developer Tool 找不到"), or where its CJK / kana / hangul text is
    long (20+ characters) and not negligible (a tenth of its letters, weighted), the language of
    that script: a Chinese or Japanese user pastes English code, logs and documents into a
    question; the question's language is the user's.

    >>> prompt_language("Terminal Xcode → Open Developer Tool → Terminal 找不到Terminal")
    'cjk'
    >>> ask = "把这段代码的输出改成聊天气泡的样式，保留原来的功能"
    >>> prompt_language("The function returns the list of all the items " * 8 + ask)
    'zh'
    >>> prompt_language("What is 3 + 4?"), prompt_language("Wie viel ist drei plus vier?")
    ('en', 'de')
    """
    text = prose(prompt)
    counts = letter_counts(text)
    lang = language(text, counts, short=True)
    if lang not in AMBIGUOUS["latin"] | {"latin"}:
        return lang
    other = {k: v for k, v in counts.items() if k in _WORD_SCRIPTS}
    n = sum(other.values())
    if n >= 2 and (lang == "latin" or (n >= 20 and _weight(other) >= 0.1 * _weight(counts))):
        return language(_LATIN_ONLY.sub(" ", text), other)
    return lang


def unquote(text: str, prompt: str) -> str:
    """``text`` without the runs of non-Latin letters it copies from the prompt (a thinking that
    restates a Chinese question in English quotes it; the quote is not its own language)."""
    if not prompt or not _outside(frozenset({"latin"})).search(prompt):
        return text
    quoted = sorted({r for r in _RUN.findall(text) if len(r) > 1 and r in prompt}, key=len, reverse=True)
    if not quoted:
        return text
    # whole runs only: a run of the text that merely starts with a quoted one is the model's own
    edge = (
        r"\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u09ff\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf"
        r"\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff"
    )
    rx = re.compile(f"(?<![{edge}])(?:" + "|".join(map(re.escape, quoted)) + f")(?![{edge}])")
    return rx.sub(" ", text)
