"""A node lost with no room left for its actors (``pipeline.node_loss``): the watch stops the pass,
and the job makes what the pass had not committed in a new one.

Here the watch's view of Ray's tables is replaced (a node that dies once parts are committed,
an actor stuck RESTARTING): the real pipeline on the embedded Ray with the stand-in engine
(``bench.simulate``) is stopped mid-pass and must end with exactly the samples of a run that was
not. The real event (a node of a ``ray start`` cluster SIGKILLed, no room on the others, vLLM):
``tests/test_cluster_submit.py``."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import node_loss
from pipeline.node_loss import NodeLoss
from tests.tiny_teacher import ARTIFACT_DIR, PROMPTS_PATH

PROMPTS = 24


def test_the_watch_kills_the_stuck_actors_and_stops_the_pass():
    looks = iter(
        [({"h": (True, "10.0.0.1"), "w": (True, "10.0.0.2")}, {})]
        + [({"h": (True, "10.0.0.1"), "w": (False, "10.0.0.2")}, {"a1": "w", "a2": ""})] * 1000
    )
    killed, out = [], io.StringIO()
    w = NodeLoss(grace_s=0.3, poll_s=0.05, stream=out, look=lambda: next(looks), kill=killed.append)
    started = time.time()
    with pytest.raises(KeyboardInterrupt), w:
        for _ in range(300):  # the pass (busy, as Ray Data's loop is): the watch interrupts it
            time.sleep(0.1)
    assert 0.3 <= time.time() - started < 10
    assert killed == ["a1", "a2"] and w.tripped["nodes"] == ["10.0.0.2"]
    assert "node(s) 10.0.0.2 lost; 2 pipeline actor(s) found no room" in out.getvalue()


def test_a_look_that_fails_is_retried_and_restarts_on_live_nodes_are_left_to_ray():
    calls = []

    def look():
        calls.append(1)
        if len(calls) % 2:
            raise ConnectionError("GCS busy")
        return {"h": (True, "10.0.0.1")}, {"a1": ""}  # restarting, but no node was lost: Ray restarts it

    w = NodeLoss(grace_s=0.05, poll_s=0.02, stream=io.StringIO(), look=look, kill=lambda a: None)
    with w:
        time.sleep(0.5)
    assert w.tripped is None and len(calls) >= 4


class LoseANode:
    """The watch's look for one run: all alive until ``folder`` holds a committed part, then the
    worker dead and one actor RESTARTING, once (the second pass sees a healthy cluster)."""

    def __init__(self, folder: Path):
        self.folder, self.tripped_at = folder, None

    def __call__(self):
        alive = {"head": (True, "10.0.0.1"), "worker": (True, "10.0.0.2")}
        if self.tripped_at is None and list(self.folder.glob("*/*.parquet")):
            self.tripped_at = time.time()
        if self.tripped_at is not None and time.time() - self.tripped_at < 5:
            return {**alive, "worker": (False, "10.0.0.2")}, {"actor-on-worker": "worker"}
        return alive, {}


def _run(tmp: Path, run_id: str, *overrides: str):
    from bench.simulate import SimFactory, SimSpec
    from pipeline.loading import load_config
    from pipeline.runs.generate import run

    lines = PROMPTS_PATH.read_text(encoding="utf-8").splitlines()[:PROMPTS]
    (tmp / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = load_config(
        "configs/local.yaml",
        [
            f"input.path={tmp / 'in.jsonl'}",
            "input.limit=null",
            f"output.path={tmp / run_id}",
            "output.run_id=run",
            "teacher.replicas=2",
            "teacher.resources.num_cpus=0.5",
            "teacher.engine.max_num_seqs=4",
            "output.rows_per_file=8",
            "filters.order=[]",
            "ray.batch_size=8",
            "ray.node_loss_grace_s=0.5",
            *overrides,
        ],
    )
    spec = SimSpec(str(ARTIFACT_DIR), max_num_seqs=4, tokens_per_s=30, median_tokens=150, sigma=0.3, time_scale=4)
    return run(cfg, engine_factory=SimFactory(spec))


def _rows(run_dir: Path, index: int | None = None) -> dict[str, str]:
    """sample id -> the teacher's text, every row once (of draw ``index`` only, if given)."""
    rows = {}
    for p in sorted(run_dir.glob("*/*.parquet")):  # accepted/, rejected/, errors/ (none here: no filters)
        t = pq.read_table(p, columns=["sample_id", "sample_index", "messages"])
        for sid, i, messages in zip(
            t["sample_id"].to_pylist(), t["sample_index"].to_pylist(), t["messages"].to_pylist()
        ):
            assert sid not in rows, f"{sid} written twice"
            if index is None or i == index:
                rows[sid] = messages[-1]["content"]
    return rows


