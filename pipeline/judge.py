"""Filter stage: every parsed sample judged by every configured filter (``filters/``).

Runs on CPU workers after parse, streaming alongside generation. A sample with a failing
verdict goes to ``rejected/`` with ``reject_reason`` = the first failing filter's reason; every
verdict is stored with the sample either way, so a rejection is always explained and a later
re-judge (``jobs.filter``) can be compared verdict by verdict.
"""

from __future__ import annotations

from filters import Judge, Sample

from .config import FiltersConfig
from .dialects import get_dialect
from .schema import to_table


def to_sample(row: dict, think_start: str = "<think>", think_end: str = "</think>") -> Sample:
    """A stream row (``messages`` ending in the teacher's turn) -> what the filters see."""
    messages = row["messages"]
    prompt = next((m["content"] for m in reversed(messages[:-1]) if m["role"] == "user"), "")
    turns = row.get("turns")
    return Sample(completion=messages[-1]["content"], thinking_expected=bool(row["thinking_expected"]),
                  prompt=prompt, reference=row.get("reference"), source=row.get("source"),
                  finish_reason=row.get("finish_reason"), budget_hit=bool(row.get("budget_hit")),
                  think_start=think_start, think_end=think_end, messages=messages,
                  turn_references=[t.get("reference") for t in turns] if turns else None)


class FilterStage:
    """Ray Data worker: ``parsed`` rows -> ``accepted`` / ``rejected`` with verdicts."""

    def __init__(self, filters: FiltersConfig, dialect: str):
        self.judge = Judge(filters)
        d = get_dialect(dialect)
        self.tags = (d.think_start, d.think_end)

    def __call__(self, batch):
        return to_table([self.judge_row(r) if r["status"] == "parsed" else r for r in batch.to_pylist()])

    def judge_row(self, row: dict) -> dict:
        verdicts, reason = self.judge(to_sample(row, *self.tags))
        row.update(verdicts=[v.as_row() for v in verdicts], reject_reason=reason,
                   status="rejected" if reason else "accepted")
        return row
