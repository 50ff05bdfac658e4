"""The report of a real run (the session's generation runs, ``tests/generate_runs.py``: tiny
teacher, real engine), checked against its summary.json and drawn by a real browser (headless
Chromium: installed by ``make install`` or here where missing; the test skips, saying why, only
where it cannot be installed)."""

from __future__ import annotations

import json

import pytest

from tests.report_checks import external_loads, mismatches, must_show, picture, screenshot, shown

pytestmark = pytest.mark.engine


def _run(runs, run_id: str) -> tuple:
    run_dir = runs["out"] / run_id
    return (
        run_dir,
        json.loads((run_dir / "summary.json").read_text(encoding="utf-8")),
        (run_dir / "report.html").read_text(encoding="utf-8"),
    )


def test_a_real_runs_report_shows_its_summarys_counts(runs):
    run_dir, summary, page = _run(runs, "a")
    assert summary["report"] == f"{run_dir}/report.html"
    assert not mismatches(page, {None: summary})
    assert not must_show(summary) - shown(page)
    # every sample is in the length histograms of its mode and outcome, and nothing is loaded or run
    for mode, outcomes in summary["lengths"]["by_mode"].items():
        for status, parts in outcomes.items():
            assert {sum(h.values()) for h in parts.values()} == {summary["by_mode"][mode][status]}
    assert summary["throughput"]["by_replica"] and not external_loads(page)
    for section in ("funnel", "filters", "lengths", "budgets", "examples", "throughput", "provenance"):
        assert f'<section id="{section}">' in page
    assert "data:image/png;base64," in page  # the sweep's budget plot, embedded


def test_the_report_draws_in_a_real_browser(runs, tmp_path):
    run_dir, _, _ = _run(runs, "a")
    seen = picture(screenshot(run_dir / "report.html", tmp_path / "report.png", 2400))
    assert seen["size"] == (1280, 2400)
    assert seen["colours"] > 300 and seen["ink"] > 0.08, seen
    assert seen["header"] and seen["accepted_green"] and seen["rejected_orange"], seen
    # the same check on a blank page fails
    (tmp_path / "blank.html").write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    blank = picture(screenshot(tmp_path / "blank.html", tmp_path / "blank.png", 600))
    assert blank["colours"] < 5 and blank["ink"] < 0.01 and not blank["header"], blank


def test_two_real_runs_side_by_side(runs, tmp_path):
    from jobs.report import main

    _, a, _ = _run(runs, "a")
    _, b, _ = _run(runs, "b")
    out = tmp_path / "a-vs-b.html"
    assert main([str(runs["out"] / "a"), "--compare", str(runs["out"] / "b"), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert not mismatches(page, {"a": a, "b": b}) and not external_loads(page)
    assert "a vs b" in page and 'aria-label="think thinking lengths, a and b"' in page
    seen = picture(screenshot(out, tmp_path / "compare.png", 1600))
    assert seen["colours"] > 100 and seen["header"], seen
