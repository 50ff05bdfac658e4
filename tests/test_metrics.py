"""The live metrics' counting and the README's dashboard for them, without a cluster (the
scrape of a real `ray start` cluster's endpoints is in tests/test_cluster_submit.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa

from pipeline import metrics

ROOT = Path(__file__).resolve().parents[1]


def test_finished_rows_count_by_outcome_and_reason_and_tokens_by_replica(monkeypatch):
    seen = []
    monkeypatch.setattr(metrics, "inc", lambda name, value=1, **tags: seen.append((name, value, tags)))
    t = pa.Table.from_pylist(
        [
            {
                "status": "accepted",
                "mode": "think",
                "reject_reason": None,
                "error": None,
                "replica": "h:1",
                "completion_tokens": 10,
            },
            {
                "status": "rejected",
                "mode": "think",
                "reject_reason": "wrong_answer",
                "error": None,
                "replica": "h:2",
                "completion_tokens": 5,
            },
            {
                "status": "accepted",
                "mode": "think",
                "reject_reason": None,
                "error": None,
                "replica": "h:1",
                "completion_tokens": 7,
            },
            {
                "status": "error",
                "mode": None,
                "reject_reason": None,
                "error": "invalid_json",
                "replica": None,
                "completion_tokens": None,
            },
        ]
    )
    metrics.rows_done(t, "night")
    assert sorted(seen, key=str) == sorted(
        [
            ("thinkmill_samples", 2, {"run_id": "night", "mode": "think", "outcome": "accepted", "reason": ""}),
            (
                "thinkmill_samples",
                1,
                {"run_id": "night", "mode": "think", "outcome": "rejected", "reason": "wrong_answer"},
            ),
            ("thinkmill_samples", 1, {"run_id": "night", "mode": "", "outcome": "error", "reason": "invalid_json"}),
            ("thinkmill_generated_tokens", 17, {"run_id": "night", "replica": "h:1"}),
            ("thinkmill_generated_tokens", 5, {"run_id": "night", "replica": "h:2"}),
        ],
        key=str,
    )


def test_a_metric_that_cannot_be_recorded_is_skipped(monkeypatch, caplog):
    def broken(name):
        raise RuntimeError(f"no exporter for {name}")

    monkeypatch.setattr(metrics, "_metric", broken)
    caplog.set_level("DEBUG", logger="pipeline.metrics")
    metrics.inc("thinkmill_samples", 1, run_id="x")
    metrics.gauge("thinkmill_prompts_left", 3, run_id="x")
    metrics.rows_done(pa.Table.from_pylist([{"status": "accepted"}]), "x")  # the other columns missing too
    assert caplog.text.count("not recorded: no exporter") == 3


def test_the_readmes_dashboard_reads_the_metrics_the_job_exports():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    board = json.loads(readme.split("A Grafana dashboard for them")[1].split("```json")[1].split("```")[0])
    exported = {f"ray_{n}" + ("_total" if kind == "counter" else "") for n, (kind, _, _) in metrics.METRICS.items()}
    used = {m for p in board["panels"] for t in p["targets"] for m in re.findall(r"ray_thinkmill_\w+", t["expr"])}
    assert used and used <= exported, used - exported
    table = set(re.findall(r"`(ray_thinkmill_\w+)`", readme))
    assert table == exported, table ^ exported
