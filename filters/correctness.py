"""``wrong_answer``: the final answer (text after ``</think>``) against the reference.

The method is chosen per source (``by_source``, exact source name) or for all rows (``method``);
``auto`` decides per row (see ``filters.answers``). Without a reference the filter cannot apply
(``skipped_no_reference``); an answer with nothing to extract is ``no_answer``; a math-verify
comparison that overruns its time bound is ``skipped_undecided`` (it never hangs the stage).

>>> f = WrongAnswerFilter(MathVerifier())
>>> f.check(Sample("<think>\\nhalf\\n</think>\\n\\n\\\\boxed{0.5}", True, reference="\\\\frac{1}{2}")).passed
True
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\n\\\\boxed{496}", True, reference="490")).detail
"reference '490' vs answer '496' (number)"
>>> f.check(Sample("<think>\\nx\\n</think>\\n\\n\\\\boxed{496}", True)).reason
'skipped_no_reference'
"""

from __future__ import annotations

from .answers import MathVerifier, compare
from .base import Filter, Sample, Verdict


class WrongAnswerFilter(Filter):
    name = "wrong_answer"

    def __init__(self, verifier: MathVerifier, method: str = "auto", by_source: dict[str, str] | None = None):
        self.verifier, self.method, self.by_source = verifier, method, dict(by_source or {})

    def check(self, s: Sample) -> Verdict:
        if s.reference is None or not str(s.reference).strip():
            return self.skip("skipped_no_reference")
        method = self.by_source.get(s.source or "", self.method)
        equal, used, extracted = compare(method, s.reference, s.answer, self.verifier)
        detail = f"reference {s.reference!r} vs answer {extracted!r} ({used})"
        if extracted is None:
            return self.reject("no_answer", 0.0, f"no final answer found to compare with reference {s.reference!r}")
        if equal is None:
            return self.skip("skipped_undecided", detail + ": the comparison timed out")
        return self.ok(1.0, detail) if equal else self.reject("wrong_answer", 0.0, detail)
