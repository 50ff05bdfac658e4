"""``pipeline.cores`` on real processes: a process tree with a stand-in engine worker (a process
vLLM would name ``VLLM::Worker``) bound to one core, the rest of the tree moved off it. The real
engine's side (workers bound by vLLM's CPU build) is the next night's job of
``tests/test_object_store.py``, run with ``teacher.isolate_cores`` in its own process and Ray."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pipeline import cores

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to split")


def _tree():
    """bash (the root) with two children: a stand-in engine worker and another process."""
    root = subprocess.Popen(["bash", "-c", "(exec -a VLLM::Worker sleep 60) & (exec -a other sleep 60) & wait"])
    deadline = time.time() + 10
    while time.time() < deadline:
        kids = {
            int(p.name): Path(p, "cmdline").read_bytes()
            for p in Path("/proc").glob("[0-9]*")
            if cores.ppid(int(p.name)) == root.pid
        }
        if len(kids) == 2 and all(c.startswith((b"VLLM::Worker", b"other")) for c in kids.values()):
            worker = next(k for k, c in kids.items() if c.startswith(b"VLLM::Worker"))
            return root, worker, next(k for k in kids if k != worker)
        time.sleep(0.05)
    root.kill()
    raise AssertionError("the process tree did not start")


def _end(root: subprocess.Popen, *pids: int) -> None:
    root.kill()
    root.wait()
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def test_everything_but_the_engine_workers_leaves_their_cores():
    root, worker, other = _tree()
    try:
        every = set(range(os.cpu_count()))
        os.sched_setaffinity(worker, {0})  # as vLLM binds its OpenMP threads
        others, workers = cores.subtree(root.pid)
        assert workers == [worker] and set(others) == {root.pid, other}
        assert cores.compute_cores(workers) == {0}
        assert cores.compute_cores([other]) == set()  # an unbound worker (a GPU's) has no cores
        assert cores.move_off(others, {0}) >= 2
        for pid in others:
            assert os.sched_getaffinity(pid) == every - {0}, pid
        assert os.sched_getaffinity(worker) == {0}  # the engine keeps its core
        # never widened, and a mask that would be left empty is left alone
        os.sched_setaffinity(other, {0})
        assert cores.move_off([other], {0}) == 0 and os.sched_getaffinity(other) == {0}
    finally:
        _end(root, worker, other)


def test_restored_puts_back_every_thread_of_the_process_started_meanwhile_too():
    before = os.sched_getaffinity(0)
    stop = threading.Event()
    with cores.restored():
        t = threading.Thread(target=stop.wait)
        t.start()
        for tid in map(int, os.listdir("/proc/self/task")):  # as a replica moves the driver
            os.sched_setaffinity(tid, {1})
        assert os.sched_getaffinity(t.native_id) == {1}
    try:
        assert os.sched_getaffinity(0) == before and os.sched_getaffinity(t.native_id) == before
    finally:
        stop.set()
        t.join()


def test_the_node_is_the_raylets_tree_and_its_driver_but_not_the_drivers_other_children():
    root, worker, other = _tree()  # `root` stands for a raylet, this test process for its driver
    sibling = subprocess.Popen(["sleep", "60"])  # another child of the driver: not the job's
    try:
        others, workers = cores.node_processes(root.pid)
        assert workers == [worker]
        assert set(others) == {root.pid, other, os.getpid()}, others
        assert sibling.pid not in others
    finally:
        sibling.kill()
        sibling.wait()
        _end(root, worker, other)
