"""Rejection filters: every sample judged by every configured filter, every rejection explained.

Each filter is a small class (``check(sample) -> Verdict``); ``build_filters`` makes them from
the job config in its configured order and ``Judge`` runs them all on one sample. The sample is
rejected with the first failing filter's reason (or the first skip of a filter whose
``keep_skipped`` is off); every verdict is kept with the sample either way.
"""

from __future__ import annotations

from .answers import MathVerifier
from .base import Filter, Sample, Verdict
from .consistency import GuessworkFilter, ThinkAnswerMismatchFilter
from .contamination import ContaminationFilter
from .correctness import WrongAnswerFilter
from .flags import FlagFollowingFilter
from .format import FormatFilter
from .language import LanguageMixingFilter
from .repetition import RepetitionFilter

__all__ = ["Filter", "Sample", "Verdict", "Judge", "build_filters"]


def build_filters(cfg) -> list[Filter]:
    """The filters of a ``FiltersConfig``, in its order (one bounded math-verify child shared)."""
    verifier = MathVerifier(cfg.wrong_answer.timeout_s)
    make = {
        "flag_following": lambda: FlagFollowingFilter(),
        "format": lambda: FormatFilter(),
        "wrong_answer": lambda: WrongAnswerFilter(verifier, cfg.wrong_answer.method, cfg.wrong_answer.by_source),
        "repetition": lambda: RepetitionFilter(cfg.repetition),
        "language_mixing": lambda: LanguageMixingFilter(cfg.language_mixing),
        "think_answer_mismatch": lambda: ThinkAnswerMismatchFilter(verifier, cfg.think_answer_mismatch.method),
        "guesswork": lambda: GuessworkFilter(cfg.guesswork.min_thinking_words),
        "contamination": lambda: ContaminationFilter(cfg.contamination.eval_files, cfg.contamination.field,
                                                     cfg.contamination.n),
    }
    return [make[name]() for name in cfg.order]


class Judge:
    """Runs every filter on a sample: -> (verdicts, reject_reason or None)."""

    def __init__(self, cfg):
        self.filters = build_filters(cfg)
        self.keep_skipped = {name: getattr(cfg, name).keep_skipped for name in cfg.order}

    def __call__(self, sample: Sample) -> tuple[list[Verdict], str | None]:
        verdicts = []
        for f in self.filters:
            try:
                verdicts.append(f.check(sample))
            except Exception as e:  # noqa: BLE001 - one odd sample must not stop the stage
                verdicts.append(Verdict(f.name, None, "filter_error", None, f"{type(e).__name__}: {e}"))
        reason = None
        for v in verdicts:
            if v.passed is False or (v.passed is None and not self.keep_skipped[v.filter]):
                reason = v.reason
                break
        return verdicts, reason
