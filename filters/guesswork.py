"""``guesswork``: thinking that ends in an explicit guess ("I'll guess", "我猜"), or thinking too
short for the answer it claims (fewer than ``min_thinking_words`` words while stating an answer).

>>> g = GuessworkFilter()
>>> g.check(Sample("<think>\\nNo idea how to do this, I'll just guess.\\n</think>\\n\\n\\\\boxed{3}", True)).reason
'explicit_guess'
>>> g.check(Sample("<think>\\nEasy.\\n</think>\\n\\n\\\\boxed{3}", True)).reason
'thinking_too_short'
"""

from __future__ import annotations

import re

from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register
from .lib.extract import final_span

_GUESS = re.compile(
    r"\b(?:i'?ll|i will|let me|i'?m going to|i have to|i must|i'?d)\s+(?:just\s+|simply\s+)?guess\b"
    r"|\bmy (?:best )?guess\b|\bjust guess(?:ing)?\b|\b(?:random(?:ly)?|blind(?:ly)?) (?:pick|choose|guess)"
    r"|\b(?:au hasard|al azar|a caso|наугад|угадаю|raten|tippe ich)\b"
    r"|我猜|猜一个|蒙一个|随便选|随便猜|瞎猜|適当に|当てずっぽう|勘で|추측|찍(?:어|겠|을)|대충 고르",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]|[^\W\d_\u3040-\u30ff\u3400-\u9fff]+|\d+")  # CJK: one per character


@register
class GuessworkFilter(Filter):
    name = "guesswork"

    class Config(FilterConfig):
        min_thinking_words: int = Field(default=5, ge=0)
        """Thinking shorter than this (words; a CJK character counts as one) that still states an
        answer is ``thinking_too_short``. 0 = off."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> GuessworkFilter:
        return cls(settings.min_thinking_words)

    def __init__(self, min_thinking_words: int = 5, tail_chars: int = 400):
        self.min_words, self.tail_chars = min_thinking_words, tail_chars

    def check(self, s: Sample) -> Verdict:
        if not s.thinking_expected:
            return self.skip("skipped_no_thinking")
        m = _GUESS.search(s.thinking[-self.tail_chars :])
        if m:
            return self.reject("explicit_guess", detail=f"the thinking ends in a guess: {m.group(0)!r}")
        words = len(_WORD.findall(s.thinking))
        if words < self.min_words and not s.budget_hit and final_span(s.answer) is not None:
            return self.reject(
                "thinking_too_short",
                float(words),
                f"{words} words of thinking for an answer of {len(s.answer)} chars "
                f"(at least {self.min_words} expected)",
            )
        return self.ok(float(words))
