"""Incremental runs and the manifest, on run folders written through the real run-folder code:
which earlier prompts a run skips, how its skips are accounted and resumed, and what the
manifest lists. End to end on the real engine: ``tests/test_generate_job.py`` (the next night)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline import catalog
from pipeline.committed import file_name
from pipeline.report.summary import count_summary
from pipeline.run_folder import FOLDERS, RunFolder
from pipeline.schema import EARLIER, ERROR, SAMPLE, STREAM, to_table
from pipeline.tally import Tally
from tests.tiny_teacher import ARTIFACT_DIR


def config(**changes) -> dict:
    from pipeline.loading import load_config

    data = {
        "input": {"path": "in.jsonl"},
        "teacher": {"model": str(ARTIFACT_DIR), "device": "cpu"},
        "generation": {"samples_per_prompt": 2, "modes": [{"name": "think"}]},
    }
    for key, value in changes.items():
        section, name = key.split(".", 1)
        data.setdefault(section, {})[name] = value
    return json.loads(load_config(data=data).model_dump_json())


def test_the_fingerprint_follows_what_samples_depend_on_and_nothing_else():
    base = catalog.fingerprint(config())
    same = [
        config(**{"input.path": "other/*.jsonl"}),
        config(**{"teacher.replicas": 4}),
        config(**{"output.run_id": "night-2"}),
        config(**{"output.path": "s3://b/x"}),
        config(**{"filters.order": ["repetition"]}),
        config(**{"teacher.max_in_flight": 8}),
    ]
    assert [catalog.fingerprint(c) for c in same] == [base] * len(same)
    other = [
        config(**{"generation.seed": 1}),
        config(**{"teacher.dialect": "r1"}),
        config(**{"input.system_prompt": "Be brief."}),
        config(**{"generation.samples_per_prompt": 3}),
    ]
    assert base not in [catalog.fingerprint(c) for c in other]


def sample(pid: str, i: int, run_id: str) -> dict:
    return {
        "sample_id": f"{pid}-{i}",
        "prompt_id": pid,
        "run_id": run_id,
        "mode": "think",
        "sample_index": i,
        "location": f"in.jsonl:{pid[1:]}",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    }


def write(folder: RunFolder, status: str, rows: list[dict]) -> None:
    schema = {"error": ERROR, "earlier": EARLIER}.get(status, SAMPLE)
    t = to_table(rows, schema)
    folder.write_part(FOLDERS[status], file_name(t), t)


def make_run(root, run_id: str, cfg: dict, accepted=(), errors=(), complete=True, created=None) -> RunFolder:
    folder = RunFolder(str(root / run_id))
    folder.open({"config": cfg, "input": {"rows": 0}}, overwrite=False)
    folder.make_folders()
    if accepted:
        write(folder, "accepted", [sample(p, i, run_id) for p, i in accepted])
    if errors:
        write(
            folder,
            "error",
            [
                {"sample_id": f"{p}-{i}", "prompt_id": p, "sample_index": i, "error": e, "run_id": run_id}
                for p, i, e in errors
            ],
        )
    if created is not None:  # the order runs were made in
        run = json.loads((root / run_id / "run.json").read_text())
        (root / run_id / "run.json").write_text(json.dumps({**run, "created": created}))
    if complete:
        folder.finish(
            {
                "run_id": run_id,
                "teacher": "m",
                "accepted": len(accepted),
                "rejected": {"total": 0},
                "errors": {"total": len(errors)},
                "earlier": {"prompts": 0},
            }
        )
    return folder


def lock(folder, fresh: bool) -> None:
    """A lock as a job on another host leaves it: refreshed just now, or long ago (stale)."""
    import time

    from pipeline.folder_lock import LOCK_STALE_S

    when = time.time() - (0 if fresh else 10 * LOCK_STALE_S)
    (folder / "_lock").write_text(json.dumps({"host": "another-host", "pid": 1, "started": when, "refreshed": when}))


@pytest.fixture
def history(tmp_path):
    """Three nights and a stranger under one output root."""
    cfg = config()
    # night 1: p1 whole; p2 only engine errors (never made: redo); p3 half made, half an engine
    # error (made: its accepted sample must not come twice); p6 too long (an error it would repeat)
    make_run(
        tmp_path,
        "night-1",
        cfg,
        accepted=[("p1", 0), ("p1", 1), ("p3", 0)],
        errors=[
            ("p2", 0, "engine_error"),
            ("p2", 1, "request_timeout"),
            ("p3", 1, "engine_error"),
            ("p6", 0, "prompt_too_long"),
            ("p6", 1, "prompt_too_long"),
        ],
        created=1,
    )
    make_run(tmp_path, "night-2", cfg, accepted=[("p1", 0), ("p4", 0), ("p4", 1)], created=2)
    make_run(tmp_path, "night-3", cfg, accepted=[("p5", 0), ("p5", 1)], complete=False, created=3)  # running:
    lock(tmp_path / "night-3", fresh=True)  # its lock is held and fresh, so what it holds is not settled
    make_run(tmp_path, "other-teacher", config(**{"generation.seed": 9}), accepted=[("p7", 0), ("p7", 1)], created=4)
    # night-5 stopped before completing (its deadline, a failure, a kill) and nobody resumed it: p8 whole,
    # p9 half committed. Its lock went stale; night-6 never took one (killed before it wrote anything)
    make_run(tmp_path, "night-5", cfg, accepted=[("p8", 0), ("p8", 1), ("p9", 0)], complete=False, created=5)
    lock(tmp_path / "night-5", fresh=False)
    make_run(tmp_path, "night-6", cfg, accepted=[("p10", 0)], complete=False, created=6)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "summary.json").write_text("{}")  # not a run: no run.json
    return tmp_path, catalog.fingerprint(cfg)


def test_earlier_prompts_are_those_completed_runs_with_the_same_fingerprint_made(history):
    root, fp = history
    earlier, runs = catalog.earlier_prompts(str(root), fp, this_run="night-4")
    assert runs == ["night-1", "night-2", "night-5", "night-6"]  # not night-3: it is still running
    got = {p: earlier.run_of(p) for p in ("p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10")}
    assert got == {
        "p1": "night-1",
        "p2": None,
        "p3": "night-1",
        "p4": "night-2",
        "p5": None,
        "p6": "night-1",
        "p7": None,
        "p8": "night-5",
        "p9": "night-5",
        "p10": "night-6",
    }
    # resumed later, an unfinished night skips what the nights after it generated, and never its own
    again = catalog.earlier_prompts(str(root), fp, this_run="night-5")[0]
    assert (again.run_of("p4"), again.run_of("p10"), again.run_of("p8")) == ("night-2", "night-6", None)
    # once night-3's lock goes stale (its job died), its prompts count too
    lock(root / "night-3", fresh=False)
    assert catalog.earlier_prompts(str(root), fp, this_run="night-4")[0].run_of("p5") == "night-3"
    # a run never skips its own prompts as earlier (its resume does that)
    assert catalog.earlier_prompts(str(root), fp, this_run="night-2")[0].run_of("p4") is None


def test_the_manifest_lists_completed_runs_and_every_accepted_file(history):
    import datasets

    root, fp = history
    m = catalog.write_manifest(str(root))
    assert [r["run_id"] for r in m["runs"]] == ["night-1", "night-2", "other-teacher", "night-5", "night-6"]
    assert [r["fingerprint"] == fp for r in m["runs"]] == [True, True, False, True, True]
    assert [(r.get("unfinished", False), r["accepted"]) for r in m["runs"]][-2:] == [(True, 3), (True, 1)]
    assert json.loads((root / "manifest.json").read_text())["accepted"] == m["accepted"]
    assert not list(root.glob(".manifest.json*"))  # written aside and moved: no leftovers
    ds = datasets.load_dataset("parquet", data_files=m["accepted"], split="train")
    assert sorted(ds["sample_id"]) == [
        "p1-0",
        "p1-0",
        "p1-1",
        "p10-0",
        "p3-0",
        "p4-0",
        "p4-1",
        "p7-0",
        "p7-1",
        "p8-0",
        "p8-1",
        "p9-0",
    ]
    # rebuilt from the folders: a run deleted since is gone from it
    import shutil

    shutil.rmtree(root / "night-2")
    assert [r["run_id"] for r in catalog.write_manifest(str(root))["runs"]] == [
        "night-1",
        "other-teacher",
        "night-5",
        "night-6",
    ]


def test_the_manifest_cli_rebuilds_it_and_refuses_a_root_without_runs(history, tmp_path_factory, capsys):
    from jobs.manifest import main

    root, _ = history
    assert not (root / "manifest.json").exists()
    assert main([str(root)]) == 0
    assert "night-1" in capsys.readouterr().out and (root / "manifest.json").exists()
    assert main([str(tmp_path_factory.mktemp("empty"))]) == 2
    assert "no thinkmill run" in capsys.readouterr().err


def test_prepare_turns_an_earlier_prompt_into_one_row_and_still_claims_its_id(tiny_tokenizer):
    from pipeline.ledger import IdLedger, IdShard, Locations
    from pipeline.loading import load_config
    from pipeline.stages.prepare import Prepare, PrepareSettings

    cfg = load_config(
        data={
            "input": {"path": "p"},
            "teacher": {"model": str(ARTIFACT_DIR)},
            "generation": {"samples_per_prompt": 2, "modes": [{"name": "think"}]},
        }
    )
    earlier = catalog.Earlier.of({"night-1": ["old"]})
    stage = Prepare(PrepareSettings.of(cfg), ledger=IdLedger([IdShard()], Locations(["/in/a.jsonl"])), earlier=earlier)
    raws = [
        {"_path": "/in/a.jsonl", "_row": i, "_raw": json.dumps(r), "_error": None}
        for i, r in enumerate(
            [
                {"id": "old", "prompt": "What is 2+2?"},
                {"id": "new", "prompt": "What is 3+3?"},
                {"id": "old", "prompt": "What is 2+2?"},
                {"id": "bad"},
            ],
            start=1,
        )
    ]
    rows = stage(pa.Table.from_pylist(raws)).to_pylist()
    got = [(r["location"], r["status"], r["generated_by"] or r["error"]) for r in rows]
    assert got == [
        ("/in/a.jsonl:1", "earlier", "night-1"),
        ("/in/a.jsonl:2", "pending", None),
        ("/in/a.jsonl:2", "pending", None),
        # delivered twice tonight: the second is a duplicate of tonight's first
        ("/in/a.jsonl:3", "error", "duplicate_id"),
        ("/in/a.jsonl:3", "error", "duplicate_id"),
        ("/in/a.jsonl:4", "error", "missing_prompt"),
        ("/in/a.jsonl:4", "error", "missing_prompt"),
    ]


def test_an_earlier_row_stands_for_its_prompts_samples_in_the_accounting_and_on_resume(tmp_path):
    folder = make_run(tmp_path, "night-2", config(), accepted=[("p4", 0), ("p4", 1), ("p5", 0)], complete=False)
    write(
        folder,
        "earlier",
        [{"prompt_id": "p1", "run_id": "night-2", "location": "in.jsonl:1", "generated_by": "night-1"}],
    )
    assert (tmp_path / "night-2" / "earlier").is_dir()
    t = Tally.of_committed(folder)
    s = count_summary(t, inputs=3, per_input=2, filter_order=[])
    assert (s["accepted"], s["missing"], dict(t.earlier)) == (3, 1, {"night-1": 1})  # p5's second sample
    done, dropped, _ = folder.reconcile(per_input=2)
    assert [done.has(p) for p in ("p1", "p4", "p5")] == [True, True, False] and dropped == 1
    assert (tmp_path / "night-2" / "earlier").is_dir()  # kept: it is what the resume skips


def test_the_sink_writes_earlier_rows_to_their_own_folder(tmp_path):
    from pipeline.sink import SplitParquetSink

    folder = RunFolder(str(tmp_path / "run"))
    folder.open({"config": config(), "input": {}}, overwrite=False)
    sink = SplitParquetSink(folder, 100)
    sink.on_write_start()
    rows = [
        {"status": "earlier", "prompt_id": "p1", "run_id": "run", "location": "in.jsonl:1", "generated_by": "n1"},
        {**sample("p2", 0, "run"), "status": "accepted"},
    ]
    t = sink.write([pa.Table.from_pylist([{k: r.get(k) for k in STREAM.names} for r in rows], schema=STREAM)], None)
    assert (t.status["earlier"], t.status["accepted"], t.files) == (1, 1, 2)
    [part] = (tmp_path / "run" / "earlier").glob("*.parquet")
    import pyarrow.parquet as pq

    assert pq.read_table(part).to_pylist() == [
        {"prompt_id": "p1", "run_id": "run", "source": None, "location": "in.jsonl:1", "generated_by": "n1"}
    ]
