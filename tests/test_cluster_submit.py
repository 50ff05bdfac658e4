"""`ray job submit` as the README documents it, on a real two-node Ray cluster started with
`ray start` on this machine (its own temp dir and ports), with the tiny teacher.

The cluster's processes are found by the temp dir in their command lines and stopped by pid:
only what this test started, never every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.tiny_teacher import ARTIFACT_DIR

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


_TOKEN = Path(tempfile.mkdtemp(prefix="tmray-auth-")) / "auth_token"


def _env() -> dict:
    """The environment of every node and of the submitting client: token authentication on
    (Ray 2.60 turns it on for a head that finds a token; every node and client then needs it),
    with this test's own token, not ~/.ray's."""
    if not _TOKEN.exists():
        _TOKEN.write_text(uuid.uuid4().hex)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}  # not the tests' Ray
    # `ray start` as from the activated venv: the job's `python` is looked up on the node's PATH
    path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return {**env, "PATH": path, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(_TOKEN)}


def _ours(temp: Path) -> list[int]:
    """Pids of the processes of this cluster: their command line names its temp dir."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if str(temp).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
    return [p for p in found if p != os.getpid()]


def _stop(temp: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _ours(temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.time() + 20
        while _ours(temp) and time.time() < deadline:
            time.sleep(0.5)


def _node_ports(ports: list[int], workers: tuple[int, int]) -> list[str]:
    names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
    return [f"{n}={p}" for n, p in zip(names, ports)] + [f"--min-worker-port={workers[0]}",
                                                           f"--max-worker-port={workers[1]}"]


@pytest.fixture(scope="module")
def cluster():
    temp = Path(tempfile.mkdtemp(prefix="tmray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    ports = _free_ports(16)
    gcs, dashboard, client = ports[:3]
    head = [RAY, "start", "--head", f"--port={gcs}", f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
            "--include-dashboard=true", f"--ray-client-server-port={client}", f"--temp-dir={temp}", "--num-cpus=6",
            "--disable-usage-stats", *_node_ports(ports[3:9], (23000, 23499))]
    # the second node gets its own temp dir: sharing the head's, its runtime-env agent would
    # garbage-collect the working-dir package the driver runs from (both nodes are on one host)
    worker = [RAY, "start", f"--address=127.0.0.1:{gcs}", "--num-cpus=4", "--disable-usage-stats", f"--temp-dir={temp}/w",
              *_node_ports(ports[9:15], (23500, 23999))]
    try:
        for cmd in (head, worker):
            r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        yield {"address": f"http://127.0.0.1:{dashboard}", "temp": temp}
    finally:
        _stop(temp)


def _submit(cluster: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [RAY, "job", "submit", "--address", cluster["address"], "--working-dir", ".", "--",
           "python", "-m", "jobs.generate", "--config", "configs/local.yaml", *args]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def test_the_cluster_has_two_nodes(cluster):
    r = subprocess.run([RAY, "list", "nodes", "--address", cluster["address"], "--format", "json"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    nodes = [n for n in json.loads(r.stdout) if n.get("state") == "ALIVE"]
    assert len(nodes) == 2


def test_ray_job_submit_runs_the_job_on_the_cluster(cluster, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    lines = (ROOT / "tests" / "tiny_teacher" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()[:6]
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    r = _submit(cluster, "--set", f"input.path={prompts}", "--set", f"output.path={out}",
                "--set", f"teacher.model={ARTIFACT_DIR}", "--set", "generation.samples_per_prompt=1",
                "--set", "output.run_id=cluster-{date}")
    log = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0 and "succeeded" in r.stdout, log
    (run_dir,) = out.glob("cluster-*")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["accounted"] and summary["inputs"] == 6, summary
    assert summary["expected_samples"] == 6 * summary["samples_per_input"]
    # the console: one progress line, ending at every sample; not Ray Data's blocks, the workers'
    # (vLLM's) logs or the tracebacks some libraries print while their processes exit
    job_log = r.stdout + r.stderr
    n = summary["expected_samples"]
    assert f"progress  {n}/{n} samples (100%)" in job_log, log
    assert "Traceback" not in job_log and "logging_progress" not in job_log and "VLLM" not in job_log.upper(), log
    assert len(job_log.splitlines()) < 80, log

    from datasets import load_dataset

    accepted = list((run_dir / "accepted").glob("*.parquet"))
    if accepted:  # the tiny teacher is often wrong: what was accepted reads back as a dataset
        ds = load_dataset("parquet", data_files=[str(p) for p in accepted], split="train")
        assert len(ds) == summary["accepted"] and "messages" in ds.column_names


def test_a_relative_output_path_is_refused_on_the_cluster(cluster):
    r = _submit(cluster, "--set", "output.path=out", "--set", f"teacher.model={ARTIFACT_DIR}", timeout=300)
    assert r.returncode != 0
    assert "output.path: 'out' is relative, and this job joins a Ray cluster" in r.stdout + r.stderr
