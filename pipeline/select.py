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
"""

from __future__ import annotations

from collections import Counter

from .config import JobConfig
from .prepare import samples_per_input
from .schema import to_table

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


class AdaptiveReport:
    """Ray actor: the per-prompt choices, added up for summary.json (counts per source, and the
    unsolved prompts themselves)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.by_source: dict[str, Counter] = {}
        self.unsolved: list[dict] = []

    def record(self, decisions: list[dict]) -> None:
        for d in decisions:
            outcome = d["outcome"]
            self.counts["prompts"] += 1
            self.counts[outcome] += 1
            src = self.by_source.setdefault(d["source"] or "default", Counter())
            src["prompts"] += 1
            src[outcome] += 1
            if outcome == "unsolved":
                self.unsolved.append(d["prompt"])

    def result(self) -> dict:
        return {"counts": dict(self.counts), "by_source": {k: dict(v) for k, v in self.by_source.items()},
                "unsolved": self.unsolved}


class Select:
    """Ray Data worker (pool of one): filtered rows in; rows of prompts whose group is complete
    out, with the mode choice applied."""

    def __init__(self, cfg: JobConfig, report=None):
        a = cfg.generation.adaptive
        self.modes = {a.think_mode: "think", a.no_think_mode: "no_think"}
        self.mode_names = {"think": a.think_mode, "no_think": a.no_think_mode}
        self.delta, self.rule = a.delta, a.rule
        self.k = cfg.generation.samples_per_prompt
        self.group_size = samples_per_input(cfg)
        self.report = report
        self.pending: dict[str, list[dict]] = {}

    def __call__(self, batch):
        import ray

        out, decisions = [], []
        for row in batch.to_pylist():
            pid = row["prompt_id"]
            if pid is None:  # an input row that never became a prompt: nothing to choose
                out.append(row)
                continue
            group = self.pending.setdefault(pid, [])
            group.append(row)
            if len(group) == self.group_size:
                del self.pending[pid]
                decisions.append(self.decide(group))
                out.extend(group)
        if decisions and self.report is not None:
            ray.get(self.report.record.remote(decisions))
        return to_table(out)

    def decide(self, group: list[dict]) -> dict:
        """Apply the choice to one prompt's rows (in place); returns what the report needs."""
        by_mode = {"think": [], "no_think": []}
        for r in group:
            if r["mode"] in self.modes:
                by_mode[self.modes[r["mode"]]].append(r)
        acc = {m: sum(map(_correct, rows)) / self.k for m, rows in by_mode.items()}
        verified = any(_judged(r) for rows in by_mode.values() for r in rows)
        first = next((r for r in group if r["status"] in SAMPLE_STATUSES), None)
        if first is None:  # every sample failed (errors/): nothing to choose between
            return {"source": None, "outcome": "no_samples", "prompt": None}
        if verified:
            chosen = choose(acc["think"], acc["no_think"], self.delta, self.rule)
            outcome = {"think": "think", "no_think": "no_think", None: "dropped"}[chosen]
        else:  # no reference to verify against: keep the hybrid model's default, thinking
            chosen, outcome = "think", "unverified"
        detail = (f"acc_think={acc['think']:.2f} acc_no_think={acc['no_think']:.2f} delta={self.delta} "
                  f"rule={self.rule} -> {outcome}")
        for kind, rows in by_mode.items():
            for r in rows:
                if r["status"] not in SAMPLE_STATUSES:
                    continue
                kept = kind == chosen
                # query_filter drops the whole prompt: its thinking samples say why
                reason = None if kept else ("solved_without_thinking" if chosen is None and kind == "think"
                                            else "mode_not_chosen")
                r["verdicts"] = list(r["verdicts"] or []) + [
                    {"filter": "mode_choice", "passed": kept, "reason": reason, "score": acc[kind], "detail": detail}]
                r.update(acc_think=acc["think"], acc_no_think=acc["no_think"],
                         chosen_mode=self.mode_names.get(chosen))
                if not kept and r["status"] == "accepted":
                    r.update(status="rejected", reject_reason=reason)
        prompt = None
        if verified and acc["think"] == 0 and acc["no_think"] == 0:
            # the rule still names a mode (no-think: 0 + delta >= 0) but no sample is right, so
            # nothing is kept; counted apart, not as a choice
            outcome = "unsolved"
            user = next(m["content"] for m in first["messages"] if m["role"] == "user")
            prompt = {"prompt_id": first["prompt_id"], "source": first["source"], "prompt": user,
                      "reference": first["reference"], "acc_think": acc["think"], "acc_no_think": acc["no_think"]}
        return {"source": first["source"], "outcome": outcome, "prompt": prompt}
