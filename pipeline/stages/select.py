"""Select stage: adaptive mode choice per prompt (AdaptThink), after the filters.

For each prompt the job draws K samples in a thinking and a no-thinking mode; the filters
verify each (``wrong_answer``). Here the prompt's accuracies are measured and one mode is
chosen:

- ``adaptthink``: no-think when ``acc_no_think + delta >= acc_think`` (it is about as accurate
  and much shorter), else think;
- ``query_filter`` (Qwen3's cold-start query filtering): think, except prompts the no-think
  mode already solves K/K, which are dropped from the thinking set.

The chosen mode's samples keep their status (the verified ones stay accepted); the other
mode's accepted samples go to ``rejected/`` with ``mode_not_chosen``. Every sample of the prompt
gets a ``mode_choice`` verdict saying both accuracies, and ``acc_think`` / ``acc_no_think`` /
``chosen_mode``. Prompts that no mode solves are recorded (the hard tail).

A choice needs the whole group of a prompt, so the stage is ONE stateful worker that holds a
prompt's rows until all of them arrived (they come close together: prepare emits them from one
input row). Memory is the incomplete groups only. If that worker dies the rows it holds are
lost; the run's accounting then reports them missing (exit 3) rather than hiding it.

The summary counts each prompt's outcome (think, no_think, dropped, unverified, unsolved,
no_samples) from the committed rows (``recount``), with the same ``judge_group`` this stage
uses: there is no second counting channel, and a resumed run counts what it holds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from ..config import AdaptiveConfig
from ..samples import samples_per_input
from ..schema import to_table
from . import Context, Stage

SAMPLE_STATUSES = ("accepted", "rejected")


def choose(acc_think: float, acc_no_think: float, delta: float, rule: str) -> str | None:
    """The chosen mode (``"think"`` / ``"no_think"``), or None: the prompt is dropped.

    >>> choose(0.75, 0.75, 0.05, "adaptthink"), choose(0.75, 0.5, 0.05, "adaptthink")
    ('no_think', 'think')
    >>> choose(1.0, 1.0, 0.05, "query_filter"), choose(1.0, 0.75, 0.05, "query_filter")
    (None, 'think')
    """
    if rule == "query_filter":
        return None if acc_no_think >= 1.0 else "think"
    return "no_think" if acc_no_think + delta >= acc_think else "think"


def _correct(row: dict) -> bool:
    return row["status"] in SAMPLE_STATUSES and any(
        v["filter"] == "wrong_answer" and v["passed"] for v in row["verdicts"] or [])


def _judged(row: dict) -> bool:
    return row["status"] in SAMPLE_STATUSES and any(
        v["filter"] == "wrong_answer" and v["passed"] is not None for v in row["verdicts"] or [])


@dataclass(frozen=True)
class SelectSettings:
    adaptive: AdaptiveConfig
    k: int             # samples per prompt and mode
    group_size: int    # rows per prompt (every mode and budget)

    @classmethod
    def of(cls, job) -> "SelectSettings":
        g = job.generation
        return cls(g.adaptive, g.samples_per_prompt, samples_per_input(g))


class Select(Stage):
    """Ray Data worker (pool of one): filtered rows in; rows of prompts whose group is complete
    out, with the mode choice applied."""

    name = "select"
    reads = ("status", "prompt_id", "mode", "verdicts", "messages", "source", "reference")
    writes = ("verdicts", "status", "reject_reason", "acc_think", "acc_no_think", "chosen_mode")
    pool = "one"  # one worker sees every row, so each prompt's group comes together there

    @classmethod
    def wanted(cls, ctx: Context) -> bool:
        return getattr(ctx.job, "generation", None) is not None and ctx.job.generation.adaptive is not None

    @classmethod
    def settings(cls, ctx: Context) -> dict:
        return {"settings": SelectSettings.of(ctx.job)}

    @classmethod
    def describe(cls, ctx: Context) -> str:
        return "select (adaptive mode choice, one worker)"

    def __init__(self, settings: SelectSettings):
        a = settings.adaptive
        self.modes = {a.think_mode: "think", a.no_think_mode: "no_think"}
        self.mode_names = {"think": a.think_mode, "no_think": a.no_think_mode}
        self.delta, self.rule = a.delta, a.rule
        self.k = settings.k
        self.group_size = settings.group_size
        self.pending: dict[str, list[dict]] = {}

    def process(self, batch):
        out = []
        for row in batch.to_pylist():
            pid = row["prompt_id"]
            if pid is None:  # an input row that never became a prompt: nothing to choose
                out.append(row)
                continue
            group = self.pending.setdefault(pid, [])
            group.append(row)
            if len(group) == self.group_size:
                del self.pending[pid]
                self.decide(group)
                out.extend(group)
        return to_table(out, stage=self.name)

    def decide(self, group: list[dict]) -> str:
        """Apply the choice to one prompt's rows (in place); returns the prompt's outcome."""
        c = judge_group(group, self.modes, self.k, self.delta, self.rule)
        if c.first is None:
            return c.outcome
        detail = (f"acc_think={c.acc['think']:.2f} acc_no_think={c.acc['no_think']:.2f} delta={self.delta} "
                  f"rule={self.rule} -> {c.stated}")
        for r in group:
            kind = self.modes.get(r["mode"])
            if kind is None or r["status"] not in SAMPLE_STATUSES:
                continue
            kept = kind == c.chosen
            # query_filter drops the whole prompt: its thinking samples say why
            reason = None if kept else ("solved_without_thinking" if c.chosen is None and kind == "think"
                                        else "mode_not_chosen")
            r["verdicts"] = list(r["verdicts"] or []) + [
                {"filter": "mode_choice", "passed": kept, "reason": reason, "score": c.acc[kind], "detail": detail}]
            r.update(acc_think=c.acc["think"], acc_no_think=c.acc["no_think"], chosen_mode=self.mode_names.get(c.chosen))
            if not kept and r["status"] == "accepted":
                r.update(status="rejected", reject_reason=reason)
        return c.outcome


class Choice(NamedTuple):
    outcome: str               # think / no_think / dropped / unverified / unsolved / no_samples
    stated: str                # what the rule chose (an unsolved prompt's rule still names a mode)
    chosen: str | None         # the kept kind: think / no_think, None = the prompt is dropped
    acc: dict                  # accuracy per kind
    first: dict | None         # the prompt's first sample row (its source, prompt, reference)


def judge_group(group: list[dict], modes: dict[str, str], k: int, delta: float, rule: str) -> Choice:
    """One prompt's choice from its rows (the select stage's, and the summary's recount from the
    committed rows: the verdicts it reads do not change when the choice is applied)."""
    by_mode = {"think": [], "no_think": []}
    for r in group:
        if r["mode"] in modes:
            by_mode[modes[r["mode"]]].append(r)
    acc = {m: sum(map(_correct, rows)) / k for m, rows in by_mode.items()}
    verified = any(_judged(r) for rows in by_mode.values() for r in rows)
    first = next((r for r in group if r["status"] in SAMPLE_STATUSES), None)
    if first is None:  # every sample failed (errors/): nothing to choose between
        return Choice("no_samples", "no_samples", None, acc, None)
    if verified:
        chosen = choose(acc["think"], acc["no_think"], delta, rule)
        outcome = {"think": "think", "no_think": "no_think", None: "dropped"}[chosen]
    else:  # no reference to verify against: keep the hybrid model's default, thinking
        chosen, outcome = "think", "unverified"
    stated = outcome
    if verified and acc["think"] == 0 and acc["no_think"] == 0:
        # the rule still names a mode (no-think: 0 + delta >= 0) but no sample is right, so
        # nothing is kept; counted apart, not as a choice
        outcome = "unsolved"
    return Choice(outcome, stated, chosen, acc, first)


def recount(groups, settings: SelectSettings) -> tuple[Counter, list[dict]]:
    """The summary's adaptive counts from the committed rows of each prompt (in the order prepare
    made them): ``(source, outcome)`` counts and the unsolved prompts."""
    a = settings.adaptive
    modes = {a.think_mode: "think", a.no_think_mode: "no_think"}
    counts, unsolved = Counter(), []
    for group in groups:
        c = judge_group(group, modes, settings.k, a.delta, a.rule)
        # a prompt whose every sample failed has no sample to take a source from
        source = (c.first["source"] if c.first else None) or "default"
        counts[(source, c.outcome)] += 1
        if c.outcome == "unsolved":
            user = next(m["content"] for m in c.first["messages"] if m["role"] == "user")
            unsolved.append({"prompt_id": c.first["prompt_id"], "source": c.first["source"], "prompt": user,
                             "reference": c.first["reference"], "acc_think": c.acc["think"],
                             "acc_no_think": c.acc["no_think"]})
    return counts, unsolved


STAGE = Select
