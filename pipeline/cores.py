"""vLLM's CPU build: keep the job's own processes off the cores the engines compute on.

vLLM's CPU worker binds its compute (OpenMP) threads to a node's cores but the last one per worker
(``VLLM_CPU_OMP_THREADS_BIND=auto``), which it leaves to its scheduler. Nothing keeps the rest of the
job off the compute cores: Linux puts the replica actors (vLLM's front ends), Ray Data's CPU stages,
the driver and Ray's own processes wherever there is room, and each slice one of them takes on a
compute core is a forward pass that waits. So with ``teacher.isolate_cores``, once a replica's engine
is up, the replica reads which cores the engine's workers are bound to and moves every other process
of the job on its Ray node (this user's) onto the remaining cores: the engines' workers are the only
thing left on theirs. On a GPU nothing is bound and nothing moves.

It is off by default: the rest of the job then has fewer cores (on 2, one) for everything that is not
a forward pass (start-up, prepare, parse, filters, writes), and processes of a Ray that outlives the
job (an embedded Ray of a notebook or a test session) keep the narrowed mask. With it on in every
run, this project's test suite (2 cores, one Ray shared by most of its jobs) took 2.2 x as long.

Only masks are narrowed, never widened, except a replica's own before it starts its engine: the
engine's workers inherit it, and a worker whose inherited mask does not hold its OpenMP cores runs
its compute on the wrong core (several times slower). The driver's mask is put back when the run
ends (``restored``): it may start other engines afterwards.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

#: what vLLM names its compute worker processes (``VLLM::Worker``, ``VLLM::Worker_TP0``, ...)
WORKER_PREFIX = b"VLLM::Worker"


def ppid(pid: int) -> int | None:
    """``pid``'s parent (from /proc), or None when it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for pid in (int(p.name) for p in Path("/proc").glob("[0-9]*")):
        if (parent := ppid(pid)) is not None:
            out.setdefault(parent, []).append(pid)
    return out


def _is_worker(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(WORKER_PREFIX)
    except OSError:
        return False


def _mine(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}").stat().st_uid == os.getuid()
    except OSError:
        return False


def subtree(root: int, children: dict[int, list[int]] | None = None) -> tuple[list[int], list[int]]:
    """(``root`` and the processes below it, except engine workers and theirs; the engine workers)."""
    children = _children() if children is None else children
    others, workers, todo = [], [], [root]
    while todo:
        pid = todo.pop()
        if _is_worker(pid):
            workers.append(pid)
            continue
        others.append(pid)
        todo += children.get(pid, [])
    return others, workers


def compute_cores(workers: list[int]) -> set[int]:
    """The cores the engine workers ``workers`` are bound to: those of a worker whose mask is
    narrower than the node's (an unbound worker, as on a GPU, has none)."""
    node = set(range(os.cpu_count() or 1))
    cores: set[int] = set()
    for pid in workers:
        with contextlib.suppress(OSError):
            mask = os.sched_getaffinity(pid)
            if mask < node:
                cores |= mask
    return cores


def move_off(pids: list[int], cores: set[int]) -> int:
    """Take ``cores`` out of the mask of every thread of ``pids`` (this user's; a thread that would
    be left with none is left as it is). Returns the threads moved."""
    moved = 0
    for pid in pids:
        if not _mine(pid):
            continue
        with contextlib.suppress(OSError):
            for tid in map(int, os.listdir(f"/proc/{pid}/task")):
                with contextlib.suppress(OSError):
                    mask = os.sched_getaffinity(tid)
                    if mask & cores and mask - cores:
                        os.sched_setaffinity(tid, mask - cores)
                        moved += 1
    return moved


def widen() -> None:
    """This thread on every core the node lets it use (the kernel keeps a container's cpuset)."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))


def node_processes(
    raylet: int | None = None, children: dict[int, list[int]] | None = None
) -> tuple[list[int], list[int]]:
    """Seen from a Ray worker, this node's processes of the job as ``subtree`` splits them: all
    under its raylet, and the raylet's parent when that is this user's (the driver of an embedded
    Ray, ``ray start --block``) but none of that parent's other children, which may be anything (a
    test runner's servers, another Ray)."""
    children = _children() if children is None else children
    raylet = os.getppid() if raylet is None else raylet
    others, workers = subtree(raylet, children)
    parent = ppid(raylet)
    if parent is not None and parent > 1 and _mine(parent):
        others.append(parent)
    return others, workers


def keep_job_off_engine() -> dict | None:
    """In a replica whose engine just started: the node's processes of the job (``node_processes``)
    but the engines' workers off the workers' cores. Returns ``{"compute": [...], "others": [...]}``
    or None (no bound engine workers: a GPU, or ``VLLM_CPU_OMP_THREADS_BIND=nobind``)."""
    children = _children()
    _, mine = subtree(os.getpid(), children)
    cores = compute_cores(mine)
    if not cores:
        return None
    others, workers = node_processes(children=children)
    move_off(others, compute_cores(workers) | cores)
    return {"compute": sorted(cores), "others": sorted(os.sched_getaffinity(0))}


@contextlib.contextmanager
def restored():
    """Every thread of this process (those started meanwhile too) back on this thread's CPU mask
    at the end: a replica may have narrowed them."""
    mask = os.sched_getaffinity(0)
    try:
        yield
    finally:
        for tid in map(int, os.listdir("/proc/self/task")):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)
