"""Filter stage: every parsed sample judged by every configured filter (``filters/``).

Runs on CPU workers after parse (or after load, in the filter job). A sample with a failing
verdict goes to ``rejected/`` with ``reject_reason`` = the first failing filter's reason; every
verdict is stored with the sample either way, so a rejection is always explained and a later
re-judge (``jobs.filter``) can be compared verdict by verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from filters import FiltersConfig, Judge, Sample
from filters.lib.text import ThinkSplit

from ..dialects import Dialect, get_dialect
from ..schema import to_table
from . import Context, Stage


def to_sample(row: dict, dialect: Dialect) -> Sample:
    """A parsed row (``messages`` ending in the teacher's turn, its split made by parse or load)
    -> what the filters see: each assistant turn as the teacher's text (``Dialect.text``), with
    the dialect's think tags and forced budget text."""
    messages = [
        {"role": m["role"], "content": dialect.text(m)} if m["role"] == "assistant" else m for m in row["messages"]
    ]
    prompt = next((m["content"] for m in reversed(messages[:-1]) if m["role"] == "user"), "")
    turns = row.get("turns")
    split = ThinkSplit(row["thinking"], row["answer"], row["think_opened"], row["think_closed"], row["think_blocks"])
    return Sample(
        completion=messages[-1]["content"],
        thinking_expected=bool(row["thinking_expected"]),
        prompt=prompt,
        reference=row.get("reference"),
        source=row.get("source"),
        finish_reason=row.get("finish_reason"),
        budget_hit=bool(row.get("budget_hit")),
        think_start=dialect.think_start,
        think_end=dialect.think_end,
        messages=messages,
        turn_references=[t.get("reference") for t in turns] if turns else None,
        early_stop=dialect.early_stop or None,
        split=split,
    )


@dataclass(frozen=True)
class FilterSettings:
    filters: FiltersConfig
    dialect: str  # whose think tags and forced budget text the samples carry


class FilterStage(Stage):
    """Ray Data worker: ``parsed`` rows -> ``accepted`` / ``rejected`` with verdicts."""

    name = "filter"
    reads = (
        "status",
        "messages",
        "thinking_expected",
        "reference",
        "source",
        "finish_reason",
        "budget_hit",
        "turns",
        "thinking",
        "answer",
        "think_opened",
        "think_closed",
        "think_blocks",
    )
    writes = ("verdicts", "reject_reason", "status")

    @classmethod
    def settings(cls, ctx: Context) -> dict:
        dialect = ctx.job.teacher.dialect if hasattr(ctx.job, "teacher") else ctx.job.dialect
        return {"settings": FilterSettings(ctx.job.filters, dialect)}

    @classmethod
    def describe(cls, ctx: Context) -> str:
        return f"filter ({', '.join(ctx.job.filters.order) or 'none'})"

    def __init__(self, settings: FilterSettings):
        self.judge = Judge(settings.filters)
        self.dialect = get_dialect(settings.dialect)

    def process(self, batch):
        return to_table(
            [self.judge_row(r) if r["status"] == "parsed" else r for r in batch.to_pylist()], stage=self.name
        )

    def judge_row(self, row: dict) -> dict:
        try:
            sample = to_sample(row, self.dialect)
        except Exception as e:  # noqa: BLE001 - a row the filters cannot read is an error row, not a crash
            row.update(
                status="error", stage="filter", error="filter_failed", field=None, detail=f"{type(e).__name__}: {e}"
            )
            return row
        verdicts, reason = self.judge(sample)
        row.update(
            verdicts=[v.as_row() for v in verdicts], reject_reason=reason, status="rejected" if reason else "accepted"
        )
        return row


STAGE = FilterStage
