"""A night that survives: one of the job's engine processes is SIGKILLed mid-run (Ray restarts its
replica), then the job's driver is SIGKILLed twice at random points while it writes, the same
command is run again, and the finished run folder holds exactly the rows an uninterrupted run of
the same config writes (every column of every row, the same counts); the engine death and the
replica restart of the first attempt are in the summary, though that attempt was killed.

The driver runs as `python -m jobs.generate` in its own process group with its own embedded Ray;
the kill takes that group (the driver, its Ray, its engines): only processes this test started.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from tests.test_reference import HERE, _fixed_paths, _rows, _stable

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]


def _parts(run_dir: Path) -> list[Path]:
    return [p for f in ("accepted", "rejected", "errors") for p in (run_dir / f).glob("*.parquet")]


def _start(cfg_path: Path, log: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own Ray, not the tests'
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.generate", "--config", str(cfg_path), *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _committed_rows(run_dir: Path) -> int:
    """Generated rows committed (error rows of bad input are written before any engine runs): a
    resume's reconcile only removes rows (it may rewrite or delete parts, so counting parts would
    miss new ones), the writer only adds them."""
    import pyarrow.parquet as pq

    n = 0
    for p in _parts(run_dir):
        if p.parent.name == "errors":
            continue
        with contextlib.suppress(OSError, pa.ArrowInvalid):  # moved or replaced while we look
            n += pq.read_metadata(p).num_rows
    return n


def _kill_when_writing(proc: subprocess.Popen, run_dir: Path, rng: random.Random, after: int) -> int:
    """SIGKILL the job's process group once it has committed rows beyond ``after`` (this attempt
    writes), at a random moment soon after; returns the rows committed then."""
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if _committed_rows(run_dir) > after:
            time.sleep(rng.uniform(0, 1.5))
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the job ended before it could be killed"
    tree = _descendants(proc.pid)  # its Ray and engines: some leave the process group
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return _committed_rows(run_dir)


def _job(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The reference job's config over a longer input (40 prompts + the reference's planted rows),
    so that parts are committed one after another while it runs. The input sits at one fixed path
    (row locations are in the error rows)."""
    paths = _fixed_paths()
    lines = (ROOT / "tests" / "tiny_teacher" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()[100:140]
    lines += (HERE / "input.jsonl").read_text(encoding="utf-8").splitlines()[12:]  # its bad rows
    inp, text = Path(paths["input"]).with_name("resume-input.jsonl"), "\n".join(lines) + "\n"
    if not inp.exists() or inp.read_text(encoding="utf-8") != text:  # never rewritten under a running job
        inp.write_text(text, encoding="utf-8")
    data = yaml.safe_load((HERE / "config.yaml").read_text(encoding="utf-8"))
    data["input"]["path"], data["teacher"]["model"] = str(inp), paths["teacher"]
    # one replica: what is tested is the kills and restarts, and each start of a second engine
    # costs the 2-core test machine ~30 s (replicas are not part of the run's identity)
    data["teacher"]["replicas"] = 1
    data["output"].update(path=str(tmp_path / name), rows_per_file=4)  # small parts: many commit points
    cfg_path = tmp_path / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return cfg_path, tmp_path / name / data["output"]["run_id"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    cfg, run_dir = _job(tmp, "uninterrupted")
    log = tmp / "job.log"
    assert _start(cfg, log).wait(timeout=900) == 0, log.read_text(errors="replace")[-3000:]
    return run_dir


def _same_as(run_dir: Path, base_dir: Path) -> dict:
    """Every row of every folder as the uninterrupted run wrote it; returns the summary."""
    summary = json.loads((run_dir / "summary.json").read_text())
    expected = json.loads((base_dir / "summary.json").read_text())
    assert summary["accounted"]
    got, want = (json.loads(json.dumps(_rows(d), sort_keys=True)) for d in (run_dir, base_dir))
    for folder in ("accepted", "rejected", "errors"):
        assert [r["sample_id"] for r in got[folder]] == [r["sample_id"] for r in want[folder]], folder
        assert got[folder] == want[folder], folder
    volatile = {"resumed", "run_id", "output", "replica_restarts", "engine_deaths"}
    assert {k: v for k, v in _stable(summary).items() if k not in volatile} == {
        k: v for k, v in _stable(expected).items() if k not in volatile
    }
    assert (run_dir / "unsolved.jsonl").read_text() == (base_dir / "unsolved.jsonl").read_text()
    return summary


def _serving(log: Path) -> bool:
    """Whether this attempt's replica has sent its engine requests: vLLM's replica-side warning on
    the first request it processes, in the Ray log folder the job printed (the log holds every
    attempt's: the last is this one's). A commit is the other sign; on an idle machine the tiny
    teacher can finish every request before the first commit."""
    import re

    found = re.findall(r"logs of Ray and the engines: (\S+)", log.read_text(errors="replace"))
    if not found:
        return False
    for f in Path(found[-1]).glob("worker-*.out"):
        with contextlib.suppress(OSError):
            if b"input_processor.py" in f.read_bytes():
                return True
    return False


def _death_committed(run_dir: Path) -> bool:
    """Whether a committed part says (in its engine timings) that this attempt saw an engine death
    and a replica restart: from then on the attempt's parts carry both, whenever it is killed."""
    import pyarrow.parquet as pq

    from pipeline.tally import TIMING_KEY, Tally

    for p in _parts(run_dir):
        with contextlib.suppress(OSError, pa.ArrowInvalid):  # moved or replaced while we look
            timing = (pq.read_schema(p).metadata or {}).get(TIMING_KEY)
            if timing and any(d >= 1 and r >= 1 for d, r in Tally.of_timing(timing).attempt_deaths.values()):
                return True
    return False


def _kill_an_engine_then_the_job(proc: subprocess.Popen, run_dir: Path, log: Path, rng: random.Random) -> int:
    """A fresh run, all its work ahead: SIGKILL its engine process once it has committed generated
    rows (error rows of bad input can come before any engine starts), wait until Ray has restarted
    the replica and a part committed since says so, then kill the job at a random moment soon after.
    Returns the rows committed then."""
    deadline, engines = time.time() + 600, []
    while time.time() < deadline and proc.poll() is None and not engines:
        time.sleep(0.2)
        if [p for p in _parts(run_dir) if p.parent.name != "errors"] or _serving(log):
            engines = _engines(proc.pid)
    assert proc.poll() is None and engines, "the job ended before an engine could be killed"
    os.kill(engines[0], signal.SIGKILL)  # the replica's engine process, mid-run
    restarted = []
    while time.time() < deadline and proc.poll() is None and not restarted:
        time.sleep(0.2)
        restarted = [p for p in _engines(proc.pid) if p != engines[0]]
    assert restarted, "no engine came back after the kill"
    while time.time() < deadline and proc.poll() is None and not _death_committed(run_dir):
        time.sleep(0.2)
    return _kill_when_writing(proc, run_dir, rng, after=-1)


def test_a_job_killed_twice_resumes_to_exactly_the_uninterrupted_rows(tmp_path, uninterrupted):
    log = tmp_path / "job.log"
    rng = random.Random(int(time.time()))
    base_dir = uninterrupted
    cfg_path, run_dir = _job(tmp_path, "killed")

    began = time.time()
    committed = _kill_an_engine_then_the_job(_start(cfg_path, log), run_dir, log, rng)
    assert not (run_dir / "summary.json").exists(), "killed mid-run: not complete"
    committed = _kill_when_writing(_start(cfg_path, log), run_dir, rng, after=committed)
    assert not (run_dir / "summary.json").exists() and committed > 0
    want = json.loads((base_dir / "summary.json").read_text())
    assert committed < want["accepted"] + want["rejected"]["total"], "the kills left the deadline attempt no work"
    # a third attempt with a deadline already up when its first rows arrive: it makes nothing
    # new, keeps what is committed, and says so (exit 5); the run is still not complete
    short = _start(cfg_path, log, "--set", "ray.deadline_s=0.5")
    assert short.wait(timeout=600) == 5, log.read_text(errors="replace")[-3000:]
    assert "reached" in log.read_text(errors="replace") and not (run_dir / "summary.json").exists()
    _an_unfinished_night_counts(run_dir)
    _the_next_night_and_a_late_resume(cfg_path, run_dir, base_dir, tmp_path, log)
    final = _start(cfg_path, log)
    assert final.wait(timeout=900) == 0, log.read_text(errors="replace")[-3000:]
    ended = time.time()

    summary = _same_as(run_dir, base_dir)
    assert summary["resumed"]["prompts_kept"] > 0
    # the engine figures count every attempt whose generated rows are committed (the final one, and
    # a killed one at least: each was killed only after it committed some), each its own window
    attempts = summary["attempts"]
    assert 2 <= len(attempts) <= 3, attempts
    assert all(began < a["started"] < ended and a["engine_window_s"] > 0 and a["requests"] > 0 for a in attempts), (
        attempts
    )
    assert summary["engine_window_s"] == pytest.approx(sum(a["engine_window_s"] for a in attempts), abs=0.05)
    assert sum(a["requests"] for a in attempts) >= summary["accepted"] + summary["rejected"]["total"]
    assert "attempts  " in log.read_text(errors="replace")  # and the console says so
    # the first attempt's engine death and replica restart, from its parts (its book died with it)
    first = attempts[0]
    assert first["engine_deaths"] >= 1 and first["replica_restarts"] >= 1, attempts
    assert summary["engine_deaths"] == sum(a["engine_deaths"] for a in attempts) >= 1
    assert summary["replica_restarts"] == sum(a["replica_restarts"] for a in attempts) >= 1
    assert not (run_dir / "_lock").exists() and not (run_dir / "_tmp").exists()

    again = _start(cfg_path, log)  # the completed run is not run again
    assert again.wait(timeout=300) == 0
    assert "already complete" in log.read_text(errors="replace").splitlines()[-1]


def _an_unfinished_night_counts(run_dir: Path) -> None:
    """The night the kills and the deadline left unfinished (no summary.json, no live lock), as
    the next night sees it: every prompt it committed a sample of is "earlier" (the next night
    makes none of them again), and the manifest its deadline attempt rebuilt lists its committed
    accepted files, marked unfinished."""
    import pyarrow.parquet as pq

    from pipeline import catalog

    root = run_dir.parent
    run = json.loads((run_dir / "run.json").read_text())
    earlier, runs = catalog.earlier_prompts(str(root), catalog.fingerprint(run["identity"]["config"]), "next-night")
    assert runs == [run_dir.name]
    committed = {
        pid
        for f in ("accepted", "rejected")
        for p in (run_dir / f).glob("*.parquet")
        for pid in pq.read_table(p, columns=["prompt_id"]).column("prompt_id").to_pylist()
    }
    assert committed and all(earlier.run_of(pid) == run_dir.name for pid in committed)
    manifest = json.loads((root / "manifest.json").read_text())
    (entry,) = manifest["runs"]
    accepted = sorted((run_dir / "accepted").glob("*.parquet"))
    assert entry["unfinished"] and entry["accepted"] == sum(pq.read_metadata(p).num_rows for p in accepted)
    assert len(manifest["accepted"]) == len(accepted)


def _the_next_night_and_a_late_resume(cfg_path: Path, run_dir: Path, base_dir: Path, tmp: Path, log: Path) -> None:
    """On a copy of the unfinished night in an output root of its own (the night itself goes on to
    be resumed and compared row by row with the uninterrupted run): the next night (an incremental
    run, another run_id) generates none of the prompts the unfinished one committed samples of; the
    unfinished night resumed after it makes none that the next night made; across the two, every
    sample of the uninterrupted run is there exactly once, and the manifest lists each accepted file."""
    import shutil

    import pyarrow.parquet as pq

    root = tmp / "nights"
    shutil.copytree(run_dir, root / run_dir.name)
    data = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    data["output"].update(path=str(root), incremental=True)
    nights_cfg = tmp / "nights.yaml"
    nights_cfg.write_text(yaml.safe_dump(data), encoding="utf-8")

    def prompts(d: Path) -> set[str]:
        return {
            pid
            for f in ("accepted", "rejected")
            for p in (d / f).glob("*.parquet")
            for pid in pq.read_table(p, columns=["prompt_id"]).column("prompt_id").to_pylist()
        }

    def samples(d: Path) -> list[str]:
        return [
            sid
            for f in ("accepted", "rejected")
            for p in (d / f).glob("*.parquet")
            for sid in pq.read_table(p, columns=["sample_id"]).column("sample_id").to_pylist()
        ]

    committed = prompts(root / run_dir.name)
    nxt = _start(nights_cfg, log, "--set", "output.run_id=next-night")
    assert nxt.wait(timeout=900) == 0, log.read_text(errors="replace")[-3000:]
    made_next = prompts(root / "next-night")
    assert made_next and not made_next & committed
    summary = json.loads((root / "next-night" / "summary.json").read_text())
    assert summary["earlier"]["runs_consulted"] == [run_dir.name], summary["earlier"]
    assert summary["earlier"]["prompts"] == len(committed), summary["earlier"]
    late = _start(nights_cfg, log)  # the unfinished night, resumed after the next one completed
    assert late.wait(timeout=900) == 0, log.read_text(errors="replace")[-3000:]
    assert not prompts(root / run_dir.name) & made_next
    both = samples(root / run_dir.name) + samples(root / "next-night")
    assert len(both) == len(set(both)) and set(both) == set(samples(base_dir))
    manifest = json.loads((root / "manifest.json").read_text())
    assert sorted(r["run_id"] for r in manifest["runs"]) == sorted([run_dir.name, "next-night"])
    assert not any(r.get("unfinished") for r in manifest["runs"])
    accepted = [p for d in (run_dir.name, "next-night") for p in (root / d / "accepted").glob("*.parquet")]
    assert len(manifest["accepted"]) == len(accepted)


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (from /proc): the job's Ray, its workers, their engines."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _engines(pid: int) -> list[int]:
    found = []
    for p in _descendants(pid):
        try:
            if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"VLLM::EngineCore"):
                found.append(p)
        except OSError:
            continue
    return found
