"""Where a request's CPU time goes: per-process CPU seconds of a process tree, sampled from
``/proc`` while a side of the generation benchmark runs, summed by role over its busy window.

Ray renames its workers (``ray::MapWorker(MapBatches(Generate))``, ``VLLM::EngineCore``), so a
process's role is read from its command line. The figure that matters is CPU milliseconds per
1,000 requests outside the engine: it does not depend on how many cores the machine has, it is
what a GPU node pays per request around its engine (Linux only; elsewhere nothing is sampled).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
ENGINE = "engine (vLLM processes)"
#: role -> command-line markers, first match wins. Ray renames a worker when it becomes an actor
#: (``ray::IDLE`` -> ``ray::MapWorker(...)``), so roles are read again at every sample.
ROLES = [
    (ENGINE, ("VLLM::", "EngineCore")),
    ("replica actors", ("MapBatches(Generate)", "vLLMEngineStageUDF", "vLLMEngineStage")),
    ("CPU stages", ("ray::MapWorker(", "MapBatches(")),
    ("job's own actors (books, ledger)", ("ray::DeathBook", "ray::ProgressBook", "ray::IdShard")),
    (
        "Ray itself (raylet, GCS, agents)",
        ("raylet", "gcs_server", "dashboard", "Agent", "agent", "log_monitor", "monitor.py", "runtime_env"),
    ),
    ("Ray Data tasks and actors (read, write, stats, idle workers)", ("ray::",)),
]
DRIVER = "driver"
OTHER = "other"


def role(cmdline: str) -> str:
    """A process's role in the job, from its command line.

    >>> role("ray::MapWorker(MapBatches(Generate))"), role("VLLM::EngineCore"), role("/x/raylet --a")
    ('replica actors', 'engine (vLLM processes)', 'Ray itself (raylet, GCS, agents)')
    >>> role("ray::MapWorker(MapBatches(FilterStage))"), role("ray::IDLE"), role("VLLM::Worker")
    ('CPU stages', 'Ray Data tasks and actors (read, write, stats, idle workers)', 'engine (vLLM processes)')
    >>> role("ray::DashboardAgent"), role("ray::DeathBook"), role("ray::_StatsActor")[:8]
    ('Ray itself (raylet, GCS, agents)', "job's own actors (books, ledger)", 'Ray Data')
    """
    for name, markers in ROLES:
        if any(m in cmdline for m in markers):
            return name
    return OTHER


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(x) for x in task.read_text().split()]
        except OSError:
            pass
    return out


def _cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process (its threads included), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


class CpuSampler:
    """Samples the CPU seconds and role of ``root`` and its descendants every ``interval``
    seconds, in a thread, until ``stop``. ``between(t0, t1)``: CPU seconds by role spent in that
    window, each interval's share counted under the role the process had at its end."""

    def __init__(self, root: int | None = None, interval: float = 0.5):
        self.root = root or os.getpid()
        self.interval = interval
        self.samples: list[tuple[float, dict[int, tuple[float, str]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cpu-sampler")

    def start(self) -> CpuSampler:
        if Path("/proc").is_dir():
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                self._sample()
                return

    def _sample(self) -> None:
        seen, todo = {}, [self.root]
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            cpu = _cpu(pid)
            if cpu is None:
                continue
            seen[pid] = (cpu, DRIVER if pid == self.root else role(_cmdline(pid)))
            todo += _children(pid)
        self.samples.append((time.time(), seen))

    def between(self, t0: float, t1: float) -> Counter:
        """CPU seconds by role from ``t0`` to ``t1``: per process, the growth of its CPU seconds
        from one sample to the next (from 0 for one born in the window), summed under its role at
        the later sample, over the samples from the last at or before ``t0`` to the last at or
        before ``t1``.

        >>> s = CpuSampler(root=1)
        >>> s.samples = [(0.0, {7: (1.0, "Ray Data")}), (1.0, {7: (3.0, "CPU stages"), 8: (0.5, "engine")}),
        ...              (2.0, {7: (4.0, "CPU stages"), 8: (2.5, "engine")}), (3.0, {7: (9.0, "CPU stages")})]
        >>> sorted(s.between(0.5, 2.5).items())
        [('CPU stages', 3.0), ('engine', 2.5)]
        """
        out: Counter = Counter()
        last: dict[int, float] = {}
        for t, sample in self.samples:
            if t > t1:
                break
            for pid, (cpu, name) in sample.items():
                if t > t0:
                    out[name] += max(cpu - last.get(pid, 0.0), 0.0)
                last[pid] = cpu
        return out


def per_thousand(cpu: Counter, requests: int) -> dict[str, float]:
    """CPU milliseconds per 1,000 requests, by role, and outside the engine in total.

    >>> per_thousand(Counter({ENGINE: 10.0, "driver": 0.5, "replica actors": 1.5}), 2000)
    {'engine (vLLM processes)': 5000.0, 'driver': 250.0, 'replica actors': 750.0, 'outside the engine': 1000.0}
    """
    out = {k: round(v * 1e6 / max(requests, 1), 1) for k, v in cpu.items()}
    out["outside the engine"] = round(sum(v for k, v in out.items() if k != ENGINE), 1)
    return out
