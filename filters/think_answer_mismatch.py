"""``think_answer_mismatch``: is the answer what the thinking worked out?

``think_answer_mismatch``: the conclusion the end of the thinking reaches must state the same
value as the final answer: "400 worker bees" and ``\\boxed{400}`` agree, "x = 5" and "x = 4" do
not. Precision first: it judges only where the thinking states its conclusion explicitly
(``statements``): a ``\\boxed{}`` not offered as an alternative ("Alternatively, if ...,
\\boxed{x}"), an answer phrase ("the answer is C"; not "maybe the answer is ..."), an explicit
choice ("I'll go with 20"), or "so / therefore / 所以 ... X" near the end. A result stated only in
passing ("... = 12") can confirm the answer, never reject it; so can any value the thinking
states after its conclusion (a re-check that lands on the answer's value). Thinking that stops
mid-sentence (an outside budget cut it) is skipped. Choices are compared as choices (the
answer's option, in any form), statements as statements ("A is a knight and B is a knave"),
prose as text (undecided unless one states the other), values as numbers. The detail shows
both, what kind of conclusion it was, and how they were compared. It does not look at the
reference: a final answer that matches the reference but contradicts the thinking is still a
mismatch (the student would learn to ignore its reasoning).


>>> m = ThinkAnswerMismatchFilter(MathVerifier())
>>> m.check(Sample("<think>\\n3+4=7. So the answer is 7.\\n</think>\\n\\n\\\\boxed{7}", True)).passed
True
>>> m.check(Sample("<think>\\n3+4=7. So the answer is 7.\\n</think>\\n\\n\\\\boxed{8}", True)).detail
"thinking concludes '7' (answer phrase); the answer says '8' (compared as number)"
>>> m.check(Sample("<think>\\nSo there are 400 worker bees.\\n</think>\\n\\n\\\\boxed{400}", True)).passed
True
>>> m.check(Sample("<think>\\n2x = 10, so x = 5.\\n</think>\\n\\nThe answer is x = 4.", True)).reason
'think_answer_mismatch'
"""

from __future__ import annotations

from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register
from .lib.answers import AnswerMethod, MathVerifier, kind
from .lib.conclusion import OPTION_LINE, cut_short, judge_conclusion, statements
from .lib.extract import final_span, options
from .lib.text import shorten


@register
class ThinkAnswerMismatchFilter(Filter):
    name = "think_answer_mismatch"

    class Config(FilterConfig):
        method: AnswerMethod = "auto"
        """How the two values are compared; ``auto``: letters for a multiple-choice prompt, numbers
        when both state one, math-verify for two LaTeX expressions, else undecided."""
        keep_undecided: bool = True
        """Keep a sample whose conclusion and answer cannot be compared mechanically (two texts)."""
        tail_chars: int = Field(default=2000, ge=200)
        """How much of the end of the thinking its conclusion is looked for in."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> ThinkAnswerMismatchFilter:
        return cls(shared.verifier, settings)

    def __init__(self, verifier: MathVerifier | None = None, settings: Config | None = None):
        self.verifier, self.s = verifier, settings or self.Config()

    def check(self, s: Sample) -> Verdict:
        if not s.thinking_expected or not s.thinking.strip():
            return self.skip("skipped_no_thinking")
        if not s.answer.strip() or s.finish_reason in ("length", "repetition"):
            return self.skip("skipped_no_final_answer", "nothing after the think block, or it was cut off")
        if s.budget_hit:  # the budget ended the thinking mid-way: it concludes nothing to compare
            return self.skip("skipped_budget_cut", "the thinking budget cut the thinking before it concluded")
        if (cut := cut_short(s.thinking)) is not None:
            return self.skip(
                "skipped_budget_cut",
                f"the thinking stops mid-sentence ({shorten(cut, 60)!r}): it was cut short before it concluded",
            )
        found = statements(s.thinking, self.s.tail_chars)
        if not found:
            return self.skip(
                "skipped_no_conclusion",
                "the thinking's end states no value (no \\boxed{}, no 'answer is', no 'so ... = X')",
            )
        choice = self.s.method == "choice" or (
            self.s.method == "auto"
            and ((s.reference is not None and kind(s.reference) == "choice") or len(options(s.prompt)) >= 2)
        )
        stated = final_span(s.answer, stated=True)
        if stated is None and choice:  # a bare option as the answer's last line: "A) 円", "**B**"
            last = s.answer.strip().splitlines()[-1].strip()
            stated = last if OPTION_LINE.match(last) else None
        if stated is None:
            return self.skip("skipped_no_final_answer", "the answer states no final answer (no box, no answer phrase)")
        equal, concluded, how = judge_conclusion(found, stated, s.prompt, self.verifier, choice)
        detail = (
            f"thinking concludes {shorten(concluded.span, 60)!r} ({concluded.how}); the answer says "
            f"{shorten(stated, 60)!r} (compared as {how})"
        )
        if equal is None:
            return (
                self.skip("skipped_undecided", detail)
                if self.s.keep_undecided
                else self.reject("skipped_undecided", None, detail)
            )
        return self.ok(1.0, detail) if equal else self.reject("think_answer_mismatch", 0.0, detail)
