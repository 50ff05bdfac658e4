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

from dataclasses import dataclass

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


def committed_samples(folder, extra: tuple[str, ...] = ()) -> pa.Table:
    """Every committed sample row of a prompt (accepted, rejected, error), once (a retried write's
    second copy is not counted), with its ``status``: the key columns, and ``extra``."""
    want = [*GROUP, "sample_index", "sample_id", *extra]
    parts = []
    for status, t in folder.tables(want, ("accepted", "rejected", "error")):
        cols = {
            c: t[c] if c in t.column_names else pa.nulls(t.num_rows, pa.int64() if c in _INTS else pa.string())
            for c in want
        }
        parts.append(pa.table({**cols, "status": pa.array([status] * t.num_rows, pa.string())}))
    if not parts:
        return pa.table({c: pa.array([], pa.int64() if c in _INTS else pa.string()) for c in (*want, "status")})
    t = pa.concat_tables(parts, promote_options="permissive")
    t = t.filter(pc.is_valid(t["prompt_id"]))
    ids = t["sample_id"].to_numpy(zero_copy_only=False).astype(str)
    first = np.sort(np.unique(ids, return_index=True)[1])
    return t.take(first) if len(first) < t.num_rows else t


_INTS = {"thinking_budget", "min_thinking_tokens", "sample_index"}


def _keys(t: pa.Table) -> pa.ChunkedArray:
    """One string per row naming its group (a null kept apart from any value)."""
    return pc.binary_join_element_wise(*(pc.fill_null(pc.cast(t[c], pa.string()), "\x00") for c in GROUP), "\x1f")