@pytest.fixture(scope="module")
def whole(tmp_path_factory, ray_session) -> Path:
    """The uninterrupted run (fixed n): its run folder."""
    tmp = tmp_path_factory.mktemp("whole")
    _run(tmp, "whole")
    return tmp / "whole" / "run"


@pytest.mark.parametrize("k", [None, 1])
def test_a_pass_stopped_by_a_lost_node_is_redone_to_exactly_the_uninterrupted_samples(tmp_path, whole, monkeypatch, k):
    """Fixed n: exactly the uninterrupted run's rows. Sampling until verified (k = 1, no filters:
    round 0 is all): exactly its samples of index 0. In one pass more, each row once; the console
    and the report say what happened."""
    look, kill, killed = LoseANode(tmp_path / "lost" / "run"), node_loss._kill, []

    def kill_real(actor):  # the stuck actor is the look's invention; the stopped pass's pool actors are real
        if actor != "actor-on-worker":
            killed.append(actor)
            kill(actor)

    monkeypatch.setattr(node_loss, "_look", look)
    monkeypatch.setattr(node_loss, "_kill", kill_real)
    monkeypatch.setattr(node_loss, "POLL_S", 0.2)
    s = _run(tmp_path, "lost", *([f"generation.accepted_per_prompt={k}"] if k else []))
    assert look.tripped_at is not None, "the run ended before its first commit: nothing was lost"
    # the stopped pass's replicas and stage actors were alive (no node was really lost): ended before
    # the new pass, which then had the room (2 replicas of 0.5 CPU; the session's Ray has 8)
    print(f"stopped pass: {len(killed)} pool actor(s) ended")  # seen: 2 (fixed n), 0 (k = 1): gc timing
    assert not set(killed) & set(node_loss._live()), "an actor of the stopped pass still alive"
    (event,) = s["nodes_lost"]
    assert event["nodes"] == ["10.0.0.2"] and event["actors"] == 1 and event["waited_s"] >= 0.5
    assert s["accounted"]
    got, before = _rows(tmp_path / "lost" / "run"), _rows(whole, index=0 if k else None)
    assert got == before and len(before) == PROMPTS * 2 * (1 if k else 2)  # think, no_think; 1 or 2 draws
    if k:
        assert s["verified"]["passes"] == 2
        return
    page = (tmp_path / "lost" / "run" / "report.html").read_text(encoding="utf-8")
    assert "node(s) 10.0.0.2 lost; 1 pipeline actor(s) found no room" in page
    from pipeline.report.console import format_summary

    assert "lost      node(s) 10.0.0.2: 1 actor(s) had no room" in format_summary(s)


def test_the_watch_reads_rays_tables_and_kills_by_id(ray_session):
    """Ray's internal driver APIs the watch relies on (``_look``, ``_kill``), on the embedded Ray:
    this node alive, nothing restarting; an actor the driver made, killed by its id, stays dead."""
    import ray

    @ray.remote(max_restarts=-1)
    class Worker:
        def ping(self):
            return "pong"

    a = Worker.remote()
    assert ray.get(a.ping.remote()) == "pong"
    nodes, restarting = node_loss._look()
    assert ray.get_runtime_context().get_node_id() in nodes and any(alive for alive, _ in nodes.values())
    assert restarting == {}
    node_loss._kill(a._actor_id.hex())
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(a.ping.remote(), timeout=60)


def test_a_stopped_pass_that_had_committed_everything_is_not_redone():
    """The watch can trip after the last commit (seen in CI: all 32 prompts committed): the redo
    then finds every input row done and makes no pass (a new pass would start the engines for
    nothing); with one row short it does redo."""
    from types import SimpleNamespace

    from pipeline.committed import DoneSet
    from pipeline.runs.generate import redo
    from pipeline.stages import Context

    class Folder:  # the run folder's reconcile, as after a pass that committed ``n`` input rows
        def __init__(self, n):
            self.n = n

        def reconcile(self, per_input, pack):
            return DoneSet.of([f"p{i}" for i in range(self.n)]), 0, None

    job = SimpleNamespace(generation=SimpleNamespace(accepted_per_prompt=None))
    ctx = Context(job, SimpleNamespace(inputs=32, samples_per_input=2))
    rows = SimpleNamespace(pack_all=None)  # the input's row locations (ledger.Locations)
    assert redo(ctx, Folder(32), rows, None, times=1) is None
    again = redo(ctx, Folder(31), rows, None, times=1)
    assert again is not None and len(again.done) == 31
