"""The generation job: read -> prepare -> generate -> parse -> write, one streaming Ray Data pipeline.

``plan`` describes what a config will do without starting anything (``--dry-run``); ``run``
does it and returns the summary that is also written as ``<output>/<run_id>/summary.json``.
The summary is written last, so its existence means the run completed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from .config import JobConfig
from .dialects import get_dialect
from .prepare import samples_per_input
from .read import InputError, InputFiles, resolve_input

#: Logical CPUs per CPU-stage worker (prepare, parse). Their work per row is small.
CPU_STAGE_CPUS = 1


class OutputError(ValueError):
    """The output location cannot be used (a previous run is there and overwrite is off)."""


@dataclass(frozen=True)
class Plan:
    files: InputFiles
    inputs: int            # rows that will be read (after input.limit)
    samples_per_input: int
    replica_resources: dict
    batches_per_replica: int
    run_url: str
    ray_cpus: int | None   # logical CPUs of the embedded Ray; None when joining a cluster

    @property
    def expected_samples(self) -> int:
        return self.inputs * self.samples_per_input


def count_rows(files: InputFiles) -> int:
    """Input rows, counted straight from the files (independently of the Ray pipeline)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    fs = files.filesystem
    for path in files.paths:
        if files.format == "parquet":
            with fs.open(path, "rb") as f:
                n += pq.ParquetFile(f).metadata.num_rows
        elif files.format == "hf_saved":
            with fs.open(path, "rb") as f:
                n += sum(b.num_rows for b in pa.ipc.open_stream(f))
        else:
            with fs.open(path, "rb", compression="infer") as f:
                n += sum(1 for line in f if line.strip())
    return n


def replica_resources(cfg: JobConfig) -> dict:
    t = cfg.teacher
    if t.device == "gpu":
        return {"num_cpus": t.resources.num_cpus or 1,
                "num_gpus": t.resources.num_gpus if t.resources.num_gpus is not None else t.engine.tensor_parallel_size}
    return {"num_cpus": t.resources.num_cpus or 1, "num_gpus": 0}


def check_filter_files(filters) -> None:
    """Evaluation sets named in the config must exist before any worker tries to load them."""
    import fsspec

    if "contamination" not in filters.order:
        return
    for i, path in enumerate(filters.contamination.eval_files):
        fs, root = fsspec.core.url_to_fs(path)
        if not fs.exists(root):
            raise InputError(f"filters.contamination.eval_files.{i}: nothing at {path!r}")


def make_plan(cfg: JobConfig) -> Plan:
    check_filter_files(cfg.filters)
    files = resolve_input(cfg.input.path, cfg.input.format)
    inputs = count_rows(files)
    if cfg.input.limit is not None:
        inputs = min(inputs, cfg.input.limit)
    res = replica_resources(cfg)
    # Enough batches per replica that max_in_flight requests are always waiting to enter the engine.
    batches = max(2, math.ceil(2 * cfg.teacher.max_in_flight / cfg.ray.batch_size))
    ray_cpus = embedded_ray_cpus(cfg.ray, cfg.teacher.replicas * res["num_cpus"])
    return Plan(files, inputs, samples_per_input(cfg), res, batches,
                f"{cfg.output.path.rstrip('/')}/{cfg.output.run_id}", ray_cpus)


def embedded_ray_cpus(ray_cfg, replica_cpus: float = 0) -> int | None:
    """Logical CPUs for an embedded Ray, or None when the job joins a cluster (``ray.address``, or
    the one ``ray job submit`` runs it in): enough for the replicas, the CPU stages, reads, writes."""
    if ray_cfg.address or os.environ.get("RAY_ADDRESS"):
        return None
    needed = replica_cpus + 2 * ray_cfg.cpu_stage_actors * CPU_STAGE_CPUS + 2
    return ray_cfg.num_cpus or max(os.cpu_count() or 1, math.ceil(needed))


def cpu_stage_args(ray_cfg) -> dict:
    """``map_batches`` arguments of a CPU stage (prepare, parse, filter): a small autoscaling pool."""
    import ray.data

    return dict(compute=ray.data.ActorPoolStrategy(min_size=1, max_size=ray_cfg.cpu_stage_actors),
                num_cpus=CPU_STAGE_CPUS, batch_format="pyarrow", batch_size=ray_cfg.batch_size)


