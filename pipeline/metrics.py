"""Live metrics for the cluster's monitoring, through Ray's metrics API (``ray.util.metrics``).

Ray exports them on every node's metrics endpoint (``ray start --metrics-export-port``), in
Prometheus' format, with the ``ray_`` prefix (and ``_total`` on counters), and its dashboard's
Grafana shows them. Every series carries the run's ``run_id``. Where each is counted:

- ``thinkmill_samples{run_id, mode, outcome, reason}`` (counter): each row as it leaves the last
  stage: outcome ``accepted`` / ``rejected`` (reason: the reject reason) / ``error`` (the error) /
  ``earlier`` (a prompt an earlier night made). A clean run's totals equal ``summary.json``'s.
- ``thinkmill_generated_tokens{run_id, replica}`` (counter): generated tokens of those samples,
  per replica (``host:pid``), as the summary's ``replica_work``.
- ``thinkmill_requests_in_flight{run_id, replica}`` (gauge): requests in the replica's engine now.
- ``thinkmill_engine_deaths{run_id}``, ``thinkmill_replica_restarts{run_id}`` (counters): from the
  replicas' book (``suspects.DeathBook``).
- ``thinkmill_samples_left{run_id}``, ``thinkmill_prompts_left{run_id}`` (gauges): from the
  driver's progress line, what is still to make.

Counters outlive the process that counted (Ray's agent keeps them); gauges go with it. A metric
that cannot be recorded (no Ray worker, an exporter error) is skipped: counting never fails a row.
"""

from __future__ import annotations

import logging
from collections import Counter

import pyarrow as pa

log = logging.getLogger(__name__)

#: name -> (kind, description, tag keys)
METRICS = {
    "thinkmill_samples": ("counter", "samples written, by outcome and reason", ("run_id", "mode", "outcome", "reason")),
    "thinkmill_generated_tokens": (
        "counter",
        "generated tokens of written samples, per replica",
        ("run_id", "replica"),
    ),
    "thinkmill_requests_in_flight": ("gauge", "requests in the replica's engine", ("run_id", "replica")),
    "thinkmill_engine_deaths": ("counter", "teacher engines that died", ("run_id",)),
    "thinkmill_replica_restarts": ("counter", "replicas started again after their process ended", ("run_id",)),
    "thinkmill_samples_left": ("gauge", "samples still to make", ("run_id",)),
    "thinkmill_prompts_left": ("gauge", "prompts still to make (samples left / samples per prompt)", ("run_id",)),
}
_made: dict = {}


def run_tag(job) -> str:
    """The ``run_id`` tag of a job's series: the generation run's id; ``filter`` for the filter job."""
    output = getattr(job, "output", None)
    return getattr(output, "run_id", None) or "filter"


def _metric(name: str):
    if name not in _made:
        from ray.util import metrics

        kind, description, tags = METRICS[name]
        _made[name] = (metrics.Counter if kind == "counter" else metrics.Gauge)(
            name, description=description, tag_keys=tags
        )
    return _made[name]


def inc(name: str, value: float = 1, **tags) -> None:
    """Add ``value`` to a counter (never raises)."""
    if value <= 0:
        return
    try:
        _metric(name).inc(value, tags={k: str(v) for k, v in tags.items()})
    except Exception as e:  # noqa: BLE001 - a metric is not worth a row
        log.debug("metric %s not recorded: %s", name, e)


def gauge(name: str, value: float, **tags) -> None:
    """Set a gauge (never raises)."""
    try:
        _metric(name).set(value, tags={k: str(v) for k, v in tags.items()})
    except Exception as e:  # noqa: BLE001 - as above
        log.debug("metric %s not recorded: %s", name, e)


def rows_done(table: pa.Table, run_id: str) -> None:
    """Count a batch of finished rows (the last stage's output): samples by outcome and reason,
    generated tokens per replica."""
    if not table.num_rows:
        return
    cols = {
        c: table[c].to_pylist() if c in table.column_names else [None] * table.num_rows
        for c in ("status", "mode", "reject_reason", "error", "replica", "completion_tokens")
    }
    samples, tokens = Counter(), Counter()
    for status, mode, why, error, replica, n in zip(*cols.values()):
        outcome = status if status in ("accepted", "rejected", "earlier") else "error"
        reason = why if outcome == "rejected" else (error or "unfinished") if outcome == "error" else ""
        samples[(mode or "", outcome, reason or "")] += 1
        if outcome in ("accepted", "rejected") and replica is not None:
            tokens[replica] += n or 0
    for (mode, outcome, reason), n in samples.items():
        inc("thinkmill_samples", n, run_id=run_id, mode=mode, outcome=outcome, reason=reason)
    for replica, n in tokens.items():
        inc("thinkmill_generated_tokens", n, run_id=run_id, replica=replica)
