"""Sample until verified (``generation.accepted_per_prompt``): a prompt's samples in rounds.

A *group* is a prompt's samples of one mode, budget, thinking minimum and effort: the unit a
fixed-n run makes ``samples_per_prompt`` (n) samples of, and the unit ``k`` counts in. Round 0
makes each group's samples ``0..k-1``; round r makes samples ``cut[r-1]..cut[r]-1`` of the groups
with fewer than k accepted among samples ``0..cut[r-1]-1``, where the cuts double from k up to n
(``cuts``). A group stops when k passed, when it has n, or when none of its samples reached the
filters (all were errors: more draws would fail alike).

The decision for a group depends only on its own earlier samples' verdicts, never on timing: a
k-run makes a subset of the fixed-n run's samples (same ids, seeds, texts), the same subset after
a crash and a resume. Each round is one pass of the stream (the driver waits for it to be
committed before deciding the next), so a run with k has at most ``len(cuts)`` passes; the
replicas' engines start again for each (Ray Data keeps its actors for one pass).

At the end (``stamp``), every accepted and rejected sample gets its group's ``prompt_samples``,
``prompt_accepted`` and ``prompt_pass_rate`` (a difficulty signal a curriculum can read), and the
summary its histogram and the groups left unsolved (``unsolved.jsonl``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .committed import DoneSet

#: The columns that make a group (with the prompt id).
GROUP = ("prompt_id", "mode", "thinking_budget", "min_thinking_tokens", "reasoning_effort")
_READ = [*GROUP, "sample_index", "sample_id", "source", "reference"]
STAMPED = ("prompt_samples", "prompt_accepted", "prompt_pass_rate")


def cuts(k: int, n: int) -> list[int]:
    """How many samples a group has after each round: k, then doubling, up to n.

    >>> cuts(2, 8), cuts(3, 8), cuts(1, 1), cuts(4, 4), cuts(1, 5)
    ([2, 4, 8], [3, 6, 8], [1], [4], [1, 2, 4, 5])
    """
    out = [k]
    while out[-1] < n:
        out.append(min(2 * out[-1], n))
    return out


@dataclass(frozen=True)
class Round:
    """What the prepare stage makes in one round: samples below ``cut`` (round 0), or exactly
    the ``wanted`` sample ids (later rounds: the groups that need more). Picklable."""

    index: int
    cut: int
    wanted: DoneSet | None = None

    def takes(self, index: int, sample_id: str) -> bool:
        if self.wanted is None:
            return index < self.cut
        return self.wanted.has(sample_id)


def committed_samples(folder) -> pa.Table:
    """Every committed sample row of a prompt (accepted, rejected, error), with its ``status``."""
    parts = []
    for status, t in folder.tables(_READ, ("accepted", "rejected", "error")):
        t = t.append_column("status", pa.array([status] * t.num_rows, pa.string()))
        parts.append(t.select([c for c in (*_READ, "status") if c in t.column_names]))
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in (*GROUP, "status")}
                        | {"sample_index": pa.array([], pa.int64())})
    t = pa.concat_tables(parts, promote_options="permissive")
    return t.filter(pc.is_valid(t["prompt_id"]))


def _groups(t: pa.Table, below: int | None = None) -> pa.Table:
    """Per group: samples, accepted, and samples that reached the filters (below index ``below``)."""
    if below is not None:
        t = t.filter(pc.less(t["sample_index"], below))
    status = t["status"]
    t = pa.table({**{c: t[c] for c in GROUP},
                  "made": pa.array(np.ones(t.num_rows, np.int64)),
                  "accepted": pc.cast(pc.equal(status, "accepted"), pa.int64()),
                  "judged": pc.cast(pc.is_in(status, pa.array(["accepted", "rejected"])), pa.int64())})
    g = t.group_by(list(GROUP), use_threads=False).aggregate(
        [("made", "sum"), ("accepted", "sum"), ("judged", "sum")])
    return g.rename_columns([c.removesuffix("_sum") for c in g.column_names])


def next_round(folder, r: int, k: int, n: int, specs) -> Round | None:
    """Round ``r`` (>= 1) of a k-run, from what is committed: the sample ids of samples
    ``cut[r-1]..cut[r]-1`` of every group with fewer than k accepted below ``cut[r-1]`` (and one
    judged); None when no group needs more. ``specs``: ``samples.plan_samples`` of the run."""
    c = cuts(k, n)
    if r >= len(c):
        return None
    rows = committed_samples(folder)
    g = _groups(rows, below=c[r - 1])
    need = g.filter(pc.and_(pc.less(g["accepted"], k), pc.greater(g["judged"], 0)))
    by_key = {(s.mode.name, s.budget, s.min_thinking, s.effort, s.index): s for s in specs}
    have = DoneSet.of([x for x in rows["sample_id"].to_pylist() if x]) if "sample_id" in rows.column_names else None
    ids = []
    for row in need.to_pylist():
        for i in range(c[r - 1], c[r]):
            spec = by_key.get((row["mode"], row["thinking_budget"], row["min_thinking_tokens"],
                               row["reasoning_effort"], i))
            if spec is not None and not (have is not None and have.has(sid := spec.sample_id(row["prompt_id"]))):
                ids.append(sid)
    if not ids:  # nothing to make in this round (a resume may hold it all): on to the next
        return next_round(folder, r + 1, k, n, specs)
    return Round(r, c[r], DoneSet.of(ids))


def first_round_held(folder, k: int, n: int, per_input: int, inputs: int) -> bool:
    """Whether the folder (a resumed k-run's) holds round 0 of every input row: each row's samples
    below the first cut, or the rows of an input row that never became a prompt, or an earlier
    run's prompt. Then a resume goes straight to the next round (no pass, no engine start)."""
    rows = committed_samples(folder)
    first = rows.filter(pc.less(rows["sample_index"], cuts(k, n)[0]))
    per_prompt = Counter(first["prompt_id"].to_pylist())
    whole = per_input // n * cuts(k, n)[0]  # groups per prompt x samples in round 0
    held = sum(m == whole for m in per_prompt.values())
    others = set()
    for status, t in folder.tables(["prompt_id", "location"], ("error", "earlier")):
        if "location" in t.column_names:
            others |= {(status, loc) for pid, loc in zip(t["prompt_id"].to_pylist(), t["location"].to_pylist())
                       if pid is None or status == "earlier"}
    return held + len(others) >= inputs


@dataclass
class Outcome:
    """Per group at the end of a k-run: what it got, and what the accounting expects of it."""

    groups: pa.Table   # GROUP columns, made, accepted, judged, expected (the samples the rule makes)
    rows: pa.Table     # the committed sample rows (``committed_samples``)
    _by_group: dict | None = field(default=None, repr=False)

    @property
    def expected(self) -> int:
        return int(pc.sum(self.groups["expected"]).as_py() or 0)

    def by_group(self) -> dict[tuple, tuple[int, int]]:
        """Group key -> (made, accepted), built once."""
        if self._by_group is None:
            cols = [self.groups[c].to_pylist() for c in (*GROUP, "made", "accepted")]
            self._by_group = {tuple(x[:-2]): (x[-2], x[-1]) for x in zip(*cols)}
        return self._by_group


def outcome(folder, k: int, n: int) -> Outcome:
    """Each group's samples and verdicts, and how many samples the rule makes of it given its
    verdicts: the first cut at which k had passed or none had reached the filters, else n."""
    rows = committed_samples(folder)
    g = _groups(rows)
    expected = np.full(g.num_rows, n, np.int64)
    settled = np.zeros(g.num_rows, bool)
    keys = [tuple(x) for x in zip(*(g[c].to_pylist() for c in GROUP))]
    for c in cuts(k, n)[:-1]:
        below = _groups(rows, below=c)
        at = dict(zip([tuple(x) for x in zip(*(below[col].to_pylist() for col in GROUP))],
                      zip(below["accepted"].to_pylist(), below["judged"].to_pylist())))
        for i, key in enumerate(keys):
            acc, judged = at.get(key, (0, 0))
            if not settled[i] and (acc >= k or judged == 0):
                expected[i], settled[i] = c, True
    return Outcome(g.append_column("expected", pa.array(expected)), rows)


def stamp_table(t: pa.Table, o: Outcome) -> pa.Table:
    """``t`` (a committed part of samples) with its groups' ``prompt_samples``, ``prompt_accepted``
    and ``prompt_pass_rate``."""
    made = o.by_group()
    got = [made.get(key, (None, None)) for key in zip(*(t[c].to_pylist() for c in GROUP))]
    values = {"prompt_samples": pa.array([m for m, _ in got], pa.int64()),
              "prompt_accepted": pa.array([a for _, a in got], pa.int64()),
              "prompt_pass_rate": pa.array([round(a / m, 4) if m else None for m, a in got], pa.float64())}
    for name, col in values.items():
        i = t.schema.get_field_index(name)
        t = t.set_column(i, name, col) if i >= 0 else t.append_column(name, col)
    return t


def pass_rates(o: Outcome) -> dict[str, int]:
    """Groups by pass rate, in tenths (``"0.0"`` = under 0.1; ``"1.0"`` = all passed).

    >>> g = pa.table({"made": [2, 4, 8, 3], "accepted": [2, 1, 0, 2]})
    >>> pass_rates(Outcome(g, None))
    {'0.0': 1, '0.2': 1, '0.6': 1, '1.0': 1}
    """
    made, acc = np.array(o.groups["made"].to_pylist()), np.array(o.groups["accepted"].to_pylist())
    bins = np.floor(np.divide(acc, np.maximum(made, 1)) * 10 + 1e-9).astype(int)
    values, counts = np.unique(bins, return_counts=True)
    return {f"{v / 10:.1f}": int(c) for v, c in zip(values.tolist(), counts.tolist())}


def unsolved(o: Outcome, k: int, n: int) -> list[dict]:
    """The groups that got n samples without k passing (as ``unsolved.jsonl`` of adaptive runs)."""
    g = o.groups.filter(pc.and_(pc.greater_equal(o.groups["made"], n), pc.less(o.groups["accepted"], k)))
    first: dict[str, dict] = {}
    for r in o.rows.select([c for c in ("prompt_id", "source", "reference") if c in o.rows.column_names]).to_pylist():
        first.setdefault(r["prompt_id"], r)
    return [{**{c: row[c] for c in GROUP}, "samples": row["made"], "accepted": row["accepted"],
             "source": first.get(row["prompt_id"], {}).get("source"),
             "reference": first.get(row["prompt_id"], {}).get("reference")}
            for row in sorted(g.to_pylist(), key=lambda x: (x["prompt_id"], x["mode"]))]


def summary(o: Outcome, k: int, n: int, unsolved_file: str | None) -> dict:
    """The summary's ``verified`` block."""
    g = o.groups
    made, acc = np.array(g["made"].to_pylist(), np.int64), np.array(g["accepted"].to_pylist(), np.int64)
    judged = np.array(g["judged"].to_pylist(), np.int64)
    index = np.array(o.rows["sample_index"].to_pylist(), np.int64) if o.rows.num_rows else np.zeros(0, np.int64)
    c = cuts(k, n)
    return {
        "k": k, "n": n, "cuts": c,
        "samples_by_round": [int(((index >= lo) & (index < hi)).sum()) for lo, hi in zip([0, *c[:-1]], c)],
        "groups": int(g.num_rows), "reached_k": int((acc >= k).sum()),
        "unsolved": int(((made >= n) & (acc < k)).sum()), "stopped_on_errors": int((judged == 0).sum()),
        "samples_made": int(made.sum()), "samples_saved": int(g.num_rows * n - o.expected),
        "pass_rate": round(float(acc.sum() / made.sum()), 4) if made.sum() else None,
        "pass_rates": pass_rates(o), "unsolved_file": unsolved_file,
    }
