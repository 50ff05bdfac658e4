"""Input, output and evaluation files on object storage: the job, as a user runs it, against a
real S3-compatible server (moto's server mode, started here as its own process and stopped by
pid). Endpoint and credentials come from the standard AWS environment variables, or, for the
next night's run, from the config's ``storage_options`` alone; that night's job also runs with
``teacher.isolate_cores`` (the real engine's side of ``tests/test_cores.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tiny_teacher import ARTIFACT_DIR

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "thinkmill-test"
#: where an S3 client finds its endpoint and keys: only what a test passes counts
AWS_ACCESS = {
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        import s3fs

        fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"]})
        fs.mkdir(BUCKET)
        yield env, fs
    finally:
        server.terminate()
        server.wait(timeout=30)


def _job(env: dict, *sets: str, timeout: int = 900) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "jobs.generate", "--config", "configs/local.yaml"]
    for s in sets:
        args += ["--set", s]
    full = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and k not in AWS_ACCESS}, **env}
    return subprocess.run(args, cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


def test_a_job_reads_and_writes_s3_and_trainers_load_it(s3, monkeypatch):
    env, fs = s3
    lines = (ROOT / "tests" / "tiny_teacher" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()[:6]
    fs.pipe(f"{BUCKET}/in/prompts.jsonl", ("\n".join(lines) + "\n").encode())
    # an evaluation set on S3 too, holding one of the prompts: the workers must read it there
    first = json.loads(lines[0])
    fs.pipe(f"{BUCKET}/eval/eval.jsonl", (json.dumps({"prompt": first["prompt"]}) + "\n").encode())
    r = _job(
        env,
        f"input.path=s3://{BUCKET}/in/prompts.jsonl",
        f"output.path=s3://{BUCKET}/out",
        f"teacher.model={ARTIFACT_DIR}",
        "generation.samples_per_prompt=1",
        "output.run_id=s3-run",
        "teacher.replicas=1",  # one engine: storage is under test here, not the replica pool
        "filters.order=[format, contamination]",
        f"filters.contamination.eval_files=[s3://{BUCKET}/eval/eval.jsonl]",
        "filters.contamination.n=3",
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads(fs.cat(f"{BUCKET}/out/s3-run/summary.json"))
    assert summary["accounted"] and summary["inputs"] == 6
    assert summary["rejected"]["by_reason"].get("eval_overlap", 0) >= 1  # the S3 eval file was read
    assert not fs.exists(f"{BUCKET}/out/s3-run/_lock") and not fs.glob(f"{BUCKET}/out/s3-run/_tmp/*")

    import datasets.config
    from datasets import load_dataset

    # offline mode keeps datasets off the Hub; this S3 is the local server, not a download
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": env["AWS_ENDPOINT_URL"]}}
    folders = {f: fs.glob(f"{BUCKET}/out/s3-run/{f}/*.parquet") for f in ("accepted", "rejected")}
    rows = 0
    for parts in folders.values():
        if parts:
            ds = load_dataset("parquet", data_files=[f"s3://{p}" for p in parts], storage_options=opts, split="train")
            rows += len(ds)
            assert "messages" in ds.column_names
    assert rows == summary["accepted"] + summary["rejected"]["total"]

    again = _job(
        env,
        f"input.path=s3://{BUCKET}/in/prompts.jsonl",
        f"output.path=s3://{BUCKET}/out",
        f"teacher.model={ARTIFACT_DIR}",
        "generation.samples_per_prompt=1",
        "output.run_id=s3-run",
        "teacher.replicas=1",
        "filters.order=[format, contamination]",
        f"filters.contamination.eval_files=[s3://{BUCKET}/eval/eval.jsonl]",
        "filters.contamination.n=3",
        timeout=300,
    )
    assert again.returncode == 0 and "already complete" in again.stdout, again.stdout[-2000:]

    # the next night: two new prompts beside last night's file; only they are generated. The
    # endpoint and keys come from the config alone this time: the driver, the read tasks, the
    # filter workers (the eval file) and the write tasks all need them. This night's node is given
    # to the job (teacher.isolate_cores; the job runs in its own Ray, so moving its processes
    # cannot touch the test session's), which must not change what it writes
    new = (ROOT / "tests" / "tiny_teacher" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()[6:8]
    fs.pipe(f"{BUCKET}/in/day2.jsonl", ("\n".join(new) + "\n").encode())
    options = json.dumps({"s3": {"endpoint_url": env["AWS_ENDPOINT_URL"], "key": "testing", "secret": "testing"}})
    mask = os.sched_getaffinity(0)
    night = _job(
        {"AWS_DEFAULT_REGION": "us-east-1"},
        f"storage_options={options}",
        f"input.path=s3://{BUCKET}/in/*.jsonl",
        f"output.path=s3://{BUCKET}/out",
        f"teacher.model={ARTIFACT_DIR}",
        "generation.samples_per_prompt=1",
        "output.run_id=s3-night-2",
        "teacher.replicas=1",
        "teacher.isolate_cores=true",
        "filters.order=[format, contamination]",
        f"filters.contamination.eval_files=[s3://{BUCKET}/eval/eval.jsonl]",
        "filters.contamination.n=3",
    )
    assert night.returncode == 0, night.stdout[-3000:] + night.stderr[-3000:]
    second = json.loads(fs.cat(f"{BUCKET}/out/s3-night-2/summary.json"))
    assert second["accounted"] and second["inputs"] == 8
    _isolated(second["engine_cores"])
    assert os.sched_getaffinity(0) == mask  # this process is not the job's: it keeps its cores
    assert second["earlier"]["by_run"] == {"s3-run": 6}
    made = second["accepted"] + second["rejected"]["total"] + second["errors"]["total"]
    assert made == 2 * summary["samples_per_input"]
    # the manifest at the root names both nights' accepted files as s3:// URLs: one call loads them all
    manifest = json.loads(fs.cat(f"{BUCKET}/out/manifest.json"))
    assert [r["run_id"] for r in manifest["runs"]] == ["s3-run", "s3-night-2"]
    assert manifest["accepted"] and all(u.startswith(f"s3://{BUCKET}/out/") for u in manifest["accepted"])
    everything = load_dataset("parquet", data_files=manifest["accepted"], storage_options=opts, split="train")
    assert len(everything) == summary["accepted"] + second["accepted"]


def _isolated(placed: dict) -> None:
    """vLLM's CPU build binds each engine's workers to all cores but the last; with
    ``teacher.isolate_cores`` every other process of the job (the replica, the engine's scheduler,
    the CPU stages, the driver) ran on the rest (``pipeline/cores.py``; its logic on stand-in
    processes is ``tests/test_cores.py``'s)."""
    if (os.cpu_count() or 1) < 2:  # nothing to split: vLLM binds every core, nothing is moved
        return
    assert list(placed) == [socket.gethostname()], placed
    compute, others = set(placed[socket.gethostname()]["compute"]), set(placed[socket.gethostname()]["others"])
    assert compute and others and not compute & others and compute | others <= set(range(os.cpu_count()))


def test_a_missing_s3_eval_file_fails_at_plan_time(s3):
    env, _ = s3
    r = _job(
        env,
        f"input.path={ROOT / 'tests' / 'tiny_teacher' / 'prompts.jsonl'}",
        "output.path=/tmp/unused",
        f"teacher.model={ARTIFACT_DIR}",
        "filters.order=[format, contamination]",
        f"filters.contamination.eval_files=[s3://{BUCKET}/eval/missing.jsonl]",
        timeout=300,
    )
    assert r.returncode == 2 and "filters.contamination.eval_files.0: nothing at" in r.stderr, r.stderr[-2000:]


def test_storage_options_stay_out_of_run_json_and_the_printed_config(tmp_path):
    from pipeline.loading import load_config
    from pipeline.runs.generate import identity
    from pipeline.runs.plan import make_plan

    options = {"s3": {"endpoint_url": "http://minio:9000", "key": "AKIAEXAMPLE", "secret": "hunter2"}}
    sets = [f"storage_options={json.dumps(options)}", f"output.path={tmp_path}", f"teacher.model={ARTIFACT_DIR}"]
    cfg = load_config(ROOT / "configs" / "local.yaml", sets)
    assert cfg.storage_options == options
    ident = json.dumps(identity(cfg, make_plan(cfg)))
    assert "hunter2" not in ident and "storage_options" not in ident  # what run.json holds
    args = [sys.executable, "-m", "jobs.generate", "--config", "configs/local.yaml", "--dry-run"]
    dry = subprocess.run(
        args + [a for s in sets for a in ("--set", s)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "hunter2" not in dry.stdout and "AKIAEXAMPLE" not in dry.stdout and "http://minio:9000" in dry.stdout
