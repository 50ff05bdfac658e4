"""The loop-stopping benchmark of ``make bench`` (``--only loops``): ``generation.stop_loops`` on one
real engine (the tiny teacher), normal samples and samples planted to loop, each with the check
off and on: how many loops it stops, the tokens it saves, and whether it changes normal samples."""

from __future__ import annotations

import multiprocessing as mp
import time


def _loops_on_the_engine(cfg, requests, results) -> None:
    """In a fresh process, one engine: the same requests with and without ``generation.stop_loops``,
    as sampled (normal samples) and planted to loop (greedy, repetition penalty 0.3)."""
    from vllm.inputs import TokensPrompt

    from pipeline.engine import offline_llm, request_params, vllm_sampling
    from pipeline.modes import StopLoops
    from pipeline.stages.generate import engine_kwargs

    d = StopLoops()
    stop = (d.min_tokens, d.max_tokens, d.repeats)
    llm = offline_llm(engine_kwargs(cfg.teacher, cfg.generation.modes))
    prompts = [TokensPrompt(prompt_token_ids=r["prompt_token_ids"]) for r in requests]
    out = {}
    for kind, change in (("normal", {}), ("planted", {"temperature": 0.0, "repetition_penalty": 0.3})):
        for on in (False, True):
            params = [vllm_sampling(request_params(r).but(**change, stop_loops=stop if on else None)) for r in requests]
            t0 = time.time()
            outs = [o.outputs[0] for o in llm.generate(prompts, params, use_tqdm=False)]
            out[(kind, on)] = {
                "s": time.time() - t0,
                "tokens": sum(len(o.token_ids) for o in outs),
                "texts": [o.text for o in outs],
                "stopped": sum(o.finish_reason == "repetition" for o in outs),
                "length": sum(o.finish_reason == "length" for o in outs),
            }
    results.put(out)
    llm.llm_engine.engine_core.shutdown()


def bench_loops(config: str = "configs/local.yaml", prompts: int = 128) -> str:
    from bench.generation import build_requests
    from pipeline.loading import load_config

    cfg = load_config(
        config,
        [f"input.limit={prompts}", "generation.samples_per_prompt=1"]
        + [f"generation.modes.{i}.thinking_budget=null" for i in range(2)],
    )
    requests = [r for r in build_requests(cfg) if r["mode"] == "think"]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_loops_on_the_engine, args=(cfg, requests, results))
    proc.start()
    r = results.get()
    proc.join()
    same = sum(a == b for a, b in zip(r[("normal", False)]["texts"], r[("normal", True)]["texts"]))
    n = len(requests)
    rows = []
    for kind in ("normal", "planted"):
        off, on = r[(kind, False)], r[(kind, True)]
        rows.append(
            f"| {kind} | {n} | {off['length']} / {on['length']} | {on['stopped']} | {off['tokens']:,} / "
            f"{on['tokens']:,} ({1 - on['tokens'] / off['tokens']:.0%} fewer) | "
            f"{off['tokens'] / off['s']:.0f} / {on['tokens'] / on['s']:.0f} |"
        )
    return (
        "| requests (think mode) | n | hit max_tokens, off / on | stopped as loops | tokens generated, off / on | "
        "tokens/s, off / on |\n|---|---:|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + f"\n\nNormal samples with the check on: {same} of {n} texts identical to those without it (a stop "
        f"on a normal sample would change its text). Planted: the same prompts greedy with repetition penalty "
        f"0.3, which makes the tiny teacher loop; loops that wander (not exact repeats) are not stopped and "
        f"run to max_tokens, for the repetition filter to reject afterwards.\n"
    )
