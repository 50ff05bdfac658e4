"""Counting what a run wrote: one ``Tally`` per written table, added up into the run's.

A sink calls ``Tally.of(table)`` on the rows it writes and returns it; the driver adds the
tallies of all write tasks (``Tally.total``) and ``pipeline.report.summary`` turns the total into
``summary.json``. Keys are tuples (``(mode, status)``, ``(filter, outcome)``), never strings to
split again. The summary counts the run folder's committed parts (``Tally.of_committed``), so a
resumed run reports what it holds. The engine timings are not in the rows: each part carries its
own in its Parquet metadata (``TIMING_KEY``, ``timing_meta``), stamped with the attempt (the
driver's start time) that made it, so a run resumed after a crash reports every attempt's engine
windows, not only the last one's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import pyarrow as pa
import pyarrow.compute as pc

from .bins import length_bin
from .windows import Window, merged

#: Statuses a written row can have, and where it goes.
WRITTEN = ("accepted", "rejected", "error", "earlier")
TOKEN_COLUMNS = ("prompt_tokens", "thinking_tokens", "answer_tokens", "completion_tokens")
_OUTCOME = {True: "passed", False: "failed", None: "skipped"}
_FOLLOWED = {True: "followed", False: "not_followed", None: "no_flag"}
#: read only for the samples the engine stopped as loops (``generation.stop_loops``)
_LOOP_COLUMNS = ["finish_reason", "sampling"]
_COLUMNS = [
    "status",
    "reject_reason",
    "error",
    "mode",
    "source",
    "budget_hit",
    "verdicts",
    "thinking_budget",
    "min_thinking_tokens",
    "extensions",
    "reasoning_effort",
    "replica",
    "t_submit",
    "t_done",
    "flag",
    "flag_turn",
    "turns",
    "generated_by",
    *TOKEN_COLUMNS,
]
#: Throughput over time: at most this many time buckets; their width doubles until the run fits.
TIME_BUCKETS = 100
#: The Parquet metadata key of a part's engine timings.
TIMING_KEY = b"thinkmill.timing"


#: a ``Tally`` field that merges its own way in ``Tally.add`` (every other field is a count or a Counter)
OWN: dict = {"merge": "own"}


@dataclass
class Tally:
    rows: int = 0
    files: int = 0
    status: Counter = field(default_factory=Counter)  # accepted / rejected / error
    rejected: Counter = field(default_factory=Counter)  # reject_reason
    errors: Counter = field(default_factory=Counter)  # error reason
    earlier: Counter = field(default_factory=Counter)  # run that generated a skipped prompt -> prompts
    by_mode: Counter = field(default_factory=Counter)  # (mode, status) of samples
    by_source: Counter = field(default_factory=Counter)  # (source, status) of samples
    budget_hit: int = 0
    loops_stopped: int = 0  # samples the engine stopped as loops
    loop_tokens_saved: int = 0  # ... and the tokens up to their max_tokens
    tokens: Counter = field(default_factory=Counter)  # column -> sum over samples
    filters: Counter = field(default_factory=Counter)  # (filter, passed / failed / skipped)
    filter_reasons: Counter = field(default_factory=Counter)  # (filter, reason)
    # (mode, budget, min thinking, samples / thinking / hit / extensions / judged / correct)
    budgets: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)  # (mode, flag or 'none', flag_turn or '-', status)
    turns: Counter = field(default_factory=Counter)  # (flag or 'none', followed / not_followed / no_flag)
    # what samples cost: (mode, budget, min thinking, effort, accepted / rejected) -> generated tokens, and
    # (..., "kept") -> accepted samples; rejected samples' generated tokens per reject_reason
    spent: Counter = field(default_factory=Counter)
    reason_tokens: Counter = field(default_factory=Counter)
    replicas: dict = field(default_factory=dict, metadata=OWN)  # replica name -> Window
    t_first: float | None = field(default=None, metadata=OWN)  # first request into an engine
    t_last: float | None = field(default=None, metadata=OWN)  # last token out
    # bounded, whatever the run's size: the report renders from these
    reasons: Counter = field(default_factory=Counter)  # (mode, source, reject_reason) of rejected samples
    mode_filters: Counter = field(default_factory=Counter)  # (mode, filter, passed / failed / skipped)
    lengths: Counter = field(default_factory=Counter)  # (mode, status, thinking / answer, length_bin)
    tp_width: int = field(default=1, metadata=OWN)  # seconds per throughput bucket (a power of 2)
    # (replica, t // tp_width) -> generated tokens
    throughput: Counter = field(default_factory=Counter, metadata=OWN)
    # per attempt (its driver's start time): all its engines as one Window; and each replica's attempt
    attempts: dict = field(default_factory=dict, metadata=OWN)
    replica_attempt: dict = field(default_factory=dict, metadata=OWN)
    # per attempt: [engine deaths, replica restarts] its replicas had seen when a part was committed (the most)
    attempt_deaths: dict = field(default_factory=dict, metadata=OWN)

    @classmethod
    def of(cls, table: pa.Table) -> Tally:
        """What a table of ``STREAM`` rows holds (a committed part lacks the working columns:
        they count as null)."""
        t = cls(rows=table.num_rows)
        if not table.num_rows:
            return t
        have = set(table.column_names)
        if "t_submit" in have:
            t.t_first, t.t_last = pc.min(table["t_submit"]).as_py(), pc.max(table["t_done"]).as_py()
        if "finish_reason" in have and "sampling" in have:
            looped = table.filter(pc.fill_null(pc.equal(table["finish_reason"], "repetition"), False))
            if looped.num_rows:
                made = pc.add(
                    *(pc.fill_null(looped[c], 0) if c in have else 0 for c in ("thinking_tokens", "answer_tokens"))
                )
                left = pc.subtract(pc.fill_null(pc.struct_field(looped["sampling"], "max_tokens"), 0), made)
                t.loops_stopped = looped.num_rows
                t.loop_tokens_saved = pc.sum(pc.max_element_wise(left, 0)).as_py() or 0
        if t.t_first is not None:  # the buckets this table's time span fits in: no request spreads over more
            while int(t.t_last // t.tp_width) - int(t.t_first // t.tp_width) >= TIME_BUCKETS:
                t.tp_width *= 2
        rows = table.select([c for c in _COLUMNS if c in have]).to_pylist()
        missing = {c: None for c in _COLUMNS if c not in have}
        for r in rows:
            t._count({**missing, **r} if missing else r)
        for w in t.replicas.values():
            w.spans = merged(w.spans)
        t._fit_throughput(t.tp_width)
        return t

    @classmethod
    def of_committed(cls, folder) -> Tally:
        """What a run folder holds, part by part (the summary's counts: what is committed, not
        what one attempt wrote)."""
        total = cls()
        for status, table in folder.tables(_COLUMNS + _LOOP_COLUMNS):
            timing = (table.schema.metadata or {}).get(TIMING_KEY)
            table = table.append_column("status", pa.array([status] * table.num_rows, pa.string()))
            part = cls.of(table)
            part.files = 1
            total.add(part)
            if timing:
                total.add(cls.of_timing(timing))
        return total

    def stamped(self, attempt: float) -> Tally:
        """This tally's engine work as the work of one attempt (its driver's start time).

        >>> t = Tally(t_first=1.0, t_last=4.0, replicas={"r": Window(1.0, 4.0, 7, 2, [(1.0, 2.0), (3.0, 4.0)])})
        >>> a = t.stamped(0.5).attempts[0.5]; (a.start, a.end, a.tokens, a.requests, a.busy_s)
        (1.0, 4.0, 7, 2, 2.0)
        """
        if self.t_first is not None and self.replicas:
            ws = self.replicas.values()
            self.attempts = {
                attempt: Window(
                    self.t_first,
                    self.t_last,
                    sum(w.tokens for w in ws),
                    sum(w.requests for w in ws),
                    merged([s for w in ws for s in w.spans]),
                )
            }
            self.replica_attempt = {name: attempt for name in self.replicas}
        return self

    def timing_meta(self) -> bytes | None:
        """The engine timings of a stamped tally, for a part's Parquet metadata (None: it has none).

        >>> t = Tally(t_first=1.0, t_last=4.0, replicas={"r": Window(1.0, 4.0, 7, 2, [(1.0, 4.0)])})
        >>> t.throughput[("r", 1)] = 7
        >>> t.stamped(0.5).attempt_deaths = {0.5: [1, 1]}
        >>> back = Tally.of_timing(t.timing_meta())
        >>> (back.t_first, back.t_last, back.replicas == t.replicas, back.attempts == t.attempts,
        ...  back.replica_attempt, dict(back.throughput), back.attempt_deaths)
        (1.0, 4.0, True, True, {'r': 0.5}, {('r', 1): 7}, {0.5: [1, 1]})
        """
        if not self.attempts:
            return None
        return json.dumps(
            {
                "attempts": [[a, *w.as_list()] for a, w in self.attempts.items()],
                "deaths": [[a, *v] for a, v in self.attempt_deaths.items()],
                "replicas": [[n, self.replica_attempt.get(n), *w.as_list()] for n, w in self.replicas.items()],
                "tp_width": self.tp_width,
                "throughput": [[r, i, n] for (r, i), n in self.throughput.items()],
            }
        ).encode()

    @classmethod
    def of_timing(cls, raw: bytes) -> Tally:
        """The engine timings ``timing_meta`` wrote, as a tally of nothing else."""
        d = json.loads(raw)
        t = cls(tp_width=d["tp_width"], throughput=Counter({(r, i): n for r, i, n in d["throughput"]}))
        t.attempts = {a[0]: Window.of_list(a[1:]) for a in d["attempts"]}
        t.replicas = {r[0]: Window.of_list(r[2:]) for r in d["replicas"]}
        t.replica_attempt = {r[0]: r[1] for r in d["replicas"]}
        t.attempt_deaths = {a: v for a, *v in d.get("deaths", [])}  # parts written before 2026-12-03 have none
        t.t_first, t.t_last = min(w.start for w in t.attempts.values()), max(w.end for w in t.attempts.values())
        return t

    def _count(self, r: dict) -> None:
        if r["replica"] is not None and r["t_submit"] is not None:
            # per replica: its own busy window and tokens (replicas start at different times); the
            # spans are merged once the table is counted (``of``)
            w = self.replicas.setdefault(r["replica"], Window(r["t_submit"], r["t_done"]))
            w.start, w.end = min(w.start, r["t_submit"]), max(w.end, r["t_done"])
            w.tokens += r["completion_tokens"] or 0
            w.requests += 1
            w.spans.append((r["t_submit"], r["t_done"]))
            self._spread(r["replica"], r["t_submit"], r["t_done"], r["completion_tokens"] or 0)
        status = r["status"] if r["status"] in WRITTEN else "error"
        self.status[status] += 1
        if status == "earlier":  # a prompt, not a sample: its samples are in another run
            self.earlier[r["generated_by"]] += 1
            return
        if status == "rejected":
            self.rejected[r["reject_reason"]] += 1
        elif status == "error":
            self.errors[r["error"] or "unfinished"] += 1
        if status == "error":
            return
        mode = r["mode"]
        self.by_mode[(mode, status)] += 1
        self.by_source[(r["source"], status)] += 1
        self.budget_hit += bool(r["budget_hit"])
        # the fusion mix: which mode and which flag (where) each written sample carries
        self.flags[(mode, r["flag"] or "none", r["flag_turn"] or "-", status)] += 1
        for turn in r["turns"] or []:
            self.turns[(turn["flag"] or "none", _FOLLOWED[turn["followed"]])] += 1
        for c in TOKEN_COLUMNS:
            self.tokens[c] += r[c] or 0
        for part in ("thinking", "answer"):
            if r[f"{part}_tokens"] is not None:
                self.lengths[(mode, status, part, length_bin(r[f"{part}_tokens"]))] += 1
        if status == "rejected":
            self.reasons[(mode, r["source"], r["reject_reason"])] += 1
        # per mode, budget, thinking minimum and reasoning effort, for the budget report: samples,
        # thinking, hits, extensions (s1's forcing), verified accuracy
        key = (mode, r["thinking_budget"], r["min_thinking_tokens"], r["reasoning_effort"])
        self.spent[(*key, status)] += r["completion_tokens"] or 0
        self.spent[(*key, "kept")] += status == "accepted"
        if status == "rejected":
            self.reason_tokens[r["reject_reason"]] += r["completion_tokens"] or 0
        self.budgets[(*key, "samples")] += 1
        self.budgets[(*key, "thinking")] += r["thinking_tokens"] or 0
        self.budgets[(*key, "hit")] += bool(r["budget_hit"])
        self.budgets[(*key, "extensions")] += r["extensions"] or 0
        for v in r["verdicts"] or []:
            if v["filter"] == "wrong_answer" and v["passed"] is not None:
                self.budgets[(*key, "judged")] += 1
                self.budgets[(*key, "correct")] += bool(v["passed"])
            self.filters[(v["filter"], _OUTCOME[v["passed"]])] += 1
            self.mode_filters[(mode, v["filter"], _OUTCOME[v["passed"]])] += 1
            if v["reason"]:
                self.filter_reasons[(v["filter"], v["reason"])] += 1

    def add(self, other: Tally) -> Tally:
        """``other`` added in: counts and Counters add up by themselves (a new one needs no line
        here); the fields marked ``OWN`` merge as written below."""
        for f in fields(self):
            if f.metadata.get("merge") == "own":
                continue
            mine = getattr(self, f.name)
            if isinstance(mine, Counter):
                mine.update(getattr(other, f.name))
            else:
                setattr(self, f.name, mine + getattr(other, f.name))
        width = max(self.tp_width, other.tp_width)
        mine = self._rebucket(self.throughput, self.tp_width, width)
        mine.update(self._rebucket(other.throughput, other.tp_width, width))
        self.tp_width, self.throughput = width, mine
        self._fit_throughput(width)
        for name, w in other.replicas.items():
            self.replicas.setdefault(name, Window(w.start, w.end)).add(w)
        for attempt, w in other.attempts.items():
            self.attempts.setdefault(attempt, Window(w.start, w.end)).add(w)
        self.replica_attempt.update(other.replica_attempt)
        for attempt, v in other.attempt_deaths.items():  # counters seen at different commits: the latest is the most
            self.attempt_deaths[attempt] = [max(a, b) for a, b in zip(self.attempt_deaths.get(attempt, [0, 0]), v)]
        self.t_first = _pick(min, self.t_first, other.t_first)
        self.t_last = _pick(max, self.t_last, other.t_last)
        return self

    def _spread(self, replica: str, start: float, end: float, tokens: int) -> None:
        """A request's tokens over the buckets it was in its engine for, in proportion to its time
        in each (whole tokens, rounded cumulatively so they add up).

        >>> t = Tally(tp_width=2); t._spread("r", 1.0, 6.0, 10); sorted(t.throughput.items())
        [(('r', 0), 2), (('r', 1), 4), (('r', 2), 4)]
        """
        first, last = int(start // self.tp_width), int(end // self.tp_width)
        given = 0
        for i in range(min(first, last), last + 1):
            upto = tokens if i == last else round(tokens * ((i + 1) * self.tp_width - start) / (end - start))
            if upto > given:
                self.throughput[(replica, i)] += upto - given
                given = upto

    @staticmethod
    def _rebucket(buckets: Counter, width: int, to: int) -> Counter:
        """Buckets of ``width`` s as buckets of ``to`` s (a multiple: both are powers of 2)."""
        if to == width:
            return Counter(buckets)
        out: Counter = Counter()
        for (replica, i), n in buckets.items():
            out[(replica, i // (to // width))] += n
        return out

    def _fit_throughput(self, width: int) -> None:
        """The narrowest bucket width of at least ``width`` that spans the run in ``TIME_BUCKETS``:
        it depends on the data alone (not on the order tallies were added in), so ``add`` stays
        associative and a run of any length keeps at most ``TIME_BUCKETS`` per replica.

        >>> def part(*done):  # one sample of 10 tokens per time, from replica r
        ...     t = Tally(); t.throughput.update({("r", d): 10 for d in done}); t._fit_throughput(1); return t
        >>> a, b, c = part(0, 5), part(150), part(420, 421)
        >>> x, y = Tally().add(a).add(b).add(c), Tally().add(a).add(Tally().add(b).add(c))
        >>> (x.tp_width, sorted(x.throughput.items())) == (y.tp_width, sorted(y.throughput.items()))
        True
        >>> x.tp_width, sorted(x.throughput.items())
        (8, [(('r', 0), 20), (('r', 18), 10), (('r', 52), 20)])
        """
        buckets = self._rebucket(self.throughput, self.tp_width, width)
        while buckets:
            idx = [i for _, i in buckets]
            if max(idx) - min(idx) < TIME_BUCKETS:
                break
            buckets = self._rebucket(buckets, width, width * 2)
            width *= 2
        self.tp_width, self.throughput = width, buckets

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        out = cls()
        for t in tallies:
            out.add(t)
        return out


def _pick(f, a, b):
    return b if a is None else (a if b is None else f(a, b))
