"""The run folder decides what a job does with it (new, resume, complete, refuse), holds one job at
a time, and before a resume keeps only complete prompts, each row once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from pipeline.committed import DoneSet, file_name, key_hash, scan
from pipeline.ledger import Locations
from pipeline.run_folder import FOLDERS, OutputError, RunFolder
from pipeline.schema import ERROR, SAMPLE, to_table

IDENTITY = {"config": {"generation": {"seed": 0}, "teacher": {"model": "m"}}, "input": {"rows": 3}}


def test_a_new_folder_is_started_and_a_completed_run_is_not_rerun(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    assert folder.open(IDENTITY, overwrite=False) == "new"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["identity"] == IDENTITY
    assert folder.open(IDENTITY, overwrite=False) == "resume"  # no summary yet: unfinished
    folder.finish({"accepted": 1})
    assert folder.open(IDENTITY, overwrite=False) == "complete"
    assert folder.read_summary() == {"accepted": 1}


def test_another_config_or_input_is_refused_naming_what_differs(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.open(IDENTITY, overwrite=False)
    other = {**IDENTITY, "config": {**IDENTITY["config"], "generation": {"seed": 1}}, "input": {"rows": 4}}
    with pytest.raises(OutputError, match=r"another config or input \(config.generation.seed, input.rows differ\)"):
        folder.open(other, overwrite=False)
    assert folder.open(other, overwrite=True) == "new"  # overwrite starts that run over
    assert json.loads((tmp_path / "run" / "run.json").read_text())["identity"] == other


def test_a_folder_that_is_not_a_run_is_neither_resumed_nor_deleted(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "thesis.tex").write_text("do not lose me")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="not a thinkmill run folder"):
            RunFolder(str(tmp_path / "run")).open(IDENTITY, overwrite=overwrite)
    assert (tmp_path / "run" / "thesis.tex").exists()


def test_one_job_at_a_time_and_a_dead_jobs_lock_is_taken_over(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.open(IDENTITY, overwrite=False)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"host": os.uname().nodename, "pid": other.pid, "started": 0, "refreshed": 0, "token": "x"}
        (tmp_path / "run" / "_lock").write_text(json.dumps(lock))
        with pytest.raises(OutputError, match=f"being written by another job .* pid {other.pid}"):
            folder.open(IDENTITY, overwrite=False)
        with pytest.raises(OutputError, match="being written by another job"):
            folder.open(IDENTITY, overwrite=True)  # overwrite does not pull the folder from under it
    finally:
        other.kill()
        other.wait()
    assert folder.open(IDENTITY, overwrite=False) == "resume"  # its holder is gone
    with folder.lock():
        held = json.loads((tmp_path / "run" / "_lock").read_text())
        assert held["pid"] == os.getpid()
    assert not (tmp_path / "run" / "_lock").exists()


def _sample(pid, i):
    return {
        "sample_id": f"{pid}-{i}",
        "prompt_id": pid,
        "mode": "think",
        "sample_index": i,
        "location": f"in.jsonl:{pid[1:]}",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    }


def _write(folder: RunFolder, status: str, rows: list[dict]):
    schema = ERROR if status == "error" else SAMPLE
    t = to_table(rows, schema)
    folder.write_part(FOLDERS[status], file_name(t), t)


def test_reconcile_keeps_complete_prompts_once_and_drops_the_rest(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.open(IDENTITY, overwrite=False)
    folder.make_folders()
    # per input: 2 samples. p1 complete; p2 half written; p3 complete but written twice (a retried
    # task under another file); p4 complete but one sample an engine error (transient: redo);
    # an unparseable input row at in.jsonl:9 (two error rows, final)
    _write(folder, "accepted", [_sample("p1", 0), _sample("p2", 0), _sample("p3", 0)])
    _write(folder, "rejected", [_sample("p1", 1), _sample("p3", 1)])
    _write(folder, "rejected", [_sample("p3", 1), _sample("p3", 0)])
    _write(folder, "accepted", [_sample("p4", 0)])
    _write(
        folder,
        "error",
        [
            {"sample_id": "p4-1", "prompt_id": "p4", "sample_index": 1, "error": "engine_error"},
            {
                "sample_id": None,
                "prompt_id": None,
                "location": "in.jsonl:9",
                "sample_index": 0,
                "error": "invalid_json",
            },
            {
                "sample_id": None,
                "prompt_id": None,
                "location": "in.jsonl:9",
                "sample_index": 1,
                "error": "invalid_json",
            },
        ],
    )
    (tmp_path / "run" / "_tmp").mkdir(exist_ok=True)
    (tmp_path / "run" / "_tmp" / "accepted-part-x.parquet").write_bytes(b"half a file")
    locations = Locations(["in.jsonl"])
    done, dropped, (keys, owners) = folder.reconcile(per_input=2, pack=locations.pack_all)
    assert isinstance(done, DoneSet) and len(done) == 3
    # the owners a resumed run seeds the duplicate-id ledger with: the done prompts' input rows
    assert dict(zip(keys.tolist(), [locations.unpack(o) for o in owners])) == dict(
        zip(key_hash(["p1", "p3"]).tolist(), ["in.jsonl:1", "in.jsonl:3"])
    )
    assert [done.has(k) for k in ("p1", "p2", "p3", "p4", "@in.jsonl:9")] == [True, False, True, False, True]
    assert dropped == 5  # p2's one, p3's two copies, p4's two
    parts = sorted((tmp_path / "run").glob("*/*.parquet"))
    ids = sorted(k for path in parts for k in pq.read_table(path)["sample_id"].to_pylist() if k)
    assert ids == ["p1-0", "p1-1", "p3-0", "p3-1"]
    assert not (tmp_path / "run" / "_tmp").exists()
    # a kept file is a valid Parquet file with every column of the contract
    for path in parts:
        assert pq.read_schema(path).names in (SAMPLE.names, ERROR.names)
    # a second reconcile finds nothing more to drop: it is idempotent
    again, dropped, _ = folder.reconcile(per_input=2)
    assert dropped == 0 and len(again) == 3 and len(scan(*folder._fs, FOLDERS).paths) == len(parts)


def test_a_part_is_named_by_its_rows():
    a = to_table([_sample("p1", 0), _sample("p1", 1)], SAMPLE)
    b = to_table([_sample("p1", 1), _sample("p1", 0)], SAMPLE)
    c = to_table([_sample("p1", 0)], SAMPLE)
    assert file_name(a) == file_name(b) != file_name(c)


def test_at_the_end_of_a_run_only_second_copies_are_dropped(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.open(IDENTITY, overwrite=False)
    folder.make_folders()
    _write(folder, "accepted", [_sample("p1", 0), _sample("p2", 0)])
    _write(folder, "accepted", [_sample("p2", 0)])  # a retried task's copy under another name
    _write(folder, "error", [{"sample_id": "p1-1", "prompt_id": "p1", "sample_index": 1, "error": "engine_error"}])
    _, dropped, _ = folder.reconcile(None)
    assert dropped == 1  # p2's copy; p1 (half, with a transient error) stays: this run is done with it
    parts = sorted((tmp_path / "run").glob("*/*.parquet"))
    assert sorted(k for p in parts for k in pq.read_table(p)["sample_id"].to_pylist()) == ["p1-0", "p1-1", "p2-0"]


def test_written_samples_carry_the_prompt_completion_split_and_keep_integers_in_pandas(tmp_path):
    import datasets
    import pandas as pd
    import pyarrow as pa

    from pipeline.schema import STREAM
    from pipeline.sink import SplitParquetSink

    folder = RunFolder(str(tmp_path / "run"))
    folder.open({"config": {}, "input": {}}, overwrite=False)
    sink = SplitParquetSink(folder, 100)
    sink.on_write_start()
    turns = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>\n\n</think>\n\na1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "<think>\nx\n</think>\n\na2"},
    ]
    rows = [
        {**_sample("p1", 0), "status": "accepted", "messages": turns, "thinking_budget": None},
        {**_sample("p2", 0), "status": "accepted", "thinking_budget": 96},
        {**_sample("p3", 0), "status": "error", "error": "prompt_too_long", "sample_index": None},
    ]
    sink.write([pa.Table.from_pylist([{k: r.get(k) for k in STREAM.names} for r in rows], schema=STREAM)], None)
    got = {r["prompt_id"]: r for r in pq.read_table(tmp_path / "run" / "accepted").to_pylist()}
    stored = [{**t, "thinking": None} for t in turns]  # the messages' gpt-oss field, null for a Qwen3 turn
    assert got["p1"]["prompt"] == stored[:-1] and got["p1"]["completion"] == stored[-1:]
    assert got["p2"]["prompt"] + got["p2"]["completion"] == got["p2"]["messages"]
    # pandas keeps integer columns integers, a null as <NA> (it would make them floats)
    frame = pd.read_parquet(tmp_path / "run" / "accepted")
    assert str(frame["thinking_budget"].dtype) == "Int64" and frame["thinking_budget"].isna().sum() == 1
    assert str(pd.read_parquet(tmp_path / "run" / "errors")["sample_index"].dtype) == "Int64"
    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "run" / "accepted"), split="train")
    assert ds.features["thinking_budget"].dtype == "int64" and {"prompt", "completion"} <= set(ds.column_names)


def test_engine_timings_of_every_attempt_are_kept_in_the_parts_and_added_up(tmp_path):
    """A run killed and resumed: each attempt's parts carry its engine timings (Parquet metadata),
    so the summary's engine window is the sum of the attempts' windows (never the hours between
    them), and a resume's reconcile keeps them."""
    import pyarrow as pa

    from pipeline.loading import load_config
    from pipeline.report import summary as summaries
    from pipeline.report.console import format_summary
    from pipeline.schema import STREAM
    from pipeline.sink import SplitParquetSink
    from pipeline.tally import Tally

    folder = RunFolder(str(tmp_path / "run"))
    folder.open({"config": {}, "input": {}}, overwrite=False)

    def attempt(started: float, prompts: list[str], t0: float, seconds: float, replica: str) -> None:
        rows = [
            {
                **_sample(p, k),
                "status": "accepted",
                "replica": replica,
                "completion_tokens": 10,
                "t_submit": t0 + i * seconds / (2 * len(prompts)),
                "t_done": t0 + (i + 1) * seconds / (2 * len(prompts)),
            }
            for i, (p, k) in enumerate((p, k) for p in prompts for k in range(2))
        ]
        sink = SplitParquetSink(folder, 100, attempt=started)
        sink.on_write_start()
        sink.write([pa.Table.from_pylist([{k: r.get(k) for k in STREAM.names} for r in rows], schema=STREAM)], None)

    attempt(1000.0, ["p1", "p2"], 1010.0, 40.0, "h:1")  # killed after these, then resumed an hour on
    attempt(4600.0, ["p3", "p4", "p5"], 4610.0, 60.0, "h:2")
    folder.reconcile(per_input=2)  # the resume's: rewrites nothing here
    t = Tally.of_committed(folder)
    assert sorted(t.attempts) == [1000.0, 4600.0]
    assert [(w.end - w.start, w.requests, w.tokens) for _, w in sorted(t.attempts.items())] == [
        (40.0, 4, 40),
        (60.0, 6, 60),
    ]
    cfg = load_config("configs/local.yaml")
    s = summaries.build(cfg, 5, 2, folder.url, t, summaries.RunFacts(200.0))
    assert s["engine_window_s"] == 100.0 and s["engine_window_tokens_per_s"] == 1.0  # not 3,660 s
    assert [a["engine_window_s"] for a in s["attempts"]] == [40.0, 60.0]
    assert {n: w["idle_at_end_s"] for n, w in s["replica_work"].items()} == {"h:1": 0.0, "h:2": 0.0}
    assert s["replica_utilization"] == 1.0 / cfg.teacher.replicas
    assert "attempts  2 committed rows" in format_summary(s)