def describe(cfg: JobConfig, p: Plan) -> str:
    modes = []
    dialect = get_dialect(cfg.teacher.dialect)
    for m in cfg.generation.modes:
        s = dialect.sampling(m)
        bits = ["thinking" if m.thinking else "no thinking"]
        if m.flag:
            share = "" if m.flag_share == 1 else f" on {m.flag_share:.0%} of samples"
            bits.append(f"flag {m.flag} in {m.flag_turn} turn{share}")
        if m.turns > 1:
            bits.append(f"{m.turns} turns")
        if any(b is not None for b in m.budgets):
            sweep = ", ".join("none" if b is None else str(b) for b in m.budgets)
            bits.append(f"budget {sweep} ({m.budget_strategy})")
        else:
            bits.append("no budget")
        bits.append(f"T={s['temperature']} top_p={s['top_p']} top_k={s['top_k']} max_tokens={s['max_tokens']}")
        modes.append(f"    {m.name}: {', '.join(bits)}")
    g = cfg.generation
    if g.mix:
        total = sum(g.mix.values())
        modes.append("    mix: each prompt in one mode, " + ", ".join(f"{k} {w / total:.0%}" for k, w in g.mix.items()))
    if g.adaptive:
        a = g.adaptive
        modes.append(f"    adaptive ({a.rule}): {g.samples_per_prompt} samples in {a.think_mode} and {a.no_think_mode}"
                     f" per prompt; no-think chosen when acc_no_think + {a.delta} >= acc_think")
    res = ", ".join(f"{k}={v}" for k, v in p.replica_resources.items())
    ray = f"embedded local Ray ({p.ray_cpus} logical CPUs)" if p.ray_cpus else (cfg.ray.address or "$RAY_ADDRESS")
    return "\n".join([
        f"input     {p.files.format}, {len(p.files.paths)} file(s) at {cfg.input.path} -> {p.inputs} prompts"
        + (f" (limit {cfg.input.limit})" if cfg.input.limit else ""),
        f"samples   {'1 mixed mode' if cfg.generation.mix else f'{len(cfg.generation.modes)} mode(s)'} x "
        f"{cfg.generation.samples_per_prompt} per prompt = {p.samples_per_input} per prompt -> {p.expected_samples} expected",
        "modes", *modes,
        "stages    read -> prepare (render, tokenize; <= {a} CPU workers) -> generate ({r} replica(s), each one"
        " vLLM engine, {res}; {f} requests in flight, {b} batches of {bs}) -> parse -> filter ({flt})"
        "{sel} -> write"
        .format(a=cfg.ray.cpu_stage_actors, r=cfg.teacher.replicas, res=res, f=cfg.teacher.max_in_flight,
                b=p.batches_per_replica, bs=cfg.ray.batch_size, flt=", ".join(cfg.filters.order) or "none",
                sel=" -> select (adaptive mode choice, one worker)" if cfg.generation.adaptive else ""),
        f"teacher   {cfg.teacher.model} (dialect {cfg.teacher.dialect}, device {cfg.teacher.device}, "
        f"TP {cfg.teacher.engine.tensor_parallel_size})",
        f"output    {p.run_url}/{{accepted,rejected,errors}}/ + summary.json",
        f"ray       {ray}",
    ])


def prepare_output(run_url: str, overwrite: bool) -> None:
    import fsspec

    fs, root = fsspec.core.url_to_fs(run_url)
    if fs.exists(root) and fs.ls(root):
        if not overwrite:
            raise OutputError(f"output: {run_url} already holds a run; choose another output.run_id "
                              f"or set output.overwrite=true")
        fs.rm(root, recursive=True)


