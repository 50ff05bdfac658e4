"""The run report (``pipeline.report``, ``jobs.report``) on run folders made by hand: the same
parts, tallies, summary and report a job writes, without Ray or an engine. The real runs' reports
(and the browser) are checked in ``tests/test_report_browser.py``."""

from __future__ import annotations

import json
import logging
import random

import pytest

from pipeline import report
from pipeline.report import modes
from pipeline.report import summary as summaries
from pipeline.run_folder import RunFolder
from pipeline.schema import to_table
from pipeline.sink import SplitParquetSink
from pipeline.tally import TIME_BUCKETS, Tally
from tests.report_checks import counts, external_loads, lookup, mismatches, must_show, shown

SCRIPT = '<script>alert("x")</script>'
FILTERS = ["format", "wrong_answer", "repetition"]
REASONS = {"format": "think_tag_in_answer", "wrong_answer": "wrong_answer", "repetition": "repetition"}
SOURCES = ["gsm8k", "math.v2", "tiny/add"]  # a dot and a slash: key paths must survive them


def _sample(rng, i: int, mode: str, k: int, reason: str | None, t0: float, sources: list) -> dict:
    thinking = "" if mode == "no_think" else "step " * rng.randint(5, 900)
    answer = (
        SCRIPT + " \\boxed{4}" if reason == "think_tag_in_answer" else "The answer is \\boxed{4}. " * rng.randint(1, 40)
    )
    verdicts = [
        {
            "filter": f,
            "passed": REASONS[f] != reason,
            "reason": None if REASONS[f] != reason else reason,
            "score": None,
            "detail": f"detail of {f} {SCRIPT}" if REASONS[f] == reason else None,
        }
        for f in FILTERS
    ]
    done = t0 + rng.uniform(0, 3600 * 10)  # ten hours of a night
    tokens = {"thinking_tokens": len(thinking.split()), "answer_tokens": len(answer.split()) * 3}
    return {
        "sample_id": f"s{i}-{mode}-{k}",
        "prompt_id": f"p{i}",
        "run_id": "night",
        "source": sources[i % len(sources)],
        "location": f"in.jsonl:{i + 1}",
        "mode": mode,
        "status": "rejected" if reason else "accepted",
        "messages": [
            {"role": "user", "content": f"What is 2 + 2? {SCRIPT}"},
            {"role": "assistant", "content": f"<think>\n{thinking}\n</think>\n\n{answer}"},
        ],
        "thinking": thinking,
        "answer": answer,
        "reject_reason": reason,
        "verdicts": verdicts,
        "finish_reason": "stop",
        "thinking_budget": None,
        "budget_hit": False,
        "prompt_tokens": 12,
        **tokens,
        "completion_tokens": sum(tokens.values()),
        "reference": "4",
        "teacher": "/models/t",
        "replica": f"host:{i % 2}",
        "t_submit": done - 5,
        "t_done": done,
    }


