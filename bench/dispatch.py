"""A MODEL of how the generate stage hands work to replicas, at sizes this machine cannot run the
real pipeline at (``make bench``, ``--only dispatch``): 8 to 64 replicas, 10k to 1M requests.

It is an event simulation in one process, not the pipeline: no Ray, no engine, no CPU stages, and
the input arrives as fast as it is taken. What it keeps is the dispatch as built
(``runs.plan.work_units``, Ray Data's actor pool as read in ``actor_pool_map_operator.py``):

- the stream is cut into tasks of ``rows`` requests; each replica holds up to ``tasks`` of them;
  the next task goes to the replica with the fewest tasks in flight (Ray Data's ranking), when a
  task of it finishes, i.e. when its slowest request does;
- in a replica, requests enter its engine in arrival order and at most ``max_num_seqs`` run at
  once (the semaphore's extra ``in_flight - max_num_seqs`` wait in the engine's queue, which is the
  same order);
- a request runs for its trace length / ``tokens_per_s`` (the lengths of ``bench.simulate``:
  log-normal, median 1,500 tokens, sigma 1, capped at 32,768; 30 tokens/s per running request).

Against it, ``per_row``: one shared queue, a request starting on whichever engine slot frees
first (the best a per-row router could do in arrival order). Reported: slot utilization (request
time over replicas x slots x makespan), the makespan over the ideal (all work over every slot, or the
longest request), and the tail (from the last request's start to the end).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque

SEQS, TOKENS_PER_S, MEDIAN, SIGMA, MAX_TOKENS = 64, 30.0, 1500.0, 1.0, 32768


def durations(n: int, seed: int = 0) -> list[float]:
    """Request times in (simulated) seconds."""
    rng = random.Random(seed)
    mu = math.log(MEDIAN)
    return [max(1, min(MAX_TOKENS, round(math.exp(rng.gauss(mu, SIGMA))))) / TOKENS_PER_S for _ in range(n)]


def tasks_model(times: list[float], replicas: int, rows: int, held: int, seqs: int = SEQS) -> dict:
    """The generate stage's dispatch as built: tasks of ``rows``, ``held`` per replica, least
    tasks in flight first.

    >>> r = tasks_model([1.0] * 8, replicas=2, rows=2, held=2, seqs=2); r["makespan"], r["slot_utilization"]
    (2.0, 1.0)
    """
    tasks = deque(range(0, len(times), rows))
    left: dict[int, int] = {}  # task -> requests not finished
    in_flight = [0] * replicas  # tasks each replica holds
    queue = [deque() for _ in range(replicas)]
    running = [0] * replicas
    events: list = []  # (end time, replica, task)
    last_start = 0.0

    def start(rep: int, now: float) -> None:
        nonlocal last_start
        while running[rep] < seqs and queue[rep]:
            i, task = queue[rep].popleft()
            running[rep] += 1
            last_start = now
            heapq.heappush(events, (now + times[i], rep, task))

    def dispatch(now: float) -> None:
        while tasks:
            rep = min(range(replicas), key=lambda k: in_flight[k])  # Ray Data's ranking
            if in_flight[rep] >= held:
                return
            first = tasks.popleft()
            ids = range(first, min(first + rows, len(times)))
            left[first] = len(ids)
            in_flight[rep] += 1
            queue[rep].extend((i, first) for i in ids)
            start(rep, now)

    dispatch(0.0)
    now = 0.0
    while events:
        now, rep, task = heapq.heappop(events)
        running[rep] -= 1
        left[task] -= 1
        if not left[task]:
            in_flight[rep] -= 1
            dispatch(now)
        start(rep, now)
    return _figures(times, replicas, seqs, now, last_start)


def per_row_model(times: list[float], replicas: int, seqs: int = SEQS) -> dict:
    """One shared queue: each request starts on the first engine slot to free up."""
    slots = [0.0] * (replicas * seqs)
    heapq.heapify(slots)
    end = last_start = 0.0
    for t in times:
        free = heapq.heappop(slots)
        last_start = max(last_start, free)
        end = max(end, free + t)
        heapq.heappush(slots, free + t)
    return _figures(times, replicas, seqs, end, last_start)


def _figures(times: list[float], replicas: int, seqs: int, makespan: float, last_start: float) -> dict:
    work = sum(times)
    ideal = max(work / (replicas * seqs), max(times))
    return {
        "makespan": round(makespan, 1),
        "ideal": round(ideal, 1),
        "slot_utilization": round(work / (replicas * seqs * makespan), 3),
        "over_ideal": round(makespan / ideal, 3),
        "tail": round(makespan - last_start, 1),
    }


def bench_dispatch(sizes=((8, 10_000), (32, 100_000), (64, 100_000), (64, 1_000_000))) -> str:
    from pipeline.runs.plan import work_units

    in_flight = SEQS + max(2, SEQS // 4)  # teacher.in_flight's default
    rows, _ = work_units(in_flight, 64)
    twice = math.ceil(2 * in_flight / rows) + 2
    lines = [
        "| replicas | requests | ideal makespan | dispatch | slot utilization | makespan / ideal | "
        "tail (last start to end) |",
        "|---:|---:|---:|---|---:|---:|---:|",
    ]
    for replicas, n in sizes:
        times = durations(n)
        held = work_units(in_flight, 64, math.ceil(n / replicas))[1]  # as the plan makes it for this run
        for label, r in (
            (f"tasks of {rows} rows, {held} held (as built)", tasks_model(times, replicas, rows, held)),
            (
                f"tasks of {rows} rows, {twice} held (for 2 x in_flight: before)",
                tasks_model(times, replicas, rows, twice),
            ),
            ("per row, one shared queue", per_row_model(times, replicas)),
        ):
            lines.append(
                f"| {replicas} | {n:,} | {r['ideal']:,.0f} s | {label} | {r['slot_utilization']:.3f} | "
                f"{r['over_ideal']:.3f} | {r['tail']:,.0f} s |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(bench_dispatch())
