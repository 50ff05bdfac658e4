"""Starting the teacher's engines: a start that fails is retried, one that hangs is a failed start,
and too few engines up fails the job instead of hanging it (``teacher.min_replicas``,
``teacher.start_timeout_s``).

In a replica (``start_engine``): the engine starts in a thread while the replica waits for it. A
start that raises is reported to the run's book (``DeathBook.start_failed``: host and error) and
tried again after a backoff (5 s, doubling, at most 5 min), for as long as the job runs; so a
replica whose node was briefly short of memory joins later. A start still running after
``start_timeout_s`` is reported as failed too, and the replica keeps waiting for it: a second
engine beside a stuck one would fight it for the same memory, and a start that does finish late
is used. The replica takes no work before its engine is up (Ray Data sends none to an actor still
in its constructor), and none before ``min_replicas`` engines are up (``wait_for_replicas``).

On the driver (``Watch``): every start failure is printed as it happens; the job fails (exit 6,
``ReplicasDown``, naming the failures) when fewer than ``min_replicas`` engines are up
``start_timeout_s`` after the first engine start began (or the job started, if none began), or
at once when none is up and every replica's start failed twice (an error no retry will mend,
such as a broken install on every node).
"""

from __future__ import annotations

import _thread
import sys
import threading
import time

from .suspects import call

FIRST_BACKOFF_S, MAX_BACKOFF_S = 5.0, 300.0


class ReplicasDown(RuntimeError):
    """Fewer teacher engines came up than ``teacher.min_replicas``."""


def backoff(failures: int, first: float = FIRST_BACKOFF_S, cap: float = MAX_BACKOFF_S) -> float:
    """Seconds to wait before the next start after ``failures`` failed ones.

    >>> [backoff(n) for n in (1, 2, 3, 7, 20)]
    [5.0, 10.0, 20.0, 300.0, 300.0]
    """
    return min(cap, first * 2 ** min(failures - 1, 30))


class _Attempt:
    """One engine start, in a thread of its own (the replica waits for it with a timeout)."""

    def __init__(self, make):
        self.engine = self.error = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(make,), name="thinkmill-engine-start", daemon=True).start()

    def _run(self, make) -> None:
        try:
            self.engine = make()
        except BaseException as e:  # noqa: BLE001 - any failure of a start is reported, then retried
            self.error = e
        finally:
            self.done.set()


def start_engine(make, timeout_s: float, report=None, first_backoff: float = FIRST_BACKOFF_S):
    """``make()``'s engine, started again after each failure; ``report(reason)`` hears of each.

    >>> tries, heard = iter([OSError("no memory"), "engine"]), []
    >>> def make():
    ...     x = next(tries)
    ...     if isinstance(x, Exception):
    ...         raise x
    ...     return x
    >>> start_engine(make, 5, heard.append, first_backoff=0.01), heard
    ('engine', ['OSError: no memory'])
    >>> start_engine(lambda: time.sleep(0.2) or "late", 0.05, heard.append), heard[-1]
    ('late', 'no engine within teacher.start_timeout_s = 0.05 s; still waiting for that start')
    """
    report = report or (lambda reason: None)
    failures, attempt = 0, _Attempt(make)
    while True:
        if not attempt.done.wait(timeout_s):
            failures += 1
            report(f"no engine within teacher.start_timeout_s = {timeout_s:g} s; still waiting for that start")
            attempt.done.wait()
        if attempt.error is None:
            return attempt.engine
        failures += 1
        report(f"{type(attempt.error).__name__}: {attempt.error}"[:2000])
        time.sleep(backoff(failures, first_backoff))
        attempt = _Attempt(make)


async def wait_for_replicas(book, need: int, poll_s: float = 1.0) -> None:
    """Until ``need`` replicas' engines are up (the book counts them), for a replica's first batch."""
    import asyncio

    from .suspects import acall

    while await acall(book, "replicas_up") < need:
        await asyncio.sleep(poll_s)


class Watch:
    """The driver's watch over the engines' starts (a thread): prints each failure, and fails the
    job (interrupting the driver's main thread, where ``run`` turns it into ``ReplicasDown``) when
    too few are up. Used as a context manager around the dataset's execution."""

    def __init__(self, book, replicas: int, min_replicas: int, timeout_s: float, poll_s: float = 2.0, stream=None):
        self.book, self.replicas, self.need, self.timeout = book, replicas, min_replicas, timeout_s
        self.poll, self.stream = poll_s, stream or sys.stderr
        self.failure: str | None = None  # why the job failed, once it has
        self._seen = 0
        self._stop = threading.Event()
        self._started = time.time()
        self._thread = threading.Thread(target=self._loop, name="thinkmill-starts", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll) and self.failure is None:
            try:
                s = call(self.book, "start_stats")
            except Exception:  # noqa: BLE001 - a missed look is retried at the next
                continue
            self._print(s)
            # the engines' clock starts with the first start (Ray may take a while to start their processes)
            if (why := self.verdict(s, time.time() - (s["begun"] or self._started))) is not None:
                self.failure = why
                _thread.interrupt_main()

    def _print(self, s: dict) -> None:
        new = s["failed"] - self._seen
        for f in s["failures"][-new:] if new > 0 else []:
            self.stream.write(
                f"teacher engine start failed on {f['host']}: {f['reason'][:500]} "
                f"({s['up']} of {self.replicas} replica(s) up; the start is retried)\n"
            )
        self._seen = s["failed"]
        self.stream.flush()

    def verdict(self, s: dict, elapsed: float) -> str | None:
        """Why the job must fail now, or None.

        A replica whose starts keep failing (a broken node) fails nothing while another may still
        come up: only every replica failed twice, none up, ends the job before the timeout.

        >>> w = Watch(None, replicas=2, min_replicas=1, timeout_s=60)
        >>> f = [{"host": "n1", "reason": "OSError: x", "at": 0.0}]
        >>> w.verdict({"up": 1, "failed": 9, "failed_twice": 2, "failures": f}, 999)
        >>> w.verdict({"up": 0, "failed": 5, "failed_twice": 1, "failures": f}, 10)  # the other still starting
        >>> w.verdict({"up": 0, "failed": 4, "failed_twice": 2, "failures": f}, 10)[:62]
        '0 of the 2 teacher replica(s) up, 1 needed (teacher.min_replic'
        """
        if s["up"] >= self.need:
            return None
        if elapsed < self.timeout and not (s["up"] == 0 and s["failed_twice"] >= self.replicas):
            return None
        when = (
            f"after teacher.start_timeout_s = {self.timeout:g} s"
            if elapsed >= self.timeout
            else "and every replica's start failed twice"
        )
        errors = (
            "\n".join(f"  {f['host']}: {f['reason']}" for f in s["failures"][-10:])
            or "  (no start failed: the engines are still starting, or the cluster has no room for them)"
        )
        return (
            f"{s['up']} of the {self.replicas} teacher replica(s) up, {self.need} needed "
            f"(teacher.min_replicas) {when}; {s['failed']} failed start(s), the last:\n{errors}"
        )


def actor_id() -> str | None:
    """This Ray actor's id (the same across its restarts), or None outside an actor."""
    try:
        import ray

        return ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - only a label for counting restarts
        return None