def make_run(
    tmp_path,
    run_id: str = "night",
    prompts: int = 12,
    bad: int = 2,
    seed: int = 0,
    sources: list = SOURCES,
    earlier: int = 0,
) -> tuple:
    """A run folder as the generation job leaves it: parts, summary (``summary.build`` over the
    committed parts' tally and the write tasks' timings), report.html, summary.json last."""
    from pipeline.loading import load_config

    cfg = load_config(
        "configs/local.yaml",
        [
            f"output.path={tmp_path}",
            f"output.run_id={run_id}",
            f"filters.order={json.dumps(FILTERS)}",
            "storage_options.s3.key=AKIA-SECRET-KEY",
            "storage_options.s3.secret=THE-SECRET-VALUE",
        ],
    )
    rng = random.Random(seed)
    t0 = 1.8e9
    rows = [
        _sample(rng, i, mode, k, rng.choice([None, None, *REASONS.values()]), t0, sources)
        for i in range(prompts)
        for mode in ("think", "no_think")
        for k in range(2)
    ]
    rows += [
        {"prompt_id": f"old{j}", "status": "earlier", "generated_by": "night-0", "location": f"old.jsonl:{j}"}
        for j in range(earlier)
    ]
    rows += [
        {
            "sample_id": f"e{j}-{k}",
            "status": "error",
            "stage": "prepare",
            "error": "invalid_json",
            "detail": f"not valid JSON {SCRIPT}",
            "location": f"in.jsonl:{prompts + j + 1}",
            "input": SCRIPT,
            "mode": "think",
        }
        for j in range(bad)
        for k in range(4)
    ]
    stream = to_table(rows)
    folder = RunFolder(str(tmp_path / run_id))
    ident = {
        "config": {k: v for k, v in json.loads(cfg.model_dump_json()).items() if k != "storage_options"},
        "input": {"files": [{"path": "in.jsonl", "bytes": 1}], "rows": prompts + bad + earlier},
    }
    assert folder.open(ident, overwrite=False) == "new"  # run.json, as a job starts
    sink = SplitParquetSink(folder, 1000)  # as a job writes: the engine timings go in the parts' metadata
    sink.on_write_start()
    sink.write([stream], None)
    t = Tally.of_committed(folder)
    s = summaries.build(cfg, prompts + bad + earlier, 4, folder.url, t, summaries.RunFacts(600.0))
    s["report"] = report.write(folder, s, report.resolved_config(cfg))
    folder.finish(s)
    return folder, json.loads((tmp_path / run_id / "summary.json").read_text()), rows


@pytest.fixture
def run(tmp_path):
    folder, summary, rows = make_run(tmp_path, earlier=3)
    return {
        "folder": folder,
        "summary": summary,
        "rows": rows,
        "page": (tmp_path / "night" / "report.html").read_text(encoding="utf-8"),
    }


def test_every_count_on_the_page_is_the_summarys(run):
    page, s = run["page"], run["summary"]
    assert s["report"].endswith("/night/report.html")
    assert s["accounted"] and s["earlier"]["samples"] == 12 and s["errors"]["total"] == 8
    assert not mismatches(page, {None: s})
    missing = must_show(s) - shown(page)
    assert not missing, f"counts of summary.json the report does not show: {sorted(missing)}"
    assert len(counts(page)) > 60
    # the check bites: a summary one count off is caught
    off = json.loads(json.dumps(s))
    off["rejected"]["by_reason"]["repetition"] += 1
    bad = mismatches(page, {None: off})
    assert bad and all(b.startswith("None ['rejected', 'by_reason', 'repetition']: page") for b in bad)


def test_rows_without_a_source_are_counted_under_null(tmp_path):
    _, s, _ = make_run(tmp_path, sources=[None])  # the filter job's rows carry none
    page = (tmp_path / "night" / "report.html").read_text(encoding="utf-8")
    assert set(s["by_source"]) == {"null"} and not mismatches(page, {None: s}) and "<td>(none)</td>" in page
    assert ("by_source", "null", "accepted") in shown(page)


def test_the_length_histograms_hold_every_sample_in_a_fixed_number_of_bins(run):
    s, rows = run["summary"], run["rows"]
    by = s["lengths"]["by_mode"]
    for mode, outcomes in by.items():
        for status, parts in outcomes.items():
            for part, hist in parts.items():
                assert sum(hist.values()) == s["by_mode"][mode][status], (mode, status, part)
                assert len(hist) <= 40
    # thinking of 5..900 tokens spreads over log bins; each bin's count is the rows in its range
    think = [r["thinking_tokens"] for r in rows if r.get("mode") == "think" and r["status"] == "accepted"]
    hist = by["think"]["accepted"]["thinking"]
    edges = sorted(int(e) for e in hist)
    for lo, n in hist.items():
        hi = next((e for e in edges if e > int(lo)), None)
        assert n >= sum(1 for x in think if int(lo) <= x < (hi or 10**9)) > 0
    assert sum(hist.values()) == len(think)