@dataclass
class Groups:
    """The groups of a table of committed samples: per row its group (``gid``), per group its key
    columns (``table``, from its first row) and key string (``keys``); counted with numpy."""

    table: pa.Table
    keys: pa.Array
    gid: np.ndarray
    index: np.ndarray
    accepted: np.ndarray
    judged: np.ndarray

    @classmethod
    def of(cls, rows: pa.Table) -> Groups:
        enc = pc.dictionary_encode(_keys(rows).combine_chunks()) if rows.num_rows else None
        gid = enc.indices.to_numpy() if enc is not None else np.zeros(0, np.int64)
        firsts = np.unique(gid, return_index=True)[1]
        status = rows["status"]
        keys = enc.dictionary if enc is not None else pa.array([], pa.string())

        def np_(a):
            return a.to_numpy(zero_copy_only=False)

        return cls(
            rows.select(list(GROUP)).take(firsts),
            keys,
            gid,
            np_(rows["sample_index"]),
            np_(pc.equal(status, "accepted")),
            np_(pc.is_in(status, pa.array(["accepted", "rejected"]))),
        )

    def counts(self, below: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per group: samples, accepted, judged (reached the filters), of the samples below ``below``."""
        keep = self.index < below if below is not None else np.ones(len(self.gid), bool)
        g, size = self.gid[keep], self.table.num_rows
        return (
            np.bincount(g, minlength=size),
            np.bincount(g, self.accepted[keep], size).astype(np.int64),
            np.bincount(g, self.judged[keep], size).astype(np.int64),
        )


def next_round(folder, r: int, k: int, n: int, specs) -> Round | None:
    """Round ``r`` (>= 1) of a k-run, from what is committed: the sample ids of samples
    ``cut[r-1]..cut[r]-1`` of every group with fewer than k accepted below ``cut[r-1]`` (and one
    judged), less those already committed; a round with none is passed over for the next; None
    when no round has any. ``specs``: ``samples.plan_samples`` of the run."""
    c = cuts(k, n)
    if r >= len(c):
        return None
    rows = committed_samples(folder)
    g = Groups.of(rows)
    _, acc, judged = g.counts(below=c[r - 1])
    need = g.table.take(np.flatnonzero((acc < k) & (judged > 0)))
    by_key = {(s.mode.name, s.budget, s.min_thinking, s.effort, s.index): s for s in specs}
    have = DoneSet.of([x for x in rows["sample_id"].to_pylist() if x])
    ids = []
    for row in need.to_pylist():
        for i in range(c[r - 1], c[r]):
            spec = by_key.get(
                (row["mode"], row["thinking_budget"], row["min_thinking_tokens"], row["reasoning_effort"], i)
            )
            if spec is not None and not have.has(sid := spec.sample_id(row["prompt_id"])):
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
    whole = per_input // n * cuts(k, n)[0]  # groups per prompt x samples in round 0
    held = int(pc.sum(pc.equal(pc.value_counts(first["prompt_id"]).field("counts"), whole)).as_py() or 0)
    others = set()
    for status, t in folder.tables(["prompt_id", "location"], ("error", "earlier")):
        if "location" in t.column_names:
            others |= {
                (status, loc)
                for pid, loc in zip(t["prompt_id"].to_pylist(), t["location"].to_pylist())
                if pid is None or status == "earlier"
            }
    return held + len(others) >= inputs


@dataclass
class Outcome:
    """Per group at the end of a k-run: what it got, and what the accounting expects of it."""

    groups: pa.Table  # GROUP columns, made, accepted, judged, expected
    keys: pa.Array | None = None  # each group's key string (``_keys``), for stamping parts
    rows: pa.Table | None = None  # the committed sample rows (``committed_samples``)

    @property
    def expected(self) -> int:
        return int(pc.sum(self.groups["expected"]).as_py() or 0)


def outcome(folder, k: int, n: int) -> Outcome:
    """Each group's samples and verdicts, and how many samples the accounting expects of it: what
    the rule makes given its verdicts (the first cut at which k had passed or none had reached the
    filters, else n), or what it holds where that is more (a resume that redid a transient error
    which then passed; a prompt whose every sample failed in prepare)."""
    rows = committed_samples(folder)
    g = Groups.of(rows)
    made, acc, judged = g.counts()
    expected = np.full(len(made), n, np.int64)
    settled = np.zeros(len(made), bool)
    for c in cuts(k, n)[:-1]:
        _, acc_c, judged_c = g.counts(below=c)
        now = ~settled & ((acc_c >= k) | (judged_c == 0))
        expected[now], settled[now] = c, True
    table = (
        g.table.append_column("made", pa.array(made, pa.int64()))
        .append_column("accepted", pa.array(acc, pa.int64()))
        .append_column("judged", pa.array(judged, pa.int64()))
        .append_column("expected", pa.array(np.maximum(expected, made), pa.int64()))
    )
    return Outcome(table, g.keys, rows)


def stamp_table(t: pa.Table, o: Outcome) -> pa.Table:
    """``t`` (a committed part of samples) with its groups' ``prompt_samples``, ``prompt_accepted``
    and ``prompt_pass_rate``."""
    at = pc.index_in(_keys(t), value_set=o.keys)
    made = pc.take(o.groups["made"], at)
    acc = pc.take(o.groups["accepted"], at)
    values = {
        "prompt_samples": made,
        "prompt_accepted": acc,
        "prompt_pass_rate": pc.round(pc.divide(pc.cast(acc, pa.float64()), pc.cast(made, pa.float64())), 4),
    }
    for name, col in values.items():
        i = t.schema.get_field_index(name)
        t = t.set_column(i, name, col) if i >= 0 else t.append_column(name, col)
    return t


def pass_rates(o: Outcome) -> dict[str, int]:
    """Groups by pass rate, in tenths (``"0.0"`` = under 0.1; ``"1.0"`` = all passed).

    >>> g = pa.table({"made": [2, 4, 8, 3], "accepted": [2, 1, 0, 2]})
    >>> pass_rates(Outcome(g))
    {'0.0': 1, '0.2': 1, '0.6': 1, '1.0': 1}
    """
    made, acc = np.array(o.groups["made"].to_pylist()), np.array(o.groups["accepted"].to_pylist())
    bins = np.floor(np.divide(acc, np.maximum(made, 1)) * 10 + 1e-9).astype(int)
    values, counts = np.unique(bins, return_counts=True)
    return {f"{v / 10:.1f}": int(c) for v, c in zip(values.tolist(), counts.tolist())}


def unsolved(o: Outcome, k: int, n: int, folder=None) -> list[dict]:
    """The groups that got n samples without k passing (as ``unsolved.jsonl`` of adaptive runs),
    with their prompt's source and reference (read from ``folder`` for those prompts only)."""
    g = o.groups.filter(pc.and_(pc.greater_equal(o.groups["made"], n), pc.less(o.groups["accepted"], k)))
    first: dict[str, dict] = {}
    if g.num_rows and folder is not None:
        ids = g["prompt_id"].unique()
        for _, t in folder.tables(["prompt_id", "source", "reference"], ("accepted", "rejected")):
            t = t.filter(pc.is_in(t["prompt_id"], ids))
            for r in t.to_pylist():
                first.setdefault(r["prompt_id"], r)
    return [
        {
            **{c: row[c] for c in GROUP},
            "samples": row["made"],
            "accepted": row["accepted"],
            "source": first.get(row["prompt_id"], {}).get("source"),
            "reference": first.get(row["prompt_id"], {}).get("reference"),
        }
        for row in sorted(g.to_pylist(), key=lambda x: (x["prompt_id"], x["mode"]))
    ]


def summary(o: Outcome, k: int, n: int, unsolved_file: str | None) -> dict:
    """The summary's ``verified`` block."""
    g = o.groups
    made, acc = np.array(g["made"].to_pylist(), np.int64), np.array(g["accepted"].to_pylist(), np.int64)
    judged = np.array(g["judged"].to_pylist(), np.int64)
    index = np.array(o.rows["sample_index"].to_pylist(), np.int64) if o.rows.num_rows else np.zeros(0, np.int64)
    c = cuts(k, n)
    return {
        "k": k,
        "n": n,
        "cuts": c,
        "samples_by_round": [int(((index >= lo) & (index < hi)).sum()) for lo, hi in zip([0, *c[:-1]], c)],
        "groups": int(g.num_rows),
        "reached_k": int((acc >= k).sum()),
        "unsolved": int(((made >= n) & (acc < k)).sum()),
        "stopped_on_errors": int((judged == 0).sum()),
        "samples_made": int(made.sum()),
        "samples_saved": int(g.num_rows * n - o.expected),
        "pass_rate": round(float(acc.sum() / made.sum()), 4) if made.sum() else None,
        "pass_rates": pass_rates(o),
        "unsolved_file": unsolved_file,
    }
