"""``think_answer_mismatch`` and ``guesswork``: is the answer what the thinking worked out?

``think_answer_mismatch``: the conclusion the thinking reaches (its last ``\\boxed{}`` or "the
answer is ..." statement) must be equivalent to the final answer; the detail shows both. It does
not look at the reference: a final answer that matches the reference but contradicts the
thinking is still a mismatch (the student would learn to ignore its own reasoning).

``guesswork``: thinking that ends in an explicit guess ("I'll guess", "我猜"), or thinking too
short for the answer it claims (fewer than ``min_thinking_words`` words while stating an answer).

>>> m = ThinkAnswerMismatchFilter(MathVerifier())
>>> m.check(Sample("<think>\\n3+4=7. So the answer is 7.\\n</think>\\n\\n\\\\boxed{7}", True)).passed
True
>>> m.check(Sample("<think>\\n3+4=7. So the answer is 7.\\n</think>\\n\\n\\\\boxed{8}", True)).detail
"thinking concludes '7'; the answer says '8'"
>>> g = GuessworkFilter()
>>> g.check(Sample("<think>\\nNo idea how to do this, I'll just guess.\\n</think>\\n\\n\\\\boxed{3}", True)).reason
'explicit_guess'
>>> g.check(Sample("<think>\\nEasy.\\n</think>\\n\\n\\\\boxed{3}", True)).reason
'thinking_too_short'
"""

from __future__ import annotations

import re

from pydantic import Field

from .answers import AnswerMethod, MathVerifier, compare, extract_final
from .base import Filter, FilterConfig, Sample, Shared, Verdict, register

_GUESS = re.compile(
    r"\b(?:i'?ll|i will|let me|i'?m going to|i have to|i must|i'?d)\s+(?:just\s+|simply\s+)?guess\b"
    r"|\bmy (?:best )?guess\b|\bjust guess(?:ing)?\b|\b(?:random(?:ly)?|blind(?:ly)?) (?:pick|choose|guess)"
    r"|我猜|猜一个|蒙一个|随便选|随便猜|瞎猜",
    re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+|\d+|[\u3400-\u9fff]")


@register
class ThinkAnswerMismatchFilter(Filter):
    name = "think_answer_mismatch"

    class Config(FilterConfig):
        method: AnswerMethod = "auto"

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> "ThinkAnswerMismatchFilter":
        return cls(shared.verifier, settings.method)

    def __init__(self, verifier: MathVerifier, method: str = "auto"):
        self.verifier, self.method = verifier, method

    def check(self, s: Sample) -> Verdict:
        if not s.thinking_expected or not s.thinking.strip():
            return self.skip("skipped_no_thinking")
        concluded = extract_final(s.thinking)
        if concluded is None:
            return self.skip("skipped_no_conclusion", "the thinking states no answer (no \\boxed{}, no 'answer is')")
        stated = extract_final(s.answer)
        if stated is None:
            return self.skip("skipped_no_final_answer", "the answer states no final answer")
        equal, method, _ = compare(self.method, concluded, f"\\boxed{{{stated}}}", self.verifier)
        detail = f"thinking concludes {concluded!r}; the answer says {stated!r}"
        if equal is None:
            return self.skip("skipped_undecided", detail + f" ({method} comparison timed out)")
        return self.ok(1.0, detail) if equal else self.reject("think_answer_mismatch", 0.0, detail)


@register
class GuessworkFilter(Filter):
    name = "guesswork"

    class Config(FilterConfig):
        min_thinking_words: int = Field(default=5, ge=0)
        """Thinking shorter than this (words; a CJK character counts as one) that still states an
        answer is ``thinking_too_short``. 0 = off."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> "GuessworkFilter":
        return cls(settings.min_thinking_words)

    def __init__(self, min_thinking_words: int = 5, tail_chars: int = 400):
        self.min_words, self.tail_chars = min_thinking_words, tail_chars

    def check(self, s: Sample) -> Verdict:
        if not s.thinking_expected:
            return self.skip("skipped_no_thinking")
        m = _GUESS.search(s.thinking[-self.tail_chars:])
        if m:
            return self.reject("explicit_guess", detail=f"the thinking ends in a guess: {m.group(0)!r}")
        words = len(_WORD.findall(s.thinking))
        if words < self.min_words and not s.budget_hit and extract_final(s.answer) is not None:
            return self.reject("thinking_too_short", float(words),
                               f"{words} words of thinking for an answer of {len(s.answer)} chars "
                               f"(at least {self.min_words} expected)")
        return self.ok(float(words))