def test_tallies_add_in_any_grouping_to_the_counts_of_the_whole(run):
    stream = to_table(run["rows"])
    half = stream.num_rows // 2
    whole = Tally.of(stream)
    parts = [Tally.of(stream.slice(0, half)), Tally.of(stream.slice(half, 7)), Tally.of(stream.slice(half + 7))]
    left, right = Tally.total(parts), Tally.total([parts[0], Tally.total(parts[1:])])
    for merged in (left, right):
        assert merged.lengths == whole.lengths and merged.reasons == whole.reasons
        assert merged.mode_filters == whole.mode_filters
        assert merged.tp_width == whole.tp_width and sum(merged.throughput.values()) == sum(whole.throughput.values())
    # a request's tokens are spread over its buckets by each part at its own width: the grouping of the
    # parts never changes the result (add is associative), the cut into parts may move a token or two
    assert left.throughput == right.throughput


def test_throughput_over_a_night_stays_within_its_buckets(run):
    s, rows = run["summary"], run["rows"]
    tp = s["throughput"]
    assert set(tp["by_replica"]) == {"host:0", "host:1"}
    assert all(len(b) <= TIME_BUCKETS for b in tp["by_replica"].values())
    assert tp["bucket_s"] >= 10 * 3600 / TIME_BUCKETS  # ten hours: wide buckets, not 36,000 of 1 s
    assert sum(map(sum, tp["by_replica"].values())) == sum(r.get("completion_tokens") or 0 for r in rows)
    assert 'aria-label="throughput per replica"' in run["page"]


def test_text_from_the_data_is_shown_as_text_never_run(run):
    page = run["page"]
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert not external_loads(page)
    # examples: up to 3 per rejection reason, one per input row per error reason
    for reason in run["summary"]["rejected"]["by_reason"]:
        assert f"rejected: {reason} (" in page
    assert page.count('class="ex err"') == 2
    assert page.count('class="ex"') == sum(min(3, n) for n in run["summary"]["rejected"]["by_reason"].values())


def test_config_and_provenance_are_shown_with_secrets_masked(run):
    page, s = run["page"], run["summary"]
    assert "AKIA-SECRET-KEY" not in page and "THE-SECRET-VALUE" not in page and "key: &#x27;***&#x27;" in page
    assert "as resolved for this run" in page and "max_num_seqs: 64" in page
    for k in ("thinkmill", "python"):
        assert f"version: {k}" in page and s["versions"][k] in page


def test_a_report_that_cannot_be_made_is_a_warning_not_a_failed_job(run, tmp_path, monkeypatch, caplog):
    from pipeline.report import detail

    def broken(s):
        raise ValueError("a chart that cannot be drawn")

    monkeypatch.setattr(detail, "lengths", broken)
    with caplog.at_level(logging.WARNING, logger="pipeline.report"):
        assert report.write(run["folder"], run["summary"]) is None
    assert "a chart that cannot be drawn" in caplog.text and "report.html" in caplog.text
    (tmp_path / "not-a-folder").write_text("a file where the run folder should be")
    assert report.write(RunFolder(str(tmp_path / "not-a-folder")), run["summary"]) is None
    # as in the jobs: the report fails, summary.json is written all the same (and says there is no report)
    (tmp_path / "broken").mkdir()
    _, summary, _ = make_run(tmp_path / "broken")
    assert summary["report"] is None and (tmp_path / "broken" / "night" / "summary.json").is_file()
    assert not (tmp_path / "broken" / "night" / "report.html").exists()


