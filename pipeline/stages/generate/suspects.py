"""Finding the request that kills its engine, so that it costs one error row, not the night.

When a replica's engine dies, every request it had in flight is a suspect (``DeathBook``, a Ray
actor shared by the replicas). Ray restarts the replica and retries its batches; there a suspect
runs *alone* in its engine (``Gate``: it waits until nothing else is in flight and holds others
back while it runs). If the engine dies with a request alone in it, that request is the cause: on
the next retry it becomes an ``engine_died`` error row (redone on resume) instead of being sent
again. Innocent requests that were in flight beside it run alone once and go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class DeathBook:
    """Engine deaths per sample: in flight at a death, and in flight alone at one."""

    def __init__(self, run_id: str = ""):
        self.run_id = run_id  # the live metrics' tag (``pipeline.metrics``)
        self.deaths: dict[str, list[int]] = {}
        self.starts: dict[str, int] = {}  # per replica (its Ray actor id): times it started
        self.engine_deaths = 0
        self.cores: dict[str, dict] = {}  # per host: a CPU engine's cores and the rest of the job's
        self.start_failures: list[dict] = []  # the last 50 failed engine starts: host, reason, when
        self.failed_starts = 0
        self.failed_by: dict[str, int] = {}  # per replica (its Ray actor id): failed starts
        self.first_start: float | None = None  # when the first engine start began (epoch seconds)

    def started(self, replica: str, host: str | None = None, cores: dict | None = None) -> None:
        self.starts[replica] = self.starts.get(replica, 0) + 1
        if self.starts[replica] > 1:
            from ...metrics import inc

            inc("thinkmill_replica_restarts", run_id=self.run_id)
        if cores is not None:
            self.cores[host] = cores

    def start_failed(self, host: str, reason: str, replica: str = "") -> None:
        self.failed_starts += 1
        self.failed_by[replica] = self.failed_by.get(replica, 0) + 1
        failure = {"host": host, "reason": reason, "at": round(time.time(), 1)}
        self.start_failures = [*self.start_failures[-49:], failure]

    def start_begins(self) -> None:
        self.first_start = self.first_start or time.time()

    def replicas_up(self) -> int:
        """Replicas whose engine came up (at least once)."""
        return len(self.starts)

    def start_stats(self) -> dict:
        return {
            "up": len(self.starts),
            "failed": self.failed_starts,
            "failures": self.start_failures,
            "begun": self.first_start,
            "failed_twice": sum(n >= 2 for n in self.failed_by.values()),
        }

    def stats(self) -> dict:
        """What the summary reports: restarts (a replica started again after its process
        ended: its engine died, or the node went) and engine deaths the replicas saw."""
        return {
            "replica_restarts": sum(n - 1 for n in self.starts.values()),
            "engine_deaths": self.engine_deaths,
            "engine_cores": dict(sorted(self.cores.items())),
            "start_failures": self.start_failures,
            "failed_starts": self.failed_starts,
        }

    def record(self, sample_ids: list[str]) -> None:
        from ...metrics import inc

        self.engine_deaths += 1
        inc("thinkmill_engine_deaths", run_id=self.run_id)
        alone = len(sample_ids) == 1
        for sid in sample_ids:
            d = self.deaths.setdefault(sid, [0, 0])
            d[0] += 1
            d[1] += alone

    def counts(self, sample_ids: list[str]) -> dict[str, list[int]]:
        return {sid: self.deaths[sid] for sid in sample_ids if sid in self.deaths}


def call(book, method: str, *args):
    """Call a ``DeathBook`` method on the actor (or on a local book, in tests)."""
    fn = getattr(book, method)
    if hasattr(fn, "remote"):
        import ray

        return ray.get(fn.remote(*args))
    return fn(*args)


async def acall(book, method: str, *args):
    """``call`` from a replica's event loop: awaits the actor instead of blocking the loop (and
    with it every request the engine is running) for the round trip."""
    fn = getattr(book, method)
    return await fn.remote(*args) if hasattr(fn, "remote") else fn(*args)


class Gate:
    """Requests share the engine; a suspect has it to itself.

    >>> async def demo():
    ...     g, order = Gate(), []
    ...     async def run(name, alone):
    ...         async with g.enter(alone):
    ...             order.append(name)
    ...             await asyncio.sleep(0.01)
    ...     await asyncio.gather(run("a", False), run("s", True), run("b", False))
    ...     return order
    >>> asyncio.run(demo())[:1]
    ['a']
    """

    def __init__(self):
        self.inflight: set[str] = set()
        self._shared = 0
        self._alone = False
        self._cond: asyncio.Condition | None = None

    @contextlib.asynccontextmanager
    async def enter(self, alone: bool, sample_id: str = ""):
        if self._cond is None:  # made in the event loop that runs the batches
            self._cond = asyncio.Condition()
        async with self._cond:
            if alone:
                await self._cond.wait_for(lambda: not self._alone and self._shared == 0)
                self._alone = True
            else:
                await self._cond.wait_for(lambda: not self._alone)
                self._shared += 1
        self.inflight.add(sample_id)
        try:
            yield
        finally:
            self.inflight.discard(sample_id)
            async with self._cond:
                if alone:
                    self._alone = False
                else:
                    self._shared -= 1
                self._cond.notify_all()
