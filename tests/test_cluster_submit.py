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
    names = [
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ]
    return [f"{n}={p}" for n, p in zip(names, ports)] + [
        f"--min-worker-port={workers[0]}",
        f"--max-worker-port={workers[1]}",
    ]


@pytest.fixture(scope="module")
def cluster():
    temp = Path(tempfile.mkdtemp(prefix="tmray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    ports = _free_ports(16)
    gcs, dashboard, client = ports[:3]
    head = [
        RAY,
        "start",
        "--head",
        f"--port={gcs}",
        f"--dashboard-port={dashboard}",
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        f"--ray-client-server-port={client}",
        f"--temp-dir={temp}",
        "--num-cpus=3",
        "--disable-usage-stats",
        '--resources={"teacher_slot": 1}',
        *_node_ports(ports[3:9], (23000, 23499)),
    ]
    # 3 CPUs on the head, 4 on the worker: the job's pools need more than the head alone has, so a
    # replica and CPU-stage actors live on the worker, and a lost worker needs a new node to finish.
    # The second node gets its own temp dir: sharing the head's, its runtime-env agent would
    # garbage-collect the working-dir package the driver runs from (both nodes are on one host)
    mark = uuid.uuid4().hex[:12]
    try:
        # marked as the workers are: the head's Ray renames its workers too (ray::MapWorker...), so
        # the temp dir in the command line does not find them; the environment does
        r = subprocess.run(head, env={**_env(), MARK: f"{mark}-h"}, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        _join(temp, gcs, "w", ports[9:15], (23500, 23999), mark)
        # each node's Prometheus endpoint (--metrics-export-port, the last of its ports)
        yield {
            "address": f"http://127.0.0.1:{dashboard}",
            "temp": temp,
            "gcs": gcs,
            "mark": mark,
            "metrics": [ports[8], ports[14]],
        }
    finally:
        _stop(temp)
        for tag in ("h", "w", "wb", "w2", "w3"):  # the workers Ray renamed (ray::...) are found by their node's mark
            for pid in _marked(f"{mark}-{tag}"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


MARK = "THINKMILL_TEST_NODE"


def _join(
    temp: Path,
    gcs: int,
    tag: str,
    ports: list[int],
    workers: tuple[int, int],
    mark: str,
    cpus: int = 4,
    extra: tuple[str, ...] = (),
    env: dict | None = None,
) -> None:
    """Start a worker node (4 CPUs) with its own temp dir; every process of it inherits
    ``THINKMILL_TEST_NODE=<mark>-<tag>`` (Ray renames its workers' command lines, and vLLM's engine
    processes are the workers' children: the environment is what finds them all) and ``env``."""
    cmd = [
        RAY,
        "start",
        f"--address=127.0.0.1:{gcs}",
        f"--num-cpus={cpus}",
        "--disable-usage-stats",
        f"--temp-dir={temp}/{tag}",
        *extra,
        *_node_ports(ports, workers),
    ]
    r = subprocess.run(
        cmd, env={**_env(), **(env or {}), MARK: f"{mark}-{tag}"}, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def _marked(value: str) -> list[int]:
    """Pids of the processes of one node (their environment holds its mark)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if f"{MARK}={value}".encode() in env.read_bytes().split(b"\0"):
                found.append(int(env.parent.name))
    return found


def _pipeline_processes(pids: list[int]) -> list[int]:
    """Of ``pids``, the job's pipeline actors and the engines (not Ray's own agents and idle workers)."""
    out = []
    for pid in pids:
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if cmd.startswith((b"ray::MapWorker", b"VLLM")):
                out.append(pid)
    return out


def _first_prompts(tmp_path: Path, n: int) -> Path:
    """The tiny teacher's first ``n`` prompts, as the job's input file."""
    prompts = tmp_path / "prompts.jsonl"
    lines = (ROOT / "tests" / "tiny_teacher" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return prompts


def _submit(cluster: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [
        RAY,
        "job",
        "submit",
        "--address",
        cluster["address"],
        "--working-dir",
        ".",
        "--",
        "python",
        "-m",
        "jobs.generate",
        "--config",
        "configs/local.yaml",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def _alive(cluster: dict) -> int:
    r = subprocess.run(
        [RAY, "list", "nodes", "--address", cluster["address"], "--format", "json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return len([n for n in json.loads(r.stdout) if n.get("state") == "ALIVE"])


def test_the_cluster_has_two_nodes(cluster):
    assert _alive(cluster) == 2


def scrape(ports: list[int], run_id: str) -> dict[str, dict[tuple, float]]:
    """thinkmill's series on every node's metrics endpoint, of one run: name -> {labels: value},
    summed over the processes that counted (Ray labels each series with its worker)."""
    import re
    import urllib.request

    out: dict[str, dict[tuple, float]] = {}
    for port in ports:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            continue
        for name, labels, value in re.findall(r"^(ray_thinkmill_\w+)\{(.*)\} (\S+)$", text, re.M):
            tags = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if not re.fullmatch(re.escape(run_id).replace(re.escape("{date}"), r"[\w-]+"), tags.get("run_id", "")):
                continue
            key = tuple(sorted((k, v) for k, v in tags.items() if k in ("mode", "outcome", "reason", "replica")))
            out.setdefault(name, {})
            out[name][key] = out[name].get(key, 0.0) + float(value)
    return out


def test_ray_job_submit_runs_the_job_on_the_cluster(cluster, tmp_path):
    """The job as the README submits it; while it runs and after, thinkmill's live metrics on the
    nodes' Prometheus endpoints (Ray's metrics agents), whose final counts are summary.json's."""
    import threading

    prompts = _first_prompts(tmp_path, 6)
    out = tmp_path / "out"
    run_id = f"cluster-{{date}}-{uuid.uuid4().hex[:6]}"  # {date}: the job fills it in; metrics match the rest
    during: list[dict] = []
    done = threading.Event()

    def watch():
        while not done.wait(2):
            if seen := scrape(cluster["metrics"], run_id):
                during.append(seen)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        r = _submit(
            cluster,
            "--set",
            f"input.path={prompts}",
            "--set",
            f"output.path={out}",
            "--set",
            f"teacher.model={ARTIFACT_DIR}",
            "--set",
            f"output.run_id={run_id}",
        )
    finally:
        done.set()
        watcher.join(timeout=30)
    log = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0 and "succeeded" in r.stdout, log
    (run_dir,) = out.glob("cluster-*")
    cluster["uninterrupted"] = run_dir  # the lost-node test compares its first prompts' samples with these
    summary = json.loads((run_dir / "summary.json").read_text())
    _metrics_match_the_summary(cluster, run_id, summary, during)
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


def _metrics_match_the_summary(cluster: dict, run_id: str, summary: dict, during: list[dict]) -> None:
    # while it ran: what was left (the driver's gauge) before every sample was made
    left = [v for seen in during for v in seen.get("ray_thinkmill_prompts_left", {}).values()]
    assert left and max(left) > 0, during[-3:]
    # after: the counters Ray's agents kept equal the summary (each node exports every few seconds)
    want = {
        ("accepted", ""): summary["accepted"] or None,
        **{("rejected", k): v for k, v in summary["rejected"]["by_reason"].items()},
        **{("error", k): v for k, v in summary["errors"]["by_reason"].items()},
    }
    want = {k: v for k, v in want.items() if v}
    tokens = {name: w["tokens"] for name, w in summary["replica_work"].items()}
    got, got_tokens, end = {}, {}, time.time() + 60
    while time.time() < end:
        seen = scrape(cluster["metrics"], run_id)
        got = {}
        for key, v in seen.get("ray_thinkmill_samples_total", {}).items():
            k = dict(key)
            got[(k["outcome"], k["reason"])] = got.get((k["outcome"], k["reason"]), 0) + int(v)
        got_tokens = {
            dict(key)["replica"]: int(v) for key, v in seen.get("ray_thinkmill_generated_tokens_total", {}).items()
        }
        if got == want and got_tokens == tokens:
            break
        time.sleep(3)
    assert got == want, (got, want)
    assert got_tokens == tokens and sum(tokens.values()) == summary["tokens"]["completion"], (got_tokens, tokens)


def test_a_relative_output_path_is_refused_on_the_cluster(cluster):
    r = _submit(cluster, "--set", "output.path=out", "--set", f"teacher.model={ARTIFACT_DIR}", timeout=300)
    assert r.returncode != 0
    assert "output.path: 'out' is relative, and this job joins a Ray cluster" in r.stdout + r.stderr


def test_engines_that_cannot_start_fail_the_job_with_their_error_not_a_hang(cluster, tmp_path):
    """Every replica's vLLM engine fails at start (a KV cache larger than the node's memory, as a
    CUDA out-of-memory at start on a GPU node): each start is retried after a backoff, and once
    every replica failed twice with none up the job fails (exit 6) naming the engines' error,
    well before ``teacher.start_timeout_s``. One replica: each failed start loads the model first
    (~25 s on the test machine); "every replica" with two is the stand-in's test
    (``tests/test_replica_starts.py``)."""
    prompts = _first_prompts(tmp_path, 4)
    t0 = time.time()
    r = _submit(
        cluster,
        "--set",
        f"input.path={prompts}",
        "--set",
        f"output.path={tmp_path / 'out'}",
        "--set",
        f"teacher.model={ARTIFACT_DIR}",
        "--set",
        "teacher.engine.kv_cache_gib=4096",
        "--set",
        "teacher.replicas=1",
        "--set",
        "output.run_id=no-engine",
        timeout=600,
    )
    log = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode != 0 and "failed" in r.stdout.lower(), log
    assert (
        "0 of the 1 teacher replica(s) up, 1 needed (teacher.min_replicas) and every replica's start failed" in r.stdout
    ), log
    assert "Engine core initialization failed" in r.stdout, log  # vLLM's own words, per failed start
    assert time.time() - t0 < 400, log  # not start_timeout_s (1800 s by default)


def test_a_node_whose_engine_cannot_start_costs_its_replica_not_the_night(cluster, tmp_path):
    """A node joins whose environment breaks vLLM's engine start (its IPC socket directory does not
    exist, as on a node with a broken temp dir). The job's 2 replicas each take a ``teacher_slot``
    (``teacher.resources.custom``): the head has one, the broken node the other, so one replica
    starts there and fails. With ``teacher.min_replicas`` 1 the head's replica generates everything;
    the failed start is retried with backoff meanwhile (its engine never comes up), printed as it
    happens, and named in the summary; the job succeeds. The broken node leaves afterwards."""
    _join(
        cluster["temp"],
        cluster["gcs"],
        "wb",
        _free_ports(6),
        (25000, 25499),
        cluster["mark"],
        cpus=1,
        extra=('--resources={"teacher_slot": 1}',),
        env={"VLLM_RPC_BASE_PATH": f"/nonexistent-{cluster['mark']}"},
    )
    try:
        prompts = _first_prompts(tmp_path, 6)
        r = _submit(
            cluster,
            "--set",
            f"input.path={prompts}",
            "--set",
            f"output.path={tmp_path / 'out'}",
            "--set",
            f"teacher.model={ARTIFACT_DIR}",
            "--set",
            "output.run_id=broken-node",
            "--set",
            "teacher.resources.custom.teacher_slot=1",
        )
    finally:
        for pid in _marked(f"{cluster['mark']}-wb"):  # the broken node leaves, and Ray knows it before the next test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        end = time.time() + 120
        while _alive(cluster) > 2 and time.time() < end:
            time.sleep(3)
    log = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0 and "succeeded" in r.stdout, log
    summary = json.loads((tmp_path / "out" / "broken-node" / "summary.json").read_text())
    assert summary["accounted"] and summary["inputs"] == 6, summary
    assert summary["replicas_seen"] == 1, summary["replica_work"]  # the head's replica made every sample
    print("start failures:", summary["start_failures"])
    assert summary["failed_starts"] >= 1, summary
    assert all("No such file or directory for ipc path" in f["reason"] for f in summary["start_failures"]), summary[
        "start_failures"
    ]
    assert "teacher engine start failed on" in r.stdout and "the start is retried" in r.stdout, log


def _job_status(cluster: dict, job_id: str) -> str:
    """The job's state word (``RUNNING``, ``SUCCEEDED``, ...), asked of the job API in a process
    with the cluster's token (``ray job status`` prints it only in words, on stderr)."""
    code = (
        "import sys; from ray.job_submission import JobSubmissionClient; "
        "print(JobSubmissionClient(sys.argv[1]).get_job_status(sys.argv[2]).value)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, cluster["address"], job_id],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return r.stdout.strip() or f"UNKNOWN: {r.stderr[-500:]}"


def _lose_a_node(cluster: dict, tmp_path: Path, node: str, *sets: str, inputs: int = 48) -> dict:
    """Submit the job over the first ``inputs`` prompts (``--no-wait``), and SIGKILL every process
    of ``node`` once it holds pipeline actors and parts are committed. -> what the kill found: the
    run folder, the job's id, the rows committed before it, whether an engine lived there, the
    test's deadline, the inputs."""
    prompts = _first_prompts(tmp_path, inputs)
    out, job_id = tmp_path / "out", f"lost-node-{uuid.uuid4().hex[:8]}"
    cmd = [
        RAY,
        "job",
        "submit",
        "--address",
        cluster["address"],
        "--working-dir",
        ".",
        "--no-wait",
        "--submission-id",
        job_id,
        "--",
        "python",
        "-m",
        "jobs.generate",
        "--config",
        "configs/local.yaml",
        "--set",
        f"input.path={prompts}",
        "--set",
        f"output.path={out}",
        "--set",
        f"teacher.model={ARTIFACT_DIR}",
        "--set",
        "output.run_id=lost",
        "--set",
        "output.rows_per_file=16",
        # few requests at a time (a speed setting: the same samples): the tiny teacher would otherwise
        # finish its work before the first commit, and the kill would cost nothing
        "--set",
        "teacher.max_in_flight=2",
        *sets,
    ]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    run_dir, marked = out / "lost", f"{cluster['mark']}-{node}"

    # generous: a loaded 2-core machine once took 600 s to get 60% through the no-room case
    deadline, held = time.time() + 900, []
    while time.time() < deadline:
        held = _pipeline_processes(_marked(marked))
        if held and _committed_parts(run_dir) and _job_status(cluster, job_id) == "RUNNING":
            break
        time.sleep(1)
    assert held, f"{node} never held a pipeline actor while parts were committed ({_job_status(cluster, job_id)})"
    engine_lost = any(_read(f"/proc/{p}/cmdline").startswith(b"VLLM") for p in held)  # one may have ended since
    import pyarrow.parquet as pq

    committed = sum(pq.read_metadata(p).num_rows for p in _committed_parts(run_dir))
    for pid in _marked(marked):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    return {
        "killed_at": killed_at,
        "run_dir": run_dir,
        "job_id": job_id,
        "committed": committed,
        "engine_lost": engine_lost,
        "deadline": deadline,
        "inputs": inputs,
    }


def _committed_parts(run_dir: Path) -> list[Path]:
    """The run's committed parts (not ``_tmp/``'s, which are being written)."""
    return [p for folder in ("accepted", "rejected", "errors") for p in (run_dir / folder).glob("*.parquet")]


def _finished(cluster: dict, lost: dict, watch: str | None = None) -> tuple[dict, str, bool]:
    """Wait for the job to end by itself; it must succeed. -> its summary, its log, and whether
    a pipeline actor ever lived on the node ``watch`` meanwhile."""
    used, seen = False, {}
    while time.time() < lost["deadline"] and (state := _job_status(cluster, lost["job_id"])) in ("PENDING", "RUNNING"):
        used = used or bool(watch and _pipeline_processes(_marked(f"{cluster['mark']}-{watch}")))
        for part in _committed_parts(lost["run_dir"]):  # when each part was first seen
            seen.setdefault(part.name, round(time.time() - lost["killed_at"]))
        time.sleep(2)
    stuck = ""
    if state in ("PENDING", "RUNNING"):  # not finished: what the cluster and the driver were doing
        stuck = _stuck_report(cluster, lost, seen)
    logs = subprocess.run(
        [RAY, "job", "logs", "--address", cluster["address"], lost["job_id"]],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    # kept beside the run (pytest keeps the last runs' tmp_path): a failure's whole story, not its tail
    (lost["run_dir"].parent / "job.log").write_text(logs, encoding="utf-8")
    assert state == "SUCCEEDED", (state, logs[-4000:], stuck[-6000:])
    summary = json.loads((lost["run_dir"] / "summary.json").read_text())
    assert summary["accounted"] and summary["inputs"] == lost["inputs"], summary
    return summary, logs, used


def _stuck_report(cluster: dict, lost: dict, seen: dict) -> str:
    """Written beside the run (``stuck.txt``) when the job is still running at the test's deadline:
    when each part was committed (s after the kill), Ray's nodes and the job's live actors, and
    the driver's threads (py-spy)."""

    def out(*cmd: str) -> str:
        try:
            r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
            return r.stdout + r.stderr[-2000:]
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{cmd[:3]}: {e}"

    lines = [f"parts first seen (s after the kill): {sorted(seen.items(), key=lambda kv: kv[1])}"]
    lines.append(out(RAY, "list", "nodes", "--address", cluster["address"], "--detail", "--format", "yaml"))
    lines.append(out(RAY, "list", "actors", "--address", cluster["address"], "--limit", "500", "--detail"))
    drivers = [pid for pid in _ours(lost["run_dir"].parent) if b"jobs.generate" in _read(f"/proc/{pid}/cmdline")]
    for pid in drivers:
        lines.append(f"driver {pid}:\n" + out(str(Path(sys.executable).with_name("py-spy")), "dump", "--pid", str(pid)))
    report = "\n\n".join(lines)
    (lost["run_dir"].parent / "stuck.txt").write_text(report, encoding="utf-8")
    return report


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _every_sample_once(cluster: dict, run_dir: Path, summary: dict) -> None:
    """Every sample exactly once, and the first prompts' rows those of the uninterrupted run."""
    from datasets import load_dataset

    rows = []
    for folder in ("accepted", "rejected", "errors"):
        files = [str(p) for p in (run_dir / folder).glob("*.parquet")]
        rows += list(load_dataset("parquet", data_files=files, split="train")) if files else []
    ids = [r["sample_id"] for r in rows]
    assert len(ids) == len(set(ids)) == summary["expected_samples"], "a sample lost or written twice"
    # the first prompts' samples are the ones the uninterrupted cluster run made (same seeds)
    first = {r["sample_id"]: r["messages"][-1]["content"] for r in rows}
    before = cluster.get("uninterrupted")
    if before is None:
        pytest.skip("the uninterrupted cluster run did not run in this session (-k): nothing to compare with")
    for folder in ("accepted", "rejected"):
        for p in (before / folder).glob("*.parquet"):
            for r in load_dataset("parquet", data_files=[str(p)], split="train"):
                assert first[r["sample_id"]] == r["messages"][-1]["content"], r["sample_id"]


def test_a_lost_node_costs_only_the_work_it_held(cluster, tmp_path):
    """A worker node disappears mid-run (every process of it SIGKILLed, as when a spot VM is
    reclaimed) while it holds teacher replicas or CPU-stage actors and parts are committed; a
    replacement node joins. The job, submitted once, finishes by itself with every sample exactly
    once, the same rows for the prompts the first cluster test made, and the new node used.
    Runs after the other jobs in this module: it changes the cluster."""
    lost = _lose_a_node(cluster, tmp_path, "w")
    _join(cluster["temp"], cluster["gcs"], "w2", _free_ports(6), (24000, 24499), cluster["mark"])
    summary, _, used_new = _finished(cluster, lost, watch="w2")
    # the head (3 CPUs) cannot hold the pools' minimum (7 CPUs): with work left at the kill, the lost
    # actors had to start again on the node that joined. (Killed near the end, nothing needed them.)
    if lost["committed"] <= summary["expected_samples"] // 2:
        assert used_new, (
            "the node that joined later held no pipeline actor",
            lost["committed"],
            summary["replica_work"],
        )
        if lost["engine_lost"]:  # a replica lived there: Ray started it again
            assert summary["replica_restarts"] >= 1, summary
    assert "nodes_lost" not in summary, summary  # the lost actors found room on the new node: no pass was stopped
    _every_sample_once(cluster, lost["run_dir"], summary)


@pytest.mark.xfail(
    strict=False,
    reason="known intermittent failure, cause not yet found: twice on 2026-12-07 the job committed nothing "
    "for 13 min after the kill and was still RUNNING at the test's deadline; not since, in 21 runs (5 of them "
    "with the stopped pass's cleanup disabled); stuck.txt beside the run says what Ray and the driver were doing",
)
def test_a_lost_node_with_no_room_left_costs_a_pass_not_the_night(cluster, tmp_path):
    """A node is lost and none joins, and the nodes that remain have no room for the actors it
    held: Ray keeps those RESTARTING and their tasks wait. After ``ray.node_loss_grace_s`` the job
    stops the pass, keeps what it committed and makes the rest in a new pass on the nodes that
    remain. It finishes by itself, every sample exactly once. Runs last: it changes the cluster.

    The replicas each take a ``teacher_slot`` (``teacher.resources.custom``), which only the head
    and the node joined here have: one replica lives on that node, and once it is lost no node has
    room for it, wherever Ray had put the rest."""
    _join(
        cluster["temp"],
        cluster["gcs"],
        "w3",
        _free_ports(6),
        (24500, 24999),
        cluster["mark"],
        extra=('--resources={"teacher_slot": 1}',),
    )
    grace = 15
    lost = _lose_a_node(
        cluster,
        tmp_path,
        "w3",
        "--set",
        f"ray.node_loss_grace_s={grace}",
        "--set",
        "teacher.resources.custom.teacher_slot=1",
        inputs=32,  # its new pass starts an engine again: less work after it, the same paths taken
    )
    assert lost["engine_lost"], "the node held no replica"
    # seen from outside (Ray's state API, every 2 s): how long some actor stayed RESTARTING after the kill
    seer = subprocess.Popen(
        [sys.executable, "-c", _RESTARTING, cluster["address"]],
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        summary, logs, _ = _finished(cluster, lost)
    finally:
        seer.kill()
    looks = [line.split() for line in seer.stdout.read().splitlines() if line.strip()]
    assert looks, "Ray's state API never answered the test's looks"
    stuck = _longest_run(looks)
    print(f"longest RESTARTING seen: {stuck:.0f} s; nodes_lost: {summary.get('nodes_lost')}")
    # the lost replica had no room left: the job stopped the pass, and not before the grace was up
    assert summary.get("nodes_lost"), (stuck, summary, logs[-3000:])
    assert stuck >= grace - 5, (stuck, summary["nodes_lost"])
    assert "found no room on the other nodes" in logs and "lost      node(s)" in logs, logs[-3000:]
    _every_sample_once(cluster, lost["run_dir"], summary)


# prints "<seconds> <actors RESTARTING>" every 2 s (Ray's state API over the dashboard's address)
_RESTARTING = """
import sys, time
from ray.util.state import list_actors
while True:
    try:
        n = len(list_actors(address=sys.argv[1], filters=[("state", "=", "RESTARTING")], timeout=10))
        print(time.time(), n, flush=True)
    except Exception:
        pass
    time.sleep(2)
"""


def _longest_run(looks: list[list[str]]) -> float:
    """The longest time some actor was RESTARTING in every look, from ``_RESTARTING``'s lines.

    >>> _longest_run([["0", "0"], ["2", "1"], ["4", "2"], ["6", "1"], ["8", "0"], ["10", "1"]])
    4.0
    """
    best, since = 0.0, None
    for t, n in looks:
        if int(n) and since is None:
            since = float(t)
        elif not int(n):
            since = None
        if since is not None:
            best = max(best, float(t) - since)
    return best
