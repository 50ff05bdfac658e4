"""jobs.filter end to end on a real Ray instance (no engine): re-judge a JSONL dataset."""

from __future__ import annotations

import json

ROWS = [
    # (row, expected folder, expected reason)
    (
        {
            "id": "ok",
            "messages": [
                {"role": "user", "content": "What is 2+3?"},
                {"role": "assistant", "content": "<think>\n2+3=5. So the answer is 5.\n</think>\n\n\\boxed{5}"},
            ],
            "reference": "5",
        },
        "accepted",
        None,
    ),
    (
        {
            "id": "wrong",
            "messages": [
                {"role": "user", "content": "What is 2+3?"},
                {"role": "assistant", "content": "<think>\n2+3=6. So the answer is 6.\n</think>\n\n\\boxed{6}"},
            ],
            "reference": 5,
        },
        "rejected",
        "wrong_answer",
    ),
    (
        {
            "id": "nothink",
            "mode": "no_think",
            "messages": [
                {"role": "user", "content": "2+3?"},
                {"role": "assistant", "content": "<think>\n\n</think>\n\n\\boxed{5}"},
            ],
            "reference": "5",
        },
        "accepted",
        None,
    ),
    (
        {
            "id": "inferred",
            "messages": [  # no mode: the empty block says no-think, so guesswork is skipped
                {"role": "user", "content": "2+3?"},
                {"role": "assistant", "content": "<think>\n\n</think>\n\n\\boxed{5}"},
            ],
        },
        "accepted",
        None,
    ),
    (
        {
            "id": "mixed",
            "messages": [
                {"role": "user", "content": "计算 2 加 3"},
                {
                    "role": "assistant",
                    "content": "<think>\n先算个位。Then I add the two numbers together to get the final result.\n"
                    "所以答案是 5。\n</think>\n\n答案是 \\boxed{5}。",
                },
            ],
            "reference": "5",
        },
        "rejected",
        "language_mixing",
    ),
    ({"id": "no_asst", "messages": [{"role": "user", "content": "2+3?"}]}, "errors", "malformed_messages"),
    ({"id": "no_msgs", "prompt": "2+3?"}, "errors", "malformed_messages"),
    (
        {
            "id": "bad_tokens",
            "thinking_tokens": "many",
            "messages": [
                {"role": "user", "content": "2+3?"},
                {"role": "assistant", "content": "<think>\n\n</think>\n\n5"},
            ],
        },
        "errors",
        "invalid_column",
    ),
]


def test_filter_job_rejudges_jsonl(ray_session, tmp_path, capsys):
    import datasets

    from jobs.filter import main

    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r, _, _ in ROWS) + "\n{broken\n", encoding="utf-8")
    cfg = tmp_path / "f.yaml"
    cfg.write_text("dialect: qwen3\nfilters: {wrong_answer: {timeout_s: 3}}\n")
    out = tmp_path / "out"
    assert main(["--config", str(cfg), "--input", str(src), "--output", str(out)]) == 0
    assert "accounted: True" in capsys.readouterr().out

    got = {}
    for folder in ("accepted", "rejected", "errors"):
        files = sorted(str(p) for p in (out / folder).glob("*.parquet"))
        rows = list(datasets.load_dataset("parquet", data_files=files, split="train")) if files else []
        for r in rows:
            key = r.get("sample_id") or r["location"]
            got[key] = (folder, r.get("reject_reason") if folder != "errors" else r["error"], r)
    for row, folder, reason in ROWS:
        if folder == "errors":
            hit = [v for v in got.values() if v[0] == "errors" and f'"id": "{row["id"]}"' in v[2]["input"]]
            assert [(f, why) for f, why, _ in hit] == [("errors", reason)], row["id"]
        else:
            assert got[row["id"]][:2] == (folder, reason), (row["id"], got[row["id"]][2]["verdicts"])
    broken = [v for v in got.values() if v[0] == "errors" and v[1] == "invalid_json"]
    assert len(broken) == 1 and broken[0][2]["location"].endswith(f"in.jsonl:{len(ROWS) + 1}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == len(ROWS) + 1 and summary["accounted"]
    assert summary["filters"]["wrong_answer"]["reasons"] == {"wrong_answer": 1, "skipped_no_reference": 1}
    assert got["inferred"][2]["mode"] == "no_think"


def test_filter_job_refuses_a_bad_config(tmp_path, capsys):
    from jobs.filter import main

    cfg = tmp_path / "f.yaml"
    cfg.write_text("filters: {order: [format, spelling]}\n")
    assert main(["--config", str(cfg), "--input", "x.jsonl", "--output", str(tmp_path / "o")]) == 2
    assert "filters.order.1" in capsys.readouterr().err


def test_filter_job_overwrites_only_a_thinkmill_run(tmp_path, capsys):
    """``--overwrite`` starts over a folder that holds a thinkmill run, and refuses any other
    non-empty folder, naming it and deleting nothing (no Ray needed: the folder is claimed first)."""
    from jobs.filter import main
    from pipeline.run_folder import RunFolder

    cfg = tmp_path / "f.yaml"
    cfg.write_text("dialect: qwen3\n")
    (tmp_path / "x.jsonl").write_text(json.dumps(ROWS[0][0]) + "\n")
    theirs = tmp_path / "photos"
    theirs.mkdir()
    (theirs / "holiday.jpg").write_bytes(b"\xff\xd8 not ours")
    assert (
        main(["--config", str(cfg), "--input", str(tmp_path / "x.jsonl"), "--output", str(theirs), "--overwrite"]) == 2
    )
    err = capsys.readouterr().err
    assert str(theirs) in err and "not a thinkmill run folder" in err, err
    assert (theirs / "holiday.jpg").read_bytes() == b"\xff\xd8 not ours"

    ours = tmp_path / "rejudged"
    RunFolder(str(ours)).claim(overwrite=False)  # a filter job's folder is marked as a thinkmill run
    (ours / "accepted").mkdir()
    (ours / "accepted" / "part-0.parquet").write_bytes(b"old")
    assert main(["--config", str(cfg), "--input", str(tmp_path / "x.jsonl"), "--output", str(ours)]) == 2
    assert "--overwrite" in capsys.readouterr().err  # without it a used folder is refused
    RunFolder(str(ours)).claim(overwrite=True)
    assert sorted(p.name for p in ours.iterdir()) == ["run.json"]
    assert json.loads((ours / "run.json").read_text())["identity"] == {"job": "filter"}
