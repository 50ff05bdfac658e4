"""The cluster-scale simulation of ``make bench`` (``--only simulation``): the real pipeline (Ray
Data, prepare, the replicas' actor pool and queues, parse, the Parquet sink) with the labelled
stand-in engine of ``bench.simulate`` in place of vLLM, so that 8 to 64 replicas run on this
machine. Each request takes as long as a real reasoning trace of its drawn length would
(log-normal, median 1,500 tokens, p99 about 15,000, capped at 32,768; 30 tokens/s per running
request, 64 running per engine); time is compressed so that the whole run lasts a few minutes.

Reported per run: replica utilization (busy time / (replicas x engines' window)), slot utilization
(the simulated request time over every engine slot of the window: how full the batches were), the
engines' window against the ideal makespan (all work spread evenly over every engine slot, or the longest
single request if that is longer), idle time at the tail, and the driver's peak memory. Each run
is a fresh process with its own embedded Ray.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import tempfile
import time

from .state import _peak_reset, _status_kb

SEQS, TOKENS_PER_S, MEDIAN, SIGMA, MAX_TOKENS = 64, 30.0, 1500.0, 1.0, 32768


def cfg_teacher() -> str:
    """The tiny teacher's folder (the embedded default's): its tokenizer is the stand-in's."""
    from pipeline.loading import load_config

    return load_config("configs/local.yaml").teacher.model


def _mean_tokens() -> float:
    return MEDIAN * math.exp(SIGMA**2 / 2)  # of the log-normal (the cap trims a little)


def _write_prompts(path: str, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "id": f"sim-{i:08d}",
                        "prompt": f"What is {i % 997} + {i % 89}?",
                        "reference": str(i % 997 + i % 89),
                    }
                )
                + "\n"
            )


def _run(
    replicas: int, prompts: int, window_s: float, loop_share: float, stop_loops: bool, rows_per_batch, results
) -> None:
    """In a fresh process: one simulated run; puts its figures on ``results``."""
    from bench.simulate import SimFactory, SimSpec
    from pipeline.loading import load_config
    from pipeline.runs.generate import run

    tmp = tempfile.mkdtemp(prefix="thinkmill-sim-")
    try:
        _write_prompts(f"{tmp}/in.jsonl", prompts)
        # compress time so that the ideal makespan (the work spread over every slot, or the longest
        # possible request) lasts about window_s
        ideal_sim_s = max(prompts * _mean_tokens() / TOKENS_PER_S / (replicas * SEQS), MAX_TOKENS / TOKENS_PER_S)
        spec = SimSpec(
            os.path.abspath(cfg_teacher()),
            max_num_seqs=SEQS,
            tokens_per_s=TOKENS_PER_S,
            median_tokens=MEDIAN,
            sigma=SIGMA,
            loop_share=loop_share,
            time_scale=ideal_sim_s / window_s,
        )
        mode = {"name": "think", "thinking": True, "sampling": {"max_tokens": MAX_TOKENS}}
        cfg = load_config(
            "configs/local.yaml",
            [
                f"input.path={tmp}/in.jsonl",
                "input.limit=null",
                f"output.path={tmp}/out",
                "output.run_id=sim",
                "output.rows_per_file=20000",
                f"teacher.replicas={replicas}",
                "teacher.resources.num_cpus=1",
                f"teacher.engine.max_num_seqs={SEQS}",
                "teacher.engine.max_model_len=40000",
                "teacher.max_in_flight=null",
                "generation.samples_per_prompt=1",
                f"generation.modes=[{json.dumps(mode)}]",
                f"generation.stop_loops={'{}' if stop_loops else 'null'}",
                "filters.order=[]",
                f"ray.num_cpus={replicas + 8}",
                "ray.batch_size=64",
            ],
        )
        import dataclasses

        from pipeline.runs.plan import make_plan

        plan = make_plan(cfg)
        if rows_per_batch is not None:  # another unit of work than the plan's (to compare): (rows, tasks)
            plan = dataclasses.replace(plan, rows_per_batch=rows_per_batch[0], batches_per_replica=rows_per_batch[1])
        base = _peak_reset()
        t0 = time.time()
        s = run(cfg, plan, engine_factory=SimFactory(spec))
        wall = time.time() - t0
        peak = (_status_kb("VmHWM") - base) / 1024
        import pyarrow.parquet as pq

        answers = pq.read_table(f"{tmp}/out/sim/accepted", columns=["answer"]).column("answer").to_pylist()
        lengths = [int(a.split("simulated_tokens=")[1].split()[0]) for a in answers]
        work = sum(spec.seconds(n) for n in lengths)
        ideal = max(work / (replicas * SEQS), max(spec.seconds(n) for n in lengths))
        work_by = s["replica_work"].values()
        results.put(
            {
                "replicas": replicas,
                "prompts": prompts,
                "served": len(s["replica_work"]),
                "accounted": s["accounted"],
                "rows_per_batch": plan.rows_per_batch,
                "batches_per_replica": plan.batches_per_replica,
                "utilization": s["replica_utilization"],
                "window_s": s["engine_window_s"],
                "ideal_s": ideal,
                # the GPU's view: the engines' request slots in use over the window (busy counts a
                # replica with one request running as busy; this counts how full its batch was)
                "slot_utilization": work / (replicas * SEQS * s["engine_window_s"]),
                "tail_idle_max_s": max(w["idle_at_end_s"] for w in work_by),
                "tail_idle_mean_s": sum(w["idle_at_end_s"] for w in work_by) / len(work_by),
                "wall_s": wall,
                "driver_peak_mb": peak,
                "loops": s["loops_stopped"],
                "rows_per_s": prompts / wall,
                "sim_tokens": sum(lengths),
            }
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def simulate(
    replicas: int,
    prompts: int,
    window_s: float = 120.0,
    loop_share: float = 0.0,
    stop_loops: bool = False,
    rows_per_batch: tuple[int, int] | None = None,
) -> dict:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_run, args=(replicas, prompts, window_s, loop_share, stop_loops, rows_per_batch, results))
    proc.start()
    r = results.get()
    proc.join()
    return r


