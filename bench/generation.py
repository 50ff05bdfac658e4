"""The generation benchmark of ``make bench``: the pipeline against bare vLLM and ray.data.llm on the
same requests, engines and engine arguments.

Every side gets the same requests: the config's prompts, rendered and tokenized once by the
pipeline's own prepare stage, with the same per-sample seeds, on ``teacher.replicas`` engines with
the same engine arguments, the batched-token budget set explicitly (vLLM otherwise picks 4,096
for ``LLM`` and 2,048 for ``AsyncLLMEngine``, which is not like for like).

- bare vLLM: one process per engine, each ``LLM.generate`` over its share of the requests (all
  submitted at once: the engine's best case), started together after every engine loads;
- thinkmill: ``jobs.generate`` on the same config (Ray Data, async replicas, parse, Parquet), with
  the filters off and on;
- ray.data.llm: ``build_processor`` with ``vLLMEngineProcessorConfig`` over the same token ids and
  sampling, ``concurrency=R`` (its usual form, an autoscaling pool) and ``concurrency=(R, R)``.

Two workloads with as many requests each: every mode over the prompts, one sample each; and think
mode only, 4 samples per prompt (the long tail). Thinking budgets off: ``LLM.generate`` cannot do the
two-stage continuation. Reported: generated tokens/s over the engines' busy window (first request
in to last token out; start-up excluded) and over the whole wall time, and each side / bare.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time

BATCHED_TOKENS = 4096  # every side's max_num_batched_tokens


def build_requests(cfg) -> list[dict]:
    """Pending request rows exactly as the pipeline's prepare stage makes them."""
    import pyarrow as pa

    from pipeline.read import jsonl_blocks, resolve_input
    from pipeline.stages.prepare import Prepare, PrepareSettings

    files = resolve_input(cfg.input.path, cfg.input.format)
    if files.format != "jsonl":
        raise SystemExit("the bench reads JSONL prompts (input.path)")
    blocks = []
    for path in files.paths:
        with open(path, "rb") as f:
            blocks += list(jsonl_blocks(f, path))
    raws = pa.concat_tables(blocks).slice(0, cfg.input.limit or None)
    rows = Prepare(PrepareSettings.of(cfg))(raws).to_pylist()
    return [r for r in rows if r["status"] == "pending"]


def _sampling(row: dict) -> dict:
    """A request's sampling as the plain dict ray.data.llm takes (no loop stopping in the bench)."""
    from dataclasses import asdict

    from pipeline.engine import request_params

    kw = asdict(request_params(row))
    kw.pop("stop_loops")
    return kw


def _bare_engine(cfg, requests, barrier, results) -> None:
    from vllm.inputs import TokensPrompt

    from pipeline.engine import offline_llm, request_params, vllm_sampling
    from pipeline.stages.generate import engine_kwargs

    llm = offline_llm(engine_kwargs(cfg.teacher, cfg.generation.modes))
    prompts = [TokensPrompt(prompt_token_ids=r["prompt_token_ids"]) for r in requests]
    params = [vllm_sampling(request_params(r)) for r in requests]
    barrier.wait()
    t0 = time.time()
    outs = llm.generate(prompts, params, use_tqdm=False)
    t1 = time.time()
    results.put((t0, t1, sum(len(o.outputs[0].token_ids) for o in outs)))
    llm.llm_engine.engine_core.shutdown()


