"""``wrong_answer``: the final answer (text after ``</think>``) against the reference.

The method is chosen per source (``by_source``, exact source name) or for all rows (``method``);
``auto`` decides per row (see ``filters.answers``). Without a reference the filter cannot apply
(``skipped_no_reference``); an answer with nothing to extract is ``no_answer``; a math-verify
comparison that overruns its time bound is ``skipped_undecided`` (it never hangs the stage).
In a multi-turn sample every turn with a known reference is checked (``turn_references``);
the first wrong one rejects the sample, its detail naming the turn.

>>> f = WrongAnswerFilter(MathVerifier())
>>> f.check(Sample("<think>\\nhalf\\n</think>\\n\\n\\\\boxed{0.5}", True, reference="\\\\frac{1}{2}")).passed
True
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\n\\\\boxed{496}", True, reference="490")).detail
"reference '490' vs answer '496' (number)"
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\n\\\\boxed{496}", True)).reason
'skipped_no_reference'
"""

from __future__ import annotations

from pydantic import Field

from .answers import AnswerMethod, MathVerifier, compare
from .base import Filter, FilterConfig, Sample, Shared, Verdict, register


@register
class WrongAnswerFilter(Filter):
    name = "wrong_answer"

    class Config(FilterConfig):
        method: AnswerMethod = "auto"
        """How answers are compared: ``math`` (math-verify equivalence), ``choice`` (letters),
        ``exact`` (normalized strings), ``number`` (tolerance), ``auto`` (per row)."""
        by_source: dict[str, AnswerMethod] = Field(default_factory=dict)
        """Method per source name, overriding ``method``."""
        timeout_s: float = Field(default=5.0, gt=0)
        """Wall-clock bound per math-verify comparison (it runs in a child process that is killed
        when it overruns; the sample is then ``skipped_undecided``). ``think_answer_mismatch``
        shares the child process and this bound."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> "WrongAnswerFilter":
        return cls(shared.verifier, settings.method, settings.by_source)

    def __init__(self, verifier: MathVerifier, method: str = "auto", by_source: dict[str, str] | None = None):
        self.verifier, self.method, self.by_source = verifier, method, dict(by_source or {})

    def check(self, s: Sample) -> Verdict:
        earlier = self._earlier_turns(s)
        if earlier is not None:
            return earlier
        return self._compare(s.reference, s.answer, s.source)

    def _compare(self, reference: str | None, answer: str, source: str | None, turn: str = "") -> Verdict:
        if reference is None or not str(reference).strip():
            return self.skip("skipped_no_reference")
        method = self.by_source.get(source or "", self.method)
        equal, used, extracted = compare(method, reference, answer, self.verifier)
        detail = f"{turn}reference {reference!r} vs answer {extracted!r} ({used})"
        if extracted is None:
            return self.reject("no_answer", 0.0, f"{turn}no final answer found to compare with reference {reference!r}")
        if equal is None:
            return self.skip("skipped_undecided", detail + ": the comparison timed out")
        return self.ok(1.0, detail) if equal else self.reject("wrong_answer", 0.0, detail)

    def _earlier_turns(self, s: Sample) -> Verdict | None:
        """A multi-turn sample: the first earlier turn whose answer fails its reference, if any."""
        if not s.messages or not s.turn_references:
            return None
        for i, (split, ref) in enumerate(zip(s.turn_splits[:-1], s.turn_references), 1):
            if ref is None:
                continue
            v = self._compare(ref, split.answer, s.source, turn=f"turn {i}: ")
            if v.passed is False:
                return v
        return None
