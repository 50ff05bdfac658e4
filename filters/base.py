"""What a filter sees (``Sample``) and what it says (``Verdict``).

A filter is a small class with a ``name`` and ``check(sample) -> Verdict``: a pure function
of one parsed sample. ``passed`` is True / False, or None when the filter cannot apply (no
reference answer, no thinking to compare); ``reason`` is a stable snake_case string (the
reason for a rejection, or ``skipped_*`` for a filter that could not apply); ``score`` and
``detail`` explain it (the repeated span, the offending script and its share, both answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, NamedTuple

from pipeline.thinking import split_thinking


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
    """One generated sample, as the filters need it."""

    completion: str                 # the assistant turn as the teacher wrote it (think block included)
    thinking_expected: bool         # think mode (True) or no-think mode (False)
    prompt: str = ""                # the last user turn
    reference: str | None = None
    source: str | None = None
    finish_reason: str | None = None
    budget_hit: bool = False
    think_start: str = "<think>"
    think_end: str = "</think>"
    messages: list | None = None    # the whole conversation (multi-turn), ending in ``completion``
    turn_references: list | None = None  # multi-turn: the reference of each assistant turn's question

    @cached_property  # every filter reads it; split once per sample
    def split(self):
        return split_thinking(self.completion, self.think_start, self.think_end)

    @property
    def thinking(self) -> str:
        return self.split.thinking

    @property
    def answer(self) -> str:
        return self.split.answer


class Filter:
    name: ClassVar[str] = ""

    def check(self, sample: Sample) -> Verdict:
        raise NotImplementedError

    def ok(self, score: float | None = None, detail: str | None = None) -> Verdict:
        return Verdict(self.name, True, None, score, detail)

    def reject(self, reason: str, score: float | None = None, detail: str | None = None) -> Verdict:
        return Verdict(self.name, False, reason, score, detail)

    def skip(self, reason: str, detail: str | None = None) -> Verdict:
        return Verdict(self.name, None, reason, None, detail)
