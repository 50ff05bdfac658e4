"""``language_mixing``: thinking or answer switching into another language mid-way, and (its own
reason, off by default) thinking in another language than the prompt's.

Works offline, without a downloaded language-ID model: a text's language comes from its scripts
(kana = Japanese, hangul = Korean, Cyrillic, Arabic, Bengali, Thai, ...), Chinese and Japanese
kanji told apart by simplified-only characters (a kanji-only heading "**合計得点:**" in Japanese is
not Chinese), and Latin-script languages (en, de, fr, es, it, pt) by their function words.
Before that, what is not prose is removed: code, LaTeX, URLs, numbers, identifiers, quotations
(a cited title or phrase is not a switch). A sentence is foreign only if its language is known,
differs from the ones expected, and it is long enough to be prose (``min_foreign_words`` Latin
words, or ``min_foreign_chars`` letters of another script), so "GPU" or "CUDA" inside Chinese is
not mixing, but an English sentence is. A single word of a script none of the expected languages
writes is a switch on its own (QwQ's "three equal整数 parts", a Korean syllable in Japanese, a
Chinese-only word in Japanese), unless the prompt holds it or the sentence talks about words.

Expected: in the answer, the prompt's language; in the thinking, the prompt's language or the
thinking's own main one (Qwen3 and s1.1 think in English about a Japanese prompt: consistent,
not mixing). ``thinking_language: prompt`` rejects such a trace as ``thinking_language`` (some
users want the student to think in the prompt's language). A prompt that asks for a
translation is skipped (``skipped_translation``).

>>> f = LanguageMixingFilter()
>>> zh = "计算 3 加 4 的结果"
>>> f.check(Sample("<think>\\n先算个位，再用 GPU 验证。3+4=7。\\n</think>\\n\\n答案是 7。", True, prompt=zh)).passed
True
>>> mixed = "<think>\\n先算个位。Now I will add the tens digits and carry the one over.\\n</think>\\n\\n答案是 7。"
>>> v = f.check(Sample(mixed, True, prompt=zh))
>>> v.reason, v.detail.split(":")[0]
('language_mixing', 'thinking')
>>> f.check(Sample("<think>\\nThe user asks in Japanese for 3 + 4. That is 7.\\n</think>\\n\\n**答え:** 7 です。", True,
...                prompt="3 + 4 はいくつですか？")).passed
True
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register
from .lib.langid import (
    LATIN_WORD,
    TRANSLATION,
    compatible,
    dominant,
    foreign_sentences,
    language,
    letter_counts,
    main_language,
    uniform,
)
from .lib.prose import prose
from .lib.switches import code_switches, prompt_language, unquote

_HARMONY = re.compile(r"\s*analysis(?=[A-Z])")


def _harmony(thinking: str, answer: str) -> tuple[str, str]:
    """gpt-oss text served with harmony's special tokens stripped ("analysisWe need to ...
    assistantfinal...") has no think tags: its analysis channel is thinking, not answer.

    >>> _harmony("", "analysisWe need 7.assistantfinal答えは7です。")
    ('We need 7.', '答えは7です。')
    """
    if thinking or not (m := _HARMONY.match(answer)):
        return thinking, answer
    analysis, _, final = answer[m.end() :].partition("assistantfinal")
    return analysis, final


@register
class LanguageMixingFilter(Filter):
    name = "language_mixing"

    class Config(FilterConfig):
        expected: str = "auto"
        """The answer's language (``en``, ``zh``, ``ja``, ``ko``, ``ru``, ``de``, ...); ``auto`` = the prompt's."""
        thinking_language: Literal["any", "prompt"] = "any"
        """``prompt``: thinking mostly in another language than the prompt's is rejected as
        ``thinking_language``. ``any``: the thinking may be in its own language, consistently."""
        max_foreign_share: float = Field(default=0.05, ge=0, le=1)
        """Reject when foreign sentences hold this share of a region's letters ..."""
        max_foreign_sentences: int = Field(default=3, ge=1)
        """... or when there are this many foreign sentences."""
        min_foreign_words: int = Field(default=4, ge=1)
        """Latin words a sentence needs to count as an English (etc.) sentence, not a term like "GPU"."""
        min_foreign_chars: int = Field(default=4, ge=1)
        """Letters of a non-Latin script a sentence needs to count as foreign."""

    def __init__(self, settings: Config | None = None):
        self.s = settings or self.Config()

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> LanguageMixingFilter:
        return cls(settings)

    def check(self, sample: Sample) -> Verdict:
        if TRANSLATION.search(sample.prompt or ""):
            return self.skip("skipped_translation", "the prompt asks for a translation")
        # the budget's forced early-stop sentence is not the model's writing (and is English whatever
        # the prompt's language): judge what the model wrote
        thinking = sample.thinking.replace(sample.early_stop, " ") if sample.early_stop else sample.thinking
        thinking, answer = _harmony(thinking, sample.answer)
        prompt = prose(sample.prompt or "")
        thinking, answer = unquote(prose(thinking), prompt), prose(answer)
        expected = self.s.expected if self.s.expected != "auto" else prompt_language(sample.prompt or "")
        if expected is None:  # a prompt without words: hold the completion to its own main language
            expected = language(answer) or language(thinking)
        if expected is None:
            return self.ok(0.0, "no prose to check")
        s = self.s
        known = {}  # per region: its letter counts and, if it can hold only one, its language
        for text in (thinking, answer):
            counts = letter_counts(text)
            known[text] = (counts, uniform(text, counts, s.min_foreign_words, s.min_foreign_chars) if counts else None)
        own = main_language(thinking, counts=known[thinking][0], one=known[thinking][1], also=expected)
        if self.s.thinking_language == "prompt" and own and sample.thinking_expected and not compatible(own, expected):
            return self.reject("thinking_language", None, f"thinking in {own}, the prompt in {expected}")
        worst = None
        for where, text, allowed in (("thinking", thinking, {expected, own}), ("answer", answer, {expected})):
            v = self._region(text, where, allowed, *known[text], prompt=prompt)
            if not v.passed:
                return v
            worst = v if worst is None or (v.score or 0) > (worst.score or 0) else worst
        return worst

    def _region(self, text: str, where: str, allowed: set, region: dict, one: str | None, prompt: str = "") -> Verdict:
        s = self.s
        total = sum(region.values())
        foreign, first, n_sent = 0, None, 0
        expected = "/".join(sorted(a for a in allowed if a))
        # a word of a script none of the expected languages writes, inside their prose ("three
        # equal整数 parts"): one is a switch, however short (the sentence checks below need whole sentences)
        if switched := code_switches(text, allowed, prompt):
            word, sentence = switched[0]
            return self.reject(
                "language_mixing",
                None,
                f"{where}: {len(switched)} word(s) in another script where {expected} is expected; "
                f"first: {word!r} in {sentence[:80]!r}",
            )
        if one is not None and any(compatible(one, a) for a in allowed if a):
            return self.ok(0.0, f"{where}: {expected}")  # one language throughout, an expected one
        for sentence, counts, lang in foreign_sentences(text, allowed) if total else ():
            script = dominant(counts)
            long_enough = (
                len(LATIN_WORD.findall(sentence)) >= s.min_foreign_words
                if script == "latin"
                else counts[script] >= s.min_foreign_chars
            )
            if long_enough:
                foreign += sum(counts.values())
                n_sent += 1
                first = first or (lang, sentence.strip())
        share = foreign / total if total else 0.0
        if n_sent and (share >= s.max_foreign_share or n_sent >= s.max_foreign_sentences):
            lang, sentence = first
            return self.reject(
                "language_mixing",
                round(share, 3),
                f"{where}: {n_sent} sentence(s) in {lang} where {expected} is expected, "
                f"{share:.0%} of its letters; first: {sentence[:80]!r}",
            )
        return self.ok(round(share, 3), f"{where}: {expected}")
