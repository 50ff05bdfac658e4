"""``language_mixing``: thinking or answer switching into another language mid-way.

Works offline on Unicode scripts, not a downloaded language-ID model: the expected script comes
from the prompt (or config), and each sentence of the thinking and of the answer is assigned
the script most of its letters are in. Before that, what is not prose is removed: code blocks
and inline code, LaTeX, URLs, numbers, identifiers (``snake_case``, ``camelCase``, ``x2``). A
sentence counts as foreign only if it is mostly another script *and* long enough to be prose
(``min_foreign_words`` Latin words, or ``min_foreign_chars`` characters of another script), so
"GPU" or a Python keyword inside Chinese text is not mixing, but an English sentence is.
A prompt that asks for a translation is skipped (``skipped_translation``).

>>> f = LanguageMixingFilter()
>>> zh = "计算 3 加 4 的结果"
>>> f.check(Sample("<think>\\n先算个位，再用 GPU 验证。3+4=7。\\n</think>\\n\\n答案是 7。", True, prompt=zh)).passed
True
>>> v = f.check(Sample("<think>\\n先算个位。Now I will add the tens digits and carry the one over.\\n</think>\\n\\n答案是 7。", True, prompt=zh))
>>> v.reason, v.detail.split(":")[0]
('language_mixing', 'thinking')
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import numpy as np

from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register

SCRIPTS = ("latin", "cjk", "kana", "hangul", "cyrillic", "greek", "arabic", "devanagari", "other")

_STRIP = [
    re.compile(r"```.*?(```|$)", re.S),                     # fenced code (also unterminated)
    re.compile(r"`[^`\n]*`"),                               # inline code
    re.compile(r"\$\$.*?\$\$|\\\[.*?\\\]|\\\(.*?\\\)", re.S),  # display / inline LaTeX
    re.compile(r"\$[^$\n]*\$"),
    re.compile(r"\\[A-Za-z]+(\{[^{}]*\})*"),                # \commands with their arguments
    # identifiers, numbers, camelCase (ASCII \b and classes: \w would also eat adjacent CJK text)
    re.compile(r"\b(?:[A-Za-z_]*[0-9_][A-Za-z0-9_]*|[a-z]+[A-Z][A-Za-z0-9]*)\b", re.ASCII),
]
_URL = re.compile(r"https?://\S+|www\.\S+|\S+@\S+\.\w+")  # URLs, e-mails (only run when present)
_SENTENCE = re.compile(r"[.!?;。！？；\n]+")
_LETTER = re.compile(r"[^\W\d_]")  # any Unicode letter
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ɏ]{2,}")
_TRANSLATION = re.compile(
    r"translat|翻译|译成|译为|用英文|用英语|用中文|用日语|in english|into (english|chinese|french|german|spanish|japanese)",
    re.IGNORECASE)


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
    for script in ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "DEVANAGARI"):
        if name.startswith(script):
            return script.lower()
    return "other"


def prose(text: str) -> str:
    """``text`` without what is not prose (code, LaTeX, URLs, numbers, identifiers)."""
    for pattern in _STRIP[:-1]:
        text = pattern.sub(" ", text)
    if "://" in text or "www." in text or "@" in text:
        text = _URL.sub(" ", text)
    return _STRIP[-1].sub(" ", text)


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


def letter_counts(text: str) -> dict[str, int]:
    """Letters per script (punctuation, digits, symbols and spaces are not letters)."""
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    counts, known = {}, np.zeros(len(cp), dtype=bool)
    for name, ranges in _RANGES.items():
        mask = np.zeros(len(cp), dtype=bool)
        for lo, hi in ranges:
            mask |= (cp >= lo) & (cp <= hi)
        if n := int(np.count_nonzero(mask)):
            counts[name] = n
        known |= mask
    for code in cp[(cp >= 0x80) & ~known]:  # other scripts, letter by letter (rare)
        sc = script_of(chr(code))
        if sc:
            counts[sc] = counts.get(sc, 0) + 1
    return counts


def dominant(counts: dict[str, int]) -> str | None:
    return max(counts, key=counts.get) if counts else None


@register
class LanguageMixingFilter(Filter):
    name = "language_mixing"

    class Config(FilterConfig):
        expected: Literal["auto", "latin", "cjk", "kana", "hangul", "cyrillic", "greek", "arabic", "devanagari"] = "auto"
        """Expected script; ``auto`` = the prompt's dominant script."""
        max_foreign_share: float = Field(default=0.05, ge=0, le=1)
        """Reject when foreign sentences hold this share of a region's letters ..."""
        max_foreign_sentences: int = Field(default=3, ge=1)
        """... or when there are this many foreign sentences."""
        min_foreign_words: int = Field(default=4, ge=1)
        """Latin words a sentence needs to count as an English (etc.) sentence, not a term like "GPU"."""
        min_foreign_chars: int = Field(default=4, ge=1)
        """Letters of a non-Latin script a sentence needs to count as foreign."""
        min_share_in_sentence: float = Field(default=0.6, gt=0, le=1)
        """The foreign script's share of a sentence's letters for it to count as foreign."""

    def __init__(self, settings: Config | None = None):
        self.s = settings or self.Config()

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> "LanguageMixingFilter":
        return cls(settings)

    def check(self, sample: Sample) -> Verdict:
        if _TRANSLATION.search(sample.prompt or ""):
            return self.skip("skipped_translation", "the prompt asks for a translation")
        expected = self.s.expected
        if expected == "auto":
            expected = dominant(letter_counts(prose(sample.prompt or "")))
        if expected is None:  # a prompt without words: hold the completion to its own main script
            expected = dominant(letter_counts(prose(sample.thinking + " " + sample.answer)))
        if expected is None:
            return self.ok(0.0, "no prose to check")
        worst = None
        # the budget's forced early-stop sentence is not the model's writing (and is English whatever
        # the prompt's language): judge what the model wrote
        thinking = sample.thinking.replace(sample.early_stop, " ") if sample.early_stop else sample.thinking
        for where, text in (("thinking", thinking), ("answer", sample.answer)):
            v = self._region(text, where, expected)
            if v is not None and not v.passed:
                return v
            worst = v if worst is None or (v and (v.score or 0) > (worst.score or 0)) else worst
        return worst or self.ok(0.0)

    def _region(self, text: str, where: str, expected: str) -> Verdict | None:
        s = self.s
        text = prose(text)
        region = letter_counts(text)
        total = sum(region.values())
        if not total:
            return None
        if set(region) <= {expected}:  # one script throughout: nothing can be foreign
            return self.ok(0.0, f"{where}: {expected}")
        own = _FAST.get(expected)
        foreign, first, n_sent = 0, None, 0
        for sentence in _SENTENCE.split(text):
            n = len(_LETTER.findall(sentence))
            if not n:
                continue
            if own is not None and len(own.findall(sentence)) / n > 1 - s.min_share_in_sentence:
                continue  # mostly the expected script: cannot be a foreign sentence
            counts = letter_counts(sentence)
            script = dominant(counts)
            if script == expected or counts[script] / n < s.min_share_in_sentence:
                continue
            long_enough = (len(_LATIN_WORD.findall(sentence)) >= s.min_foreign_words if script == "latin"
                           else counts[script] >= s.min_foreign_chars)
            if long_enough:
                foreign += n
                n_sent += 1
                first = first or (script, sentence.strip())
        share = foreign / total
        if n_sent and (share >= s.max_foreign_share or n_sent >= s.max_foreign_sentences):
            script, sentence = first
            return self.reject("language_mixing", round(share, 3),
                               f"{where}: {n_sent} sentence(s) in {script} where {expected} is expected, "
                               f"{share:.0%} of its letters; first: {sentence[:80]!r}")
        return self.ok(round(share, 3), f"{where}: {expected}")
