"""The console while a job runs: one progress line, not Ray's and vLLM's logs.

By default (``ray.verbose: false``) Ray Data's progress blocks are off, the workers' output (vLLM's
logs and warnings, and the tracebacks some libraries print while their processes exit) is not sent
to the driver, and Ray logs only warnings there; all of it is still in the Ray session's log files,
whose folder the job prints. In their place the last stage of the chain reports each batch it
finishes to a small actor (``ProgressBook``), and the driver prints one line from it: samples done
of those expected, the accepted share, generated tokens/s, and an ETA. On a terminal the line is
rewritten in place every second; otherwise (a log file, ``ray job submit``) a new one is printed
every 30 s.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc

from .metrics import gauge, run_tag
from .pinned import on_driver_node


def quiet(verbose: bool) -> None:
    """Ray Data's console output for this driver: its progress blocks and execution banners only
    when ``verbose``."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = verbose
    ctx.print_on_execution_start = verbose
    if not verbose:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"


def log_folder() -> str | None:
    """Where this Ray session's logs (the workers', vLLM's) are written."""
    try:
        import ray

        return f"{ray._private.worker._global_node.get_session_dir_path()}/logs"  # noqa: SLF001 - no public API
    except Exception:  # noqa: BLE001 - only a hint for the console
        return None


class ProgressBook:
    """Ray actor: what the last stage has finished so far."""

    def __init__(self):
        self.totals = [0, 0, 0, 0]  # samples (accounting), made here, accepted, generated tokens
        self.first: float | None = None  # when the first batch came out (the engines had started)

    def add(self, *batch: int) -> None:
        if self.first is None:
            self.first = time.time()
        self.totals = [a + b for a, b in zip(self.totals, batch)]

    def get(self) -> tuple[list[int], float | None]:
        return self.totals, self.first

    def rebase(self, samples: int) -> None:
        """A stopped pass (``pipeline.node_loss``) is redone: what it finished but did not commit
        is made again, so the count goes back to the samples committed (less the console's base)."""
        self.totals[0] = samples


def counts(table: pa.Table, per_input: int) -> tuple[int, int, int, int]:
    """A finished batch as (samples, samples made here, accepted, generated tokens): an ``earlier``
    row stands for a prompt's ``per_input`` samples, as in the accounting, made by another run.

    >>> t = pa.table({"status": ["accepted", "rejected", "error", "earlier"], "completion_tokens": [5, 7, None, None]})
    >>> counts(t, 4)
    (7, 3, 1, 12)
    """
    status = table["status"]
    earlier = pc.sum(pc.equal(status, "earlier")).as_py() or 0
    accepted = pc.sum(pc.equal(status, "accepted")).as_py() or 0
    tokens = 0
    if "completion_tokens" in table.column_names:
        tokens = pc.sum(table["completion_tokens"]).as_py() or 0
    made = table.num_rows - earlier
    return made + earlier * per_input, made, accepted, tokens


def line(done: int, expected: int, made: int, accepted: int, tokens: int, elapsed: float | None) -> str:
    """The progress line: ``done`` samples of ``expected`` (a resume's kept ones included), of which
    this attempt ``made`` (and ``accepted``) in ``elapsed`` seconds since its first came out.

    >>> line(250, 1000, 200, 80, 50_000, 20.0)
    'progress  250/1,000 samples (25%)  accepted 40%  2,500 tokens/s  ETA 1m15s'
    >>> line(0, 1000, 0, 0, 0, None)
    'progress  0/1,000 samples (0%)  starting the engines'
    """
    head = f"progress  {done:,}/{expected:,} samples ({100 * done // max(expected, 1)}%)"
    if not elapsed or made <= 0:
        return f"{head}  starting the engines"
    left = max(expected - done, 0) * elapsed / made
    eta = (
        f"{int(left // 3600)}h{int(left % 3600 // 60):02d}m"
        if left >= 3600
        else f"{int(left // 60)}m{int(left % 60):02d}s"
    )
    return f"{head}  accepted {100 * accepted // made}%  {tokens / elapsed:,.0f} tokens/s  ETA {eta}"


#: How often the driver sets the live metrics' gauges of what is left (``pipeline.metrics``).
METRICS_EVERY_S = 5.0


class Console:
    """The driver's progress line, printed from a thread while the job's dataset executes."""

    def __init__(
        self,
        book,
        expected: int,
        base: int = 0,
        stream=None,
        interval: float | None = None,
        shared: dict | None = None,
        run_id: str | None = None,
        per_input: int = 1,
    ):
        self.book, self.expected, self.base = book, expected, base
        self.run_id, self.per_input = run_id, per_input  # the live metrics' (``pipeline.metrics``): what is left
        self.shared = shared if shared is not None else {}  # the run's actors: engine deaths (``deaths``)
        self.deaths = (0, 0)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval or (1.0 if self.tty else 30.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="thinkmill-progress", daemon=True)

    def __enter__(self) -> Console:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._show()  # where it ended
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _loop(self) -> None:
        shown = time.time()
        # the live metrics' gauges every few seconds (a scrape sees them from the start), the line at its interval
        while not self._stop.wait(min(self.interval, METRICS_EVERY_S)):
            if time.time() - shown >= self.interval - 0.01:
                self._show()
                shown = time.time()
            else:
                self._show(quiet=True)

    def _show(self, quiet: bool = False) -> None:
        import ray

        try:
            (samples, made, accepted, tokens), first = ray.get(self.book.get.remote(), timeout=5)
        except Exception:  # noqa: BLE001 - a missed update is not worth failing a run over
            return
        text = line(self.base + samples, self.expected, made, accepted, tokens, time.time() - first if first else None)
        if self.run_id is not None:
            left = max(self.expected - self.base - samples, 0)
            gauge("thinkmill_samples_left", left, run_id=self.run_id)
            gauge("thinkmill_prompts_left", -(-left // max(self.per_input, 1)), run_id=self.run_id)
        if quiet:
            return
        self.stream.write((f"\r{text}\033[K" if self.tty else text + "\n") + self._deaths())
        self.stream.flush()

    def _deaths(self) -> str:
        """A line when an engine died since the last look (the replica logs it in its own log file)."""
        import ray

        book = self.shared.get("deaths")
        if book is None:
            return ""
        try:
            stats = ray.get(book.stats.remote(), timeout=5)
        except Exception:  # noqa: BLE001 - as above
            return ""
        seen = (stats["engine_deaths"], stats["replica_restarts"])
        if seen == self.deaths:  # the counts only grow
            return ""
        self.deaths = seen
        return (
            ("\n" if self.tty else "") + f"teacher engine died, restarting the replica (engine deaths so far: "
            f"{seen[0]}, replica restarts: {seen[1]}; the requests it held are retried)\n"
        )


@contextmanager
def shown(ctx, expected: int, base: int = 0):
    """The progress line while the body runs: a book in ``ctx.shared`` for the chain's last stage,
    and the console reading it. ``base``: samples a resume kept."""
    import ray

    where = log_folder()
    if where and not ctx.job.ray.verbose:
        print(f"logs of Ray and the engines: {where} (--verbose shows them here)", file=sys.stderr, flush=True)
    book = ctx.shared["progress"] = ray.remote(ProgressBook).options(**on_driver_node()).remote()
    per_input = ctx.plan.samples_per_input if ctx.plan is not None else 1
    with Console(book, expected, base, shared=ctx.shared, run_id=run_tag(ctx.job), per_input=per_input):
        yield