def test_jobs_report_renders_again_and_refuses_a_folder_that_is_not_a_run(run, tmp_path, capsys):
    from jobs.report import main

    (tmp_path / "night" / "report.html").unlink()
    assert main([str(tmp_path / "night")]) == 0
    page = (tmp_path / "night" / "report.html").read_text(encoding="utf-8")
    assert not mismatches(page, {None: run["summary"]}) and must_show(run["summary"]) <= shown(page)
    assert "run.json: what makes this run" in page
    (tmp_path / "half").mkdir()
    assert main([str(tmp_path / "half"), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "half") in err and "not a completed run folder" in err
    assert main([str(tmp_path / "night"), "--compare", str(tmp_path / "nowhere")]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err


def test_two_nights_side_by_side(tmp_path):
    from jobs.report import main

    _, a, _ = make_run(tmp_path, "night-2", prompts=12, seed=1)
    _, b, _ = make_run(tmp_path, "night-1", prompts=8, bad=0, seed=2)
    assert main([str(tmp_path / "night-2"), "--compare", str(tmp_path / "night-1")]) == 0
    page = (tmp_path / "night-2" / "compare-night-1.html").read_text(encoding="utf-8")
    assert not mismatches(page, {"a": a, "b": b})
    found = {(run, tuple(p)) for _, p, run, _ in counts(page)}
    for run, s in (("a", a), ("b", b)):
        assert {(run, ("accepted",)), (run, ("rejected", "total")), (run, ("errors", "total"))} <= found
        assert {(run, ("rejected", "by_reason", r)) for r in s["rejected"]["by_reason"]} <= found
    assert f"{a['accepted'] - b['accepted']:+,}" in page
    assert "night-2 vs night-1" in page and not external_loads(page)
    assert lookup(a, ["errors", "total"]) == 8 and "+8" in page
    # what a kept sample cost, a against b
    ca, cb = a["cost"], b["cost"]
    assert ca["tokens_per_accepted"] == round(a["tokens"]["completion"] / a["accepted"], 3)
    assert f"{ca['tokens_per_accepted'] - cb['tokens_per_accepted']:+,.1f}" in page
    assert "tokens spent on wrong_answer" in page


def test_the_cost_block_adds_up_and_shows_on_the_page(run):
    s = run["summary"]
    c = s["cost"]
    rejected = sum(d["tokens"] for d in c["rejected_tokens"].values())
    assert c["generated_tokens"] == s["tokens"]["completion"] and 0 < rejected < c["generated_tokens"]
    assert sum(d["tokens"] for d in c["by_mode"].values()) == c["generated_tokens"]
    assert sum(d["accepted"] for d in c["by_mode"].values()) == s["accepted"] == c["accepted"]
    assert abs(sum(d["engine_s"] for d in c["by_mode"].values()) - c["engine_s"]) < 0.1
    assert 'id="cost"' in run["page"] and "What a kept sample cost" in run["page"]


def test_the_sweep_adaptive_and_fusion_blocks_show_their_counts(run):
    from collections import Counter
    from types import SimpleNamespace

    s = json.loads(json.dumps(run["summary"]))
    s["budget_report"] = [
        {
            "mode": "think",
            "budget": b,
            "samples": 10 + i,
            "accuracy": 0.1 * i,
            "judged": 9,
            "mean_thinking_tokens": 30.0 * (i + 1),
            "budget_hit_rate": 0.5,
        }
        for i, b in enumerate([32, 64, None])
    ]
    t = Tally()
    t.flags.update({("think", "/think", "user", "accepted"): 5, ("no_think", "/no_think", "system", "rejected"): 2})
    t.turns.update({("/think", "followed"): 3})
    s["fusion"] = modes.fusion_summary(t)
    rule = SimpleNamespace(rule="adaptthink", delta=0.05, think_mode="think", no_think_mode="no_think")
    s["adaptive"] = modes.adaptive_summary(
        rule,
        4,
        Counter({("gsm8k", "think"): 3, ("gsm8k", "no_think"): 2, ("math.v2", "unsolved"): 1}),
        "x/unsolved.jsonl",
    )
    page = report.render(s)
    assert not mismatches(page, {None: s})
    assert {
        ("adaptive", "chose_think"),
        ("adaptive", "by_source", "gsm8k", "chose_no_think"),
        ("fusion", "flags", "/think in user", "accepted"),
        ("fusion", "turns", "/think followed"),
        ("budget_report", "1", "samples"),
    } <= shown(page)
    assert 'aria-label="accuracy per budget"' in page  # no plot beside the data: drawn in SVG
    png = report.render(s, report.Beside(budget_png=b"\x89PNG\r\n\x1a\n"))
    assert "data:image/png;base64,iVBORw0KGgo=" in png and 'aria-label="accuracy per budget"' not in png
