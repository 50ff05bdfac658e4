"""The report's sections on how the run went: throughput over time (per replica, failed engine
starts, lost nodes, attempts) and provenance with the config. Each takes the summary dict."""

from __future__ import annotations

import json
import time

from .page import esc, num, section, table
from .svg import PALETTE, lines


def throughput(s: dict) -> str:
    tp = s.get("throughput") or {}
    work = s.get("replica_work") or {}
    if not tp.get("by_replica") and not work:
        return ""
    body = []
    if tp.get("by_replica"):
        w = tp["bucket_s"]
        series = [
            (name, PALETTE[i % 10], [(k * w, n / w) for k, n in enumerate(buckets)])
            for i, (name, buckets) in enumerate(tp["by_replica"].items())
        ]
        body.append(
            f'<p class="note">Generated tokens per second per replica, in {w} s buckets (each request\'s '
            "tokens spread over its time in the engine), from the first request on.</p>"
            + '<div class="chart">'
            + lines(series, "throughput per replica", "seconds", "generated tokens / s")
            + "</div>"
        )
    if work:
        body.append(
            table(
                ["replica", "requests", "tokens", "busy s", "window s", "idle at end s"],
                [
                    [
                        esc(n),
                        num(d["requests"], ("replica_work", n, "requests")),
                        num(d["tokens"], ("replica_work", n, "tokens")),
                        esc(d["busy_s"]),
                        esc(d["window_s"]),
                        esc(d["idle_at_end_s"]),
                    ]
                    for n, d in work.items()
                ],
            )
        )
        util = s.get("replica_utilization")
        body.append(
            f'<p class="note">utilization {"-" if util is None else format(util, ".0%")} (busy time over '
            f"configured replicas x the engines' window); {esc(s.get('replica_restarts', 0))} replica "
            f"restarts, {esc(s.get('engine_deaths', 0))} engine deaths (over all attempts).</p>"
        )
    if s.get("failed_starts"):  # teacher.min_replicas: starts that failed (retried) or hung past start_timeout_s
        body.append(
            f'<p class="note">{esc(s["failed_starts"])} engine start(s) failed and were retried; the last '
            f"{len(s['start_failures'])}:</p>"
            + table(
                ["host", "when (UTC)", "why"],
                [
                    [esc(f["host"]), esc(time.strftime("%H:%M:%S", time.gmtime(f["at"]))), esc(f["reason"][:500])]
                    for f in s["start_failures"]
                ],
            )
        )
    for e in s.get("nodes_lost") or []:  # pipeline.node_loss: a pass a lost node stopped, redone
        body.append(
            f'<p class="note">{esc(time.strftime("%H:%M:%S", time.gmtime(e["at"])))} UTC: node(s) '
            f"{esc(', '.join(e['nodes']))} lost; {esc(e['actors'])} pipeline actor(s) found no room on the "
            f"other nodes within {esc(e['waited_s'])} s (ray.node_loss_grace_s); the pass was stopped and "
            f"what it had not committed was made in a new pass on the nodes that remained.</p>"
        )
    attempts = s.get("attempts") or []
    if len(attempts) > 1:  # a resumed run: the engine figures add up every attempt that committed rows
        body.append(
            '<p class="note">Attempts that committed generated rows (the engines\' window is the sum of '
            "theirs; the time between attempts is not counted):</p>"
            + table(
                [
                    "started (UTC)",
                    "engines' window s",
                    "requests",
                    "tokens",
                    "busy s",
                    "engine deaths",
                    "replica restarts",
                ],
                [
                    [
                        esc(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(a["started"]))),
                        esc(a["engine_window_s"]),
                        esc(a["requests"]),
                        esc(a["tokens"]),
                        esc(a["busy_s"]),
                        esc(a.get("engine_deaths", "-")),
                        esc(a.get("replica_restarts", "-")),
                    ]
                    for a in attempts
                ],
            )
        )
    return section("throughput", "Throughput over time", "".join(body))


def provenance(s: dict, config: dict | None, config_note: str, created: float | None) -> str:
    import yaml

    items = [
        ("run_id", s.get("run_id")),
        ("output", s.get("output")),
        ("teacher", s.get("teacher")),
        ("dialect", s.get("dialect")),
        ("fingerprint", s.get("fingerprint")),
        ("started", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(created)) if created else None),
        ("resumed", json.dumps(s["resumed"]) if s.get("resumed") else None),
        *(((f"version: {k}", v) for k, v in (s.get("versions") or {}).items())),
    ]
    body = table(["", ""], [[esc(k), esc(v)] for k, v in items if v is not None], cls="left")
    if config:
        body += (
            f'<h3>Config</h3><p class="note">{esc(config_note)}</p><pre class="cfg">'
            f"{esc(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))}</pre>"
        )
    return section("provenance", "Provenance and config", body)