def init_ray(address: str, embedded_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if embedded_cpus is None:  # a cluster: given address, or the one `ray job submit` runs us in
        ray.init(address=address or None)
    else:
        ray.init(num_cpus=embedded_cpus, include_dashboard=False)


class Pipeline(NamedTuple):
    write: Callable[[], None]   # runs the whole pipeline into the sink
    adaptive_report: Any        # the AdaptiveReport actor when the mode is chosen adaptively


def build(cfg: JobConfig, p: Plan, sink) -> Pipeline:
    """The pipeline as a lazy Ray dataset ending in ``sink``'s write."""
    import ray
    import ray.data

    from .judge import FilterStage
    from .parse import Parse
    from .prepare import IdLedger, Prepare
    from .read import read_input
    from .select import AdaptiveReport, Select
    from .teacher import TeacherReplica

    ledger = ray.remote(IdLedger).options(num_cpus=0).remote()

    k = p.batches_per_replica
    ds = read_input(p.files, cfg.input.limit)
    ds = ds.map_batches(Prepare, fn_constructor_kwargs={"cfg": cfg, "ledger": ledger}, **cpu_stage_args(cfg.ray))
    ds = ds.map_batches(
        TeacherReplica, fn_constructor_kwargs={"cfg": cfg}, batch_format="pyarrow", batch_size=cfg.ray.batch_size,
        compute=ray.data.ActorPoolStrategy(size=cfg.teacher.replicas, max_tasks_in_flight_per_actor=k,
                                           max_concurrent_calls_per_actor=k),
        runtime_env={"env_vars": {"VLLM_LOGGING_LEVEL": cfg.teacher.engine.log_level}},
        **p.replica_resources)
    ds = ds.map_batches(Parse, fn_constructor_kwargs={"cfg": cfg}, **cpu_stage_args(cfg.ray))
    ds = ds.map_batches(FilterStage, fn_constructor_kwargs={"filters": cfg.filters, "dialect": cfg.teacher.dialect},
                        **cpu_stage_args(cfg.ray))
    report = None
    if cfg.generation.adaptive:
        # one worker sees every row, so each prompt's group comes together there
        report = ray.remote(AdaptiveReport).options(num_cpus=0).remote()
        ds = ds.map_batches(Select, fn_constructor_kwargs={"cfg": cfg, "report": report},
                            **{**cpu_stage_args(cfg.ray), "compute": ray.data.ActorPoolStrategy(size=1)})
    return Pipeline(lambda: ds.write_datasink(sink), report)


def run(cfg: JobConfig, p: Plan | None = None) -> dict:
    """Run the job; returns the summary (also written to ``summary.json``)."""
    from .write import SplitParquetSink

    p = p or make_plan(cfg)
    prepare_output(p.run_url, cfg.output.overwrite)
    init_ray(cfg.ray.address, p.ray_cpus)
    sink = SplitParquetSink(p.run_url, cfg.output.rows_per_file)
    started = time.time()
    pipeline = build(cfg, p, sink)
    pipeline.write()
    wall = time.time() - started
    summary = make_summary(cfg, p, sink.tally, wall)
    if any(len(m.budgets) > 1 for m in cfg.generation.modes):  # a sweep: plot it beside the data
        _write_plot(p.run_url, summary)
    if pipeline.adaptive_report is not None:
        import ray

        summary["adaptive"] = adaptive_summary(cfg, ray.get(pipeline.adaptive_report.result.remote()), p.run_url)
    _finish_output(p.run_url, summary)
    return summary


def _write_plot(run_url: str, summary: dict) -> None:
    import fsspec

    from .report import plot_png

    fs, root = fsspec.core.url_to_fs(run_url)
    with fs.open(f"{root}/budget_report.png", "wb") as f:
        f.write(plot_png(summary["budget_report"], f"thinking budget sweep: {summary['teacher']}"))
    summary["budget_plot"] = f"{run_url}/budget_report.png"


def adaptive_summary(cfg: JobConfig, result: dict, run_url: str) -> dict:
    """The adaptive choice in summary.json; the unsolved prompts go to ``unsolved.jsonl``."""
    import fsspec

    a = cfg.generation.adaptive
    c = result["counts"]

    def share(d: dict) -> float | None:
        decided = d.get("think", 0) + d.get("no_think", 0)
        return round(d.get("no_think", 0) / decided, 4) if decided else None

    fs, root = fsspec.core.url_to_fs(run_url)
    with fs.open(f"{root}/unsolved.jsonl", "w") as f:
        for item in sorted(result["unsolved"], key=lambda u: u["prompt_id"]):
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    return {
        "rule": a.rule, "delta": a.delta, "k": cfg.generation.samples_per_prompt,
        "think_mode": a.think_mode, "no_think_mode": a.no_think_mode,
        "prompts": c.get("prompts", 0),
        **{f"chose_{k}": c.get(k, 0) for k in ("think", "no_think")},
        "dropped": c.get("dropped", 0), "unverified": c.get("unverified", 0), "no_samples": c.get("no_samples", 0),
        "unsolved": c.get("unsolved", 0), "unsolved_file": f"{run_url}/unsolved.jsonl",
        # among the prompts where the rule chose (unsolved, unverified, dropped ones aside)
        "no_think_share": share(c),
        "by_source": {src: {"prompts": d.get("prompts", 0), "chose_no_think": d.get("no_think", 0),
                            "no_think_share": share(d), "unsolved": d.get("unsolved", 0)}
                      for src, d in sorted(result["by_source"].items())},
    }


def fusion_summary(t: dict) -> dict:
    """What the fused set is made of: written samples per mode and per flag (and where it sits),
    with shares of the accepted ones; multi-turn turns by flag and whether they followed it."""
    accepted: dict[str, int] = {}
    flags: dict[str, dict] = {}
    for key, n in t["flags"].items():
        mode, flag, turn, status = key.split("|")
        name = flag if flag == "none" else f"{flag} in {turn}"
        flags.setdefault(name, {}).setdefault(status, 0)
        flags[name][status] += n
        if status == "accepted":
            accepted[mode] = accepted.get(mode, 0) + n
    total = sum(accepted.values())
    n_acc = sum(d.get("accepted", 0) for d in flags.values())
    return {
        "accepted_by_mode": {m: {"samples": n, "share": round(n / total, 4)} for m, n in sorted(accepted.items())},
        "flags": {f: {**d, "accepted_share": round(d.get("accepted", 0) / n_acc, 4) if n_acc else None}
                  for f, d in sorted(flags.items())},
        "turns": dict(sorted(t["turns"].items())),
    }


def _by_status(counter, split) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, n in sorted(counter.items()):
        group, _, status = split(key)
        out.setdefault(group, {})[status] = n
    return out


def count_summary(tally: dict | None, inputs: int, per_input: int, filter_order: list[str]) -> dict:
    """The accounting part of a summary (shared by the generation and the filter jobs)."""
    from .write import merge_tallies

    t = tally or merge_tallies([])
    accepted, rejected, errors = (t["status"].get(s, 0) for s in ("accepted", "rejected", "error"))
    expected = inputs * per_input
    filters: dict[str, dict] = {}
    for key, n in sorted(t["filters"].items()):
        name, _, rest = key.partition("/")
        f = filters.setdefault(name, {"passed": 0, "failed": 0, "skipped": 0, "reasons": {}})
        if rest.startswith("reason/"):
            f["reasons"][rest.removeprefix("reason/")] = n
        else:
            f[rest] = n
    return {
        "inputs": inputs, "samples_per_input": per_input, "expected_samples": expected,
        "accepted": accepted,
        "rejected": {"total": rejected, "by_reason": dict(sorted(t["rejected"].items()))},
        "errors": {"total": errors, "by_reason": dict(sorted(t["errors"].items()))},
        "accounted": accepted + rejected + errors == expected, "missing": expected - (accepted + rejected + errors),
        "by_mode": _by_status(t["by_mode"], lambda k: k.rpartition("/")),
        "by_source": _by_status(t["by_source"], lambda k: k.rpartition("/")),
        "filters": {name: filters[name] for name in filter_order if name in filters},
        "files": t.get("files", 0),
    }


def make_summary(cfg: JobConfig, p: Plan, tally: dict | None, wall_s: float) -> dict:
    from .report import budget_rows
    from .write import merge_tallies

    t = tally or merge_tallies([])
    window = (t["t_last"] - t["t_first"]) if t["t_first"] is not None and t["t_last"] is not None else None
    tokens = {k.removesuffix("_tokens"): int(t["tokens"].get(k, 0))
              for k in ("prompt_tokens", "thinking_tokens", "answer_tokens", "completion_tokens")}
    return {
        "run_id": cfg.output.run_id, "output": p.run_url, "teacher": cfg.teacher.model,
        "dialect": cfg.teacher.dialect, "replicas": cfg.teacher.replicas,
        **count_summary(t, p.inputs, p.samples_per_input, cfg.filters.order),
        "budget_hit": t["budget_hit"],
        "budget_report": budget_rows(t["budgets"]),
        **({"fusion": fusion_summary(t)} if _fuses(cfg) else {}),
        "tokens": tokens, "wall_s": round(wall_s, 2),
        "completion_tokens_per_s": round(tokens["completion"] / wall_s, 1) if wall_s > 0 else None,
        # first request into an engine -> last token out: generation without start-up
        "engine_window_s": round(window, 2) if window else None,
        "engine_window_tokens_per_s": round(tokens["completion"] / window, 1) if window else None,
        # the sum over replicas of each one's tokens / its own busy window: how fast the engines
        # generate while they have work, independent of when each finished starting up
        "replica_tokens_per_s": round(sum(n / (b - a) for a, b, n in t["replicas"].values() if b > a), 1)
        if t["replicas"] else None,
        "replicas_seen": len(t["replicas"]),
    }


def _fuses(cfg: JobConfig) -> bool:
    g = cfg.generation
    return bool(g.mix) or any(m.flag or m.turns > 1 for m in g.modes)


def _finish_output(run_url: str, summary: dict) -> None:
    import fsspec

    fs, root = fsspec.core.url_to_fs(run_url)
    if fs.exists(f"{root}/_tmp"):
        fs.rm(f"{root}/_tmp", recursive=True)
    with fs.open(f"{root}/.summary.json.tmp", "w") as f:
        json.dump(summary, f, indent=2)
    fs.mv(f"{root}/.summary.json.tmp", f"{root}/summary.json")


def format_summary(s: dict) -> str:
    def reasons(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in d["by_reason"].items()) or "none"

    tok = s["tokens"]
    lines = [
        f"run {s['run_id']} -> {s['output']}",
        f"  inputs    {s['inputs']} prompts x {s['samples_per_input']} = {s['expected_samples']} samples",
        f"  accepted  {s['accepted']}",
        f"  rejected  {s['rejected']['total']} ({reasons(s['rejected'])})",
        f"  errors    {s['errors']['total']} ({reasons(s['errors'])})",
        f"  accounted {'yes' if s['accounted'] else 'NO - ' + str(s['missing']) + ' samples missing'}"
        f" (accepted + rejected + errors = {s['expected_samples'] - s['missing']})",
    ]
    for name, f in s.get("filters", {}).items():
        why = ", ".join(f"{k} {v}" for k, v in f["reasons"].items())
        lines.append(f"  filter {name}: passed {f['passed']}, failed {f['failed']}, skipped {f['skipped']}"
                     + (f" ({why})" if why else ""))
    for mode, counts in s["by_mode"].items():
        lines.append(f"  mode {mode}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if "fusion" in s:
        f = s["fusion"]
        lines.append("  fusion    accepted by mode: " + ", ".join(
            f"{m} {d['samples']} ({d['share']:.0%})" for m, d in f["accepted_by_mode"].items()))
        lines.append("            accepted by flag: " + ", ".join(
            f"{k} {d.get('accepted', 0)}" for k, d in f["flags"].items()))
        if f["turns"]:
            lines.append("            turns: " + ", ".join(f"{k} {n}" for k, n in f["turns"].items()))
    if "adaptive" in s:
        a = s["adaptive"]
        share = "n/a" if a["no_think_share"] is None else f"{a['no_think_share']:.0%}"
        lines.append(f"  adaptive  {a['prompts']} prompts ({a['rule']}, K={a['k']}, delta {a['delta']}): "
                     f"think {a['chose_think']}, no-think {a['chose_no_think']} ({share} of chosen), "
                     f"unsolved {a['unsolved']} -> {a['unsolved_file']}"
                     + (f", dropped {a['dropped']}" if a["dropped"] else "")
                     + (f", unverified {a['unverified']}" if a["unverified"] else ""))
        for src, d in a["by_source"].items():
            share = "n/a" if d["no_think_share"] is None else f"{d['no_think_share']:.0%}"
            lines.append(f"            {src}: {d['prompts']} prompts, no-think {d['chose_no_think']} ({share}), "
                         f"unsolved {d['unsolved']}")
    if any(r["budget"] is not None for r in s.get("budget_report", [])):
        from .report import format_table

        lines.append("  budget report")
        lines.append(format_table(s["budget_report"]))
    lines += [
        f"  tokens    prompt {tok['prompt']}, thinking {tok['thinking']}, answer {tok['answer']}, "
        f"generated {tok['completion']}; budget hit {s['budget_hit']}",
        f"  time      {s['wall_s']} s wall, {s['completion_tokens_per_s']} generated tokens/s; engines busy "
        f"{s['engine_window_s']} s, {s['engine_window_tokens_per_s']} tokens/s (start-up excluded)",
    ]
    return "\n".join(lines)
