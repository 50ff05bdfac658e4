"""What a filter sees (``Sample``), what it says (``Verdict``), and how a filter is declared.

A filter is a small class with a ``name``, its settings (a nested ``Config`` model: the
``filters.<name>`` section of a job config) and ``check(sample) -> Verdict``: a pure function of
one parsed sample. ``passed`` is True / False, or None when the filter cannot apply (no reference
answer, no thinking to compare); ``reason`` is a stable snake_case string (the reason for a
rejection, or ``skipped_*`` for a filter that could not apply); ``score`` and ``detail`` explain
it (the repeated span, the offending script and its share, both answers).

``@register`` adds a filter class to ``REGISTRY``; registering is what makes its name valid in
``filters.order`` and its settings a section of ``FiltersConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict

from .lib.registry import Registry
from .lib.text import ThinkSplit, split_thinking


class Verdict(NamedTuple):
    filter: str
    passed: bool | None
    reason: str | None = None
    score: float | None = None
    detail: str | None = None

    def as_row(self) -> dict:
        return self._asdict()


@dataclass(frozen=True)
class Sample:
    """One generated sample, as the filters need it.

    ``split`` is the think / answer split of ``completion``; the pipeline passes the one its
    parse stage made, so a sample is split once however many filters read it."""

    completion: str  # the assistant turn as the teacher wrote it (think block included)
    thinking_expected: bool  # think mode (True) or no-think mode (False)
    prompt: str = ""  # the last user turn
    reference: str | None = None
    source: str | None = None
    finish_reason: str | None = None
    budget_hit: bool = False
    think_start: str = "<think>"
    think_end: str = "</think>"
    messages: list | None = None  # the whole conversation (multi-turn), ending in ``completion``
    turn_references: list | None = None  # multi-turn: the reference of each assistant turn's question
    early_stop: str | None = None  # the sentence a thinking budget forces before the end tag (the dialect's)
    split: ThinkSplit | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.split is None:
            object.__setattr__(self, "split", split_thinking(self.completion, self.think_start, self.think_end))

    @property
    def thinking(self) -> str:
        return self.split.thinking

    @property
    def answer(self) -> str:
        return self.split.answer

    @cached_property
    def turn_splits(self) -> list[ThinkSplit]:
        """The split of every assistant turn of ``messages`` (the last one is ``split``); each
        turn is split once for all the filters that read earlier turns."""
        if not self.messages:
            return [self.split]
        replies = [m["content"] for m in self.messages if m["role"] == "assistant"]
        return [split_thinking(r, self.think_start, self.think_end) for r in replies[:-1]] + [self.split]


class FilterConfig(BaseModel):
    """Settings every filter has. A filter's own ``Config`` subclasses this."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    keep_skipped: bool = True
    """Keep a sample this filter could not judge (``passed: null``, reason ``skipped_*``, e.g. no
    reference). ``false`` rejects it with the skip reason."""


class Shared:
    """What several filters use and the judge makes once: the bounded math-verify child process
    (started on first use, with ``wrong_answer.timeout_s`` as its bound)."""

    def __init__(self, verify_timeout_s: float = 5.0):
        self._timeout = verify_timeout_s
        self._verifier = None

    @property
    def verifier(self):
        if self._verifier is None:
            from .lib.answers import MathVerifier

            self._verifier = MathVerifier(self._timeout)
        return self._verifier


class Filter:
    name: ClassVar[str] = ""
    Config: ClassVar[type[FilterConfig]] = FilterConfig
    #: In the default ``filters.order`` (the registration order); off means a user adds it by name.
    default_on: ClassVar[bool] = True

    @classmethod
    def build(cls, settings: FilterConfig, shared: Shared) -> Filter:
        """The filter for one job, from its settings. Filters with settings override this."""
        return cls()

    @classmethod
    def validate_settings(cls, settings: FilterConfig) -> None:
        """Settings that only matter when the filter runs (checked when it is in ``filters.order``);
        raise ``ValueError`` saying which key and what was expected."""

    @classmethod
    def preflight(cls, settings: FilterConfig) -> None:
        """Plan-time checks of what the settings point at (files that must exist); raise
        ``FileNotFoundError`` naming the key. Runs on the driver before anything starts."""

    def check(self, sample: Sample) -> Verdict:
        raise NotImplementedError

    def ok(self, score: float | None = None, detail: str | None = None) -> Verdict:
        return Verdict(self.name, True, None, score, detail)

    def reject(self, reason: str, score: float | None = None, detail: str | None = None) -> Verdict:
        return Verdict(self.name, False, reason, score, detail)

    def skip(self, reason: str, detail: str | None = None) -> Verdict:
        return Verdict(self.name, None, reason, None, detail)


#: Registered filters by name, in registration order (``filters/__init__.py`` imports them).
REGISTRY = Registry("filter")  # name -> filter class, in registration order


def register(cls: type[Filter]) -> type[Filter]:
    return REGISTRY.add(cls)
