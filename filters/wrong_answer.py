"""``wrong_answer``: the final answer (text after ``</think>``) against the reference.

The method is chosen per source (``by_source``, exact source name) or for all rows (``method``);
``auto`` decides per row from the reference (see ``filters.lib.answers``). Without a reference the
filter cannot apply (``skipped_no_reference``), nor without an answer text (``skipped_no_answer_text``:
a cut-off sample is the ``format`` filter's); an answer that states nothing comparable is
``no_answer``; an answer that cannot be compared mechanically (free text against a textual
reference, a math-verify comparison over its time bound) is ``skipped_undecided``, kept unless
``keep_undecided`` is off.
In a multi-turn sample every turn with a known reference is checked (``turn_references``);
the first wrong one rejects the sample, its detail naming the turn.

>>> f = WrongAnswerFilter(MathVerifier())
>>> f.check(Sample("<think>\\nhalf\\n</think>\\n\\n\\\\boxed{0.5}", True, reference="\\\\frac{1}{2}")).passed
True
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\n\\\\boxed{496}", True, reference="490")).detail
"reference '490' vs answer '496' (number)"
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\n**Answer:** 1.250 €", True, reference="1250")).passed
True
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\nThe answer is **(C) Nitrogen**", True, reference="B")).detail
"reference 'B' vs answer 'C' (choice)"
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\n\\\\boxed{496}", True)).reason
'skipped_no_reference'
"""

from __future__ import annotations

from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register
from .lib.answers import AnswerMethod, MathVerifier, compare
from .lib.text import shorten


@register
class WrongAnswerFilter(Filter):
    name = "wrong_answer"

    class Config(FilterConfig):
        method: AnswerMethod = "auto"
        """How answers are compared: ``math`` (math-verify equivalence), ``choice`` (letters),
        ``exact`` (normalized strings), ``number`` (tolerance), ``auto`` (per row)."""
        by_source: dict[str, AnswerMethod] = Field(default_factory=dict)
        """Method per source name, overriding ``method``."""
        keep_undecided: bool = True
        """Keep a sample whose answer cannot be compared mechanically with its reference (free
        text against a textual reference, a comparison that timed out): ``skipped_undecided``.
        ``false`` rejects it with that reason."""
        timeout_s: float = Field(default=5.0, gt=0)
        """Wall-clock bound per math-verify comparison (it runs in a child process that is killed
        when it overruns; the sample is then ``skipped_undecided``). ``think_answer_mismatch``
        shares the child process and this bound."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> WrongAnswerFilter:
        return cls(shared.verifier, settings.method, settings.by_source, settings.keep_undecided)

    def __init__(
        self,
        verifier: MathVerifier | None,
        method: str = "auto",
        by_source: dict[str, str] | None = None,
        keep_undecided: bool = True,
    ):
        self.verifier, self.method, self.by_source = verifier, method, dict(by_source or {})
        self.keep_undecided = keep_undecided

    def check(self, s: Sample) -> Verdict:
        earlier = self._earlier_turns(s)
        if earlier is not None:
            return earlier
        if s.finish_reason in ("length", "repetition"):  # cut off: no final answer yet (format / repetition's)
            return self.skip(
                "skipped_unfinished", f"the generation was cut ({s.finish_reason}) before its answer was complete"
            )
        return self._compare(s.reference, s.answer, s.source, s.prompt)

    def _compare(
        self, reference: str | None, answer: str, source: str | None, prompt: str = "", turn: str = ""
    ) -> Verdict:
        if reference is None or not str(reference).strip():
            return self.skip("skipped_no_reference")
        if not answer.strip():  # cut off, or nothing after the think block: the format filter's call
            return self.skip("skipped_no_answer_text", f"{turn}nothing to compare with reference {reference!r}")
        method = self.by_source.get(source or "", self.method)
        equal, used, extracted = compare(method, reference, answer, self.verifier, prompt)
        detail = f"{turn}reference {reference!r} vs answer {shorten(extracted)!r} ({used})"
        if extracted is None:
            return self.reject("no_answer", 0.0, f"{turn}no final answer found to compare with reference {reference!r}")
        if equal is None:
            if self.keep_undecided:
                return self.skip("skipped_undecided", detail + ": cannot be compared mechanically")
            return self.reject("skipped_undecided", None, detail + ": cannot be compared mechanically")
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