def bench_bare(cfg, requests) -> dict:
    ctx = mp.get_context("spawn")
    n = cfg.teacher.replicas
    barrier, results = ctx.Barrier(n), ctx.Queue()
    started = time.time()
    procs = [ctx.Process(target=_bare_engine, args=(cfg, requests[i::n], barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    got = [results.get() for _ in procs]
    for p in procs:
        p.join()
    window = max(t1 for _, t1, _ in got) - min(t0 for t0, _, _ in got)
    return {"tokens": sum(t for _, _, t in got), "window_s": window, "wall_s": time.time() - started}


def bench_pipeline(cfg) -> dict:
    import ray

    from bench.cpu import CpuSampler, per_thousand
    from pipeline.run_folder import RunFolder
    from pipeline.runs.generate import run
    from pipeline.tally import Tally

    sampler = CpuSampler().start()  # this process (the driver) and every process of its embedded Ray
    try:
        s = run(cfg)
    finally:
        sampler.stop()
    t = Tally.of_committed(RunFolder(s["output"]))  # the engines' busy window, as the summary counts it
    requests = sum(w["requests"] for w in s["replica_work"].values())
    cpu = per_thousand(sampler.between(t.t_first, t.t_last), requests)
    # a fresh Ray per run: otherwise the next run shares the cores with this one's replicas
    # shutting down, and whichever runs second looks slower
    ray.shutdown()
    if not s["accounted"]:
        raise RuntimeError(f"pipeline lost samples: {s['missing']}")
    return {
        "tokens": s["tokens"]["completion"],
        "window_s": s["engine_window_s"],
        "wall_s": s["wall_s"],
        "replicas_seen": s["replicas_seen"],
        "restarts": s["replica_restarts"],
        "cpu": cpu,
    }


def _ray_data_llm(cfg, requests, concurrency, results) -> None:
    """In a fresh process with its own Ray: the same requests through ray.data.llm."""
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from pipeline.stages.generate import engine_kwargs

    kw = engine_kwargs(cfg.teacher, cfg.generation.modes)
    model = kw.pop("model")
    from bench.cpu import CpuSampler, per_thousand
    from pipeline.runs.plan import make_plan

    sampler = CpuSampler().start()  # this process and its Ray's (started below, its children)
    # the logical CPUs of the pipeline's own embedded Ray (replicas + CPU stages): with only the
    # cores', the engines hold them all and ray.data.llm's preprocess task never gets one
    ray.init(num_cpus=make_plan(cfg).ray_cpus, include_dashboard=False, log_to_driver=False)
    started = time.time()
    processor = build_processor(
        vLLMEngineProcessorConfig(
            model_source=model,
            engine_kwargs=kw,
            concurrency=concurrency,
            batch_size=cfg.ray.batch_size,
            log_engine_metrics=False,
            placement_group_config={"bundles": [{"CPU": 1}]},  # CPU engines
            chat_template_stage=False,
            tokenize_stage=False,
            detokenize_stage=False,
        ),
        preprocess=lambda r: {"tokenized_prompt": r["ids"], "sampling_params": r["sp"]},
        # done = when the postprocess sees the row (just after its batch finished): pessimistic
        # by that hop; in = done minus the request's own latency
        postprocess=lambda r: {
            "tokens": int(r["num_generated_tokens"]),
            "done": time.time(),
            "latency": float(r["time_taken_llm"]),
        },
    )
    ds = ray.data.from_items([{"ids": r["prompt_token_ids"], "sp": _sampling(r)} for r in requests])
    rows = processor(ds).take_all()
    wall = time.time() - started
    sampler.stop()
    ray.shutdown()
    t0, t1 = min(r["done"] - r["latency"] for r in rows), max(r["done"] for r in rows)
    results.put(
        {
            "tokens": sum(r["tokens"] for r in rows),
            "wall_s": wall,
            "window_s": t1 - t0,
            "cpu": per_thousand(sampler.between(t0, t1), len(rows)),
        }
    )


def bench_ray_data_llm(cfg, requests, concurrency) -> dict:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    p = ctx.Process(target=_ray_data_llm, args=(cfg, requests, concurrency, results))
    p.start()
    got = results.get()
    p.join()
    return got


WORKLOADS = {  # name: (thinking modes only, samples per prompt)
    "both modes, 1 sample": (False, 1),
    "think, 4 samples (long tail)": (True, 4),
}


def configs(config: str, prompts: int, think_only: bool, samples: int):
    """(filters on, filters off) configs of one workload."""
    import copy

    import yaml

    from pipeline.loading import load_config

    data = yaml.safe_load(open(config, encoding="utf-8"))
    every = len(data["generation"]["modes"])
    if think_only:
        data["generation"]["modes"] = [m for m in data["generation"]["modes"] if m.get("thinking", True)]
    tmp = tempfile.mkdtemp(prefix="thinkmill-bench-")
    # as many requests as the first workload's (every mode, one sample each)
    limit = prompts * every // (samples * len(data["generation"]["modes"]))
    common = [
        f"input.limit={limit}",
        f"generation.samples_per_prompt={samples}",
        # not incremental: the second side's run would find the first's samples and skip them all
        f"output.path={tmp}",
        "output.overwrite=true",
        "output.incremental=false",
        f"teacher.engine.extra.max_num_batched_tokens={BATCHED_TOKENS}",
        *(f"generation.modes.{i}.thinking_budget=null" for i in range(len(data["generation"]["modes"]))),
    ]
    return (
        load_config(data=copy.deepcopy(data), overrides=common + ["output.run_id=bench"]),
        load_config(data=copy.deepcopy(data), overrides=common + ["output.run_id=bench-nofilters", "filters.order=[]"]),
        load_config(
            data=copy.deepcopy(data), overrides=common + ["output.run_id=bench-isolated", "teacher.isolate_cores=true"]
        ),
    )


#: the side with ``teacher.isolate_cores`` (``pipeline.cores``): a CPU node given to the job
ISOLATED = "thinkmill, filters on, `teacher.isolate_cores`"


def bench_generation(config: str, prompts: int) -> tuple[str, dict]:
    """Every workload on every side; the section's table and the ratios."""
    lines = [
        "| workload | side | generated tokens | engines busy (s) | tokens/s | x bare | wall incl. start-up (s) "
        "| tokens/s | x bare |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios, cpu_rows = {}, []
    for name, (think_only, samples) in WORKLOADS.items():
        cfg, cfg_nf, cfg_iso = configs(config, prompts, think_only, samples)
        requests = build_requests(cfg)
        r = cfg.teacher.replicas
        print(f"{name}: {len(requests)} requests, {r} engines", flush=True)
        sides = {"bare vLLM `LLM.generate`": bench_bare(cfg, requests)}
        sides[f"ray.data.llm, `concurrency={r}`"] = bench_ray_data_llm(cfg, requests, r)
        sides[f"ray.data.llm, `concurrency=({r}, {r})`"] = bench_ray_data_llm(cfg, requests, (r, r))
        sides["thinkmill, filters off"] = bench_pipeline(cfg_nf)
        sides["thinkmill, filters on"] = bench_pipeline(cfg)
        if cfg.teacher.device == "cpu":  # on a GPU nothing is bound: the same as the side before
            sides[ISOLATED] = bench_pipeline(cfg_iso)
        bare = sides["bare vLLM `LLM.generate`"]
        for side, s in sides.items():
            print(f"  {side}: {s}", flush=True)
            w, t = s["tokens"] / s["window_s"], s["tokens"] / s["wall_s"]
            ratios[(name, side)] = w / (bare["tokens"] / bare["window_s"])
            lines.append(
                f"| {name} | {side} | {s['tokens']} | {s['window_s']:.1f} | {w:.0f} "
                f"| {ratios[(name, side)]:.2f} "
                f"| {s['wall_s']:.1f} | {t:.0f} | {t / (bare['tokens'] / bare['wall_s']):.2f} |"
            )
            if "cpu" in s:
                cpu_rows.append((name, side, s["cpu"]))
            if "restarts" in s:
                lines[-1] = lines[-1].replace(
                    f"| {side} |", f"| {side} (replicas served {s['replicas_seen']}, restarts {s['restarts']}) |"
                )
    return "\n".join(lines) + "\n\n" + cpu_table(cpu_rows), ratios


def cpu_table(rows: list[tuple[str, str, dict]]) -> str:
    """CPU milliseconds per 1,000 requests over each side's busy window, by role (``bench.cpu``)."""
    roles = list(dict.fromkeys(k for _, _, c in rows for k in c if k != "outside the engine"))
    head = "| workload | side | outside the engine | " + " | ".join(roles) + " |"
    return "\n".join(
        [
            "CPU milliseconds per 1,000 requests over the busy window, by process role (`bench/cpu.py`: /proc sampled "
            "every 0.5 s over the side's process tree, each interval under the role the process had then; the "
            "engine's own is the vLLM processes', EngineCore and its workers):",
            "",
            head,
            "|---|---|" + "---:|" * (len(roles) + 1),
            *(
                f"| {w} | {side} | **{c['outside the engine']:,.0f}** | "
                + " | ".join(f"{c.get(r, 0):,.0f}" for r in roles)
                + " |"
                for w, side, c in rows
            ),
        ]
    )
