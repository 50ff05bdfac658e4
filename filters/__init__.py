"""Rejection filters: every sample judged by every configured filter, every rejection explained.

Each filter is a small class in its own module (``check(sample) -> Verdict``, settings in a
nested ``Config``), registered with ``@register``. Importing the module below is what registers
it; the import order is the default ``filters.order``. Adding a filter is its module plus one
import line here.

``build_filters`` makes the configured filters in order; ``Judge`` runs them all on one sample.
The sample is rejected with the first failing filter's reason (or the first skip of a filter
whose ``keep_skipped`` is off); every verdict is kept with the sample either way. A filter that
raises rejects the sample as ``filter_error`` (fail closed; ``filters.on_error: keep`` keeps it).

This package does not import ``pipeline``: a filter sees a ``Sample``, never a row or a job.
"""

from __future__ import annotations

# registration, in the default order (kept as written: sorting would change the order); the
# imports are for their side effect, registering the filter, hence the noqa
# isort: off
from . import flag_following  # noqa: F401  flag_following
from . import format  # noqa: F401  format
from . import wrong_answer  # noqa: F401  wrong_answer
from . import repetition  # noqa: F401  repetition
from . import language_mixing  # noqa: F401  language_mixing
from . import think_answer_mismatch  # noqa: F401  think_answer_mismatch
from . import guesswork  # noqa: F401  guesswork
from . import contamination  # noqa: F401  contamination (not in the default order)

# isort: on
from .base import REGISTRY, Filter, Sample, Shared, Verdict
from .config import FiltersConfig

__all__ = ["Filter", "Sample", "Verdict", "Judge", "FiltersConfig", "REGISTRY", "build_filters", "preflight"]


def build_filters(cfg: FiltersConfig) -> list[Filter]:
    """The filters of a ``FiltersConfig``, in its order (one bounded math-verify child shared)."""
    shared = Shared(cfg.wrong_answer.timeout_s)
    return [REGISTRY[name].build(cfg.settings(name), shared) for name in cfg.order]


def preflight(cfg: FiltersConfig) -> None:
    """Plan-time checks of the configured filters (their files exist); raises FileNotFoundError."""
    for name in cfg.order:
        REGISTRY[name].preflight(cfg.settings(name))


class Judge:
    """Runs every filter on a sample: -> (verdicts, reject_reason or None)."""

    def __init__(self, cfg: FiltersConfig):
        self.filters = build_filters(cfg)
        self.keep_skipped = {name: cfg.settings(name).keep_skipped for name in cfg.order}
        self.on_error = cfg.on_error

    def __call__(self, sample: Sample) -> tuple[list[Verdict], str | None]:
        verdicts = []
        for f in self.filters:
            try:
                verdicts.append(f.check(sample))
            except Exception as e:  # noqa: BLE001 - one odd sample must not stop the stage
                # fail closed: a sample a filter could not judge is not kept unjudged (``on_error``)
                verdicts.append(
                    Verdict(
                        f.name,
                        False if self.on_error == "reject" else None,
                        "filter_error",
                        None,
                        f"{type(e).__name__}: {e}",
                    )
                )
        reason = None
        for v in verdicts:
            if v.passed is False or (v.passed is None and not self.keep_skipped[v.filter]):
                reason = v.reason
                break
        return verdicts, reason