def bench_simulation(runs=((8, 10_000),), window_s: float = 250.0) -> str:
    """About 8 minutes per run here. The window is what this machine's 2 cores can feed: about 40
    requests/s; faster, the CPU stages and Ray Data's per-task cost, not the engines, set the pace."""
    rows = []
    for replicas, prompts in runs:
        r = simulate(replicas, prompts, window_s)
        print(r, flush=True)
        rows.append(r)
    loops = [simulate(8, 4_000, 100.0, loop_share=0.02, stop_loops=on) for on in (False, True)]
    table = "\n".join(
        [
            "| replicas | prompts | replicas served | utilization | slot utilization | engines' window | "
            "ideal makespan | window / ideal | tail idle, max / mean | driver peak memory | rows/s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {r['replicas']} | {r['prompts']:,} | {r['served']} | {r['utilization']:.3f} | "
                f"{r['slot_utilization']:.3f} | {r['window_s']:.0f} s | "
                f"{r['ideal_s']:.0f} s | {r['window_s'] / r['ideal_s']:.2f} | {r['tail_idle_max_s']:.1f} / "
                f"{r['tail_idle_mean_s']:.1f} s | {r['driver_peak_mb']:.0f} MB | {r['rows_per_s']:.0f} |"
                for r in rows
            ),
        ]
    )
    off, on = loops
    saved = 1 - on["sim_tokens"] / off["sim_tokens"]
    return (
        f"{table}\n\nLoops (2% of requests loop; 8 replicas, 4,000 prompts): without `generation.stop_loops` "
        f"the simulated engines generate {off['sim_tokens']:,} tokens in a {off['window_s']:.0f} s window; with "
        f"it {on['sim_tokens']:,} ({saved:.0%} fewer) in {on['window_s']:.0f} s, {on['loops']['samples']} samples "
        f"stopped as loops (the pipeline counts {on['loops']['tokens_saved']:,} tokens not generated).\n"
    )


if __name__ == "__main__":
    import sys

    r, n = (int(x) for x in sys.argv[1:3])
    print(
        simulate(
            r,
            n,
            float(sys.argv[3]) if len(sys.argv) > 3 else 120.0,
            rows_per_batch=(int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 5 else None,
        )
    )
