"""The generation job's plan: what a config will do, known before anything starts.

``make_plan`` checks what can be checked on the driver (the input resolves, evaluation files
exist) and counts the input rows; ``describe`` is ``--dry-run``'s text, its stage line read
from the same stage list the job runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import filters

from ..cluster import embedded_ray_cpus
from ..config import JobConfig
from ..dialects import get_dialect
from ..loading import ConfigError
from ..read import InputError, InputFiles, resolve_input
from ..samples import samples_per_input
from ..stages import GENERATION, Context
from ..stages import describe as describe_stages


@dataclass(frozen=True)
class RunPlan:
    files: InputFiles
    inputs: int  # rows that will be read (after input.limit)
    samples_per_input: int
    replica_resources: dict
    batches_per_replica: int  # generate tasks one replica holds at once
    rows_per_batch: int  # rows in one generate task: the unit of work a replica takes
    run_url: str
    ray_cpus: int | None  # logical CPUs of the embedded Ray; None when joining a cluster
    placement: dict | None = None  # a replica's placement group (TP > 1 on GPU, ``placement``), or None

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
                head = f.read(1 << 16).removeprefix(b"\xef\xbb\xbf")
                if path.lower().endswith((".json", ".json.gz", ".json.zst")) and head.lstrip()[:1] == b"[":
                    n += json_array_rows(head + f.read())
                    continue
            with fs.open(path, "rb", compression="infer") as f:
                n += sum(1 for line in f if line.strip())
    return n


def json_array_rows(data: bytes) -> int:
    """Rows the reader makes of a ``.json`` file holding an array: its elements, or 1 bad row."""
    import json

    try:
        items = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return 1
    return len(items) if isinstance(items, list) else 1


def placement(cfg: JobConfig) -> dict | None:
    """The placement group one replica gets when its engine spans GPUs (tensor parallelism > 1 on
    GPU): one bundle per TP worker, packed onto as few nodes as possible, as ray.data.llm builds
    it; vLLM's Ray executor then starts one worker per bundle inside it, and the replica actor
    itself takes the first bundle's CPU. ``None``: the replica's own resources
    (``replica_resources``) are enough. Written from Ray's and ray.data.llm's documented
    behaviour; not run on a GPU here.

    >>> from pipeline.config import JobConfig
    >>> tp = lambda n: JobConfig.model_validate({"input": {"path": "p"}, "teacher": {"model": "m",
    ...     "engine": {"tensor_parallel_size": n}}})
    >>> placement(tp(1)), placement(tp(2))["bundles"]
    (None, [{'CPU': 1, 'GPU': 1}, {'CPU': 1, 'GPU': 1}])
    """
    t = cfg.teacher
    n = t.engine.tensor_parallel_size
    if t.device != "gpu" or n == 1:
        return None
    # the replica actor takes the first bundle: its custom resources (teacher.resources.custom) go there
    return {
        "bundles": [{"CPU": 1, "GPU": 1, **(t.resources.custom if i == 0 else {})} for i in range(n)],
        "strategy": "PACK",
    }


def replica_resources(cfg: JobConfig) -> dict:
    """What one replica actor reserves: ``num_cpus``, ``num_gpus`` and any custom resources by name.

    >>> from pipeline.config import JobConfig
    >>> replica_resources(JobConfig.model_validate({"input": {"path": "p"}, "teacher": {"model": "m",
    ...     "device": "cpu", "resources": {"custom": {"teacher_slot": 1}}}}))
    {'num_cpus': 1, 'num_gpus': 0, 'teacher_slot': 1.0}
    """
    t = cfg.teacher
    if t.device == "gpu":
        own = {
            "num_cpus": t.resources.num_cpus or 1,
            "num_gpus": t.resources.num_gpus if t.resources.num_gpus is not None else t.engine.tensor_parallel_size,
        }
    else:
        own = {"num_cpus": t.resources.num_cpus or 1, "num_gpus": 0}
    return {**own, **t.resources.custom}


def work_units(in_flight: int, batch_size: int, share: int | None = None) -> tuple[int, int]:
    """How work reaches a replica: (rows per generate task, tasks one replica holds).

    A replica takes small tasks from the pipeline's one shared queue. Small, because a task is
    done only when its slowest request is: a long trace then holds back a few finished rows, not
    a replica's share, and at the end of a run the last requests go to whichever replica is free.
    It holds tasks for four times ``in_flight`` requests (its semaphore lets ``in_flight`` into
    the engine), because most held tasks are only waiting on their one slowest request. Modelled
    at 64 replicas and 1M long-tailed requests (``bench/dispatch.py``, docs/bench.md): 0.95
    of the engine slots busy, level with a per-request router. Tasks for twice ``in_flight``
    give 0.79, and for once 0.45. But never more than a quarter of a replica's ``share`` of the
    run's requests (and never less than fills its engine): in a small run the first replica up
    would otherwise take much of the run before the others have started, and end last. Where
    that cap holds fewer rows, they come in smaller tasks (down to half the rows), so that about
    32 are still held: the long-tail bench gave 0.67x bare vLLM with 16 tasks of 8 rows held,
    0.88x with 34 of 4 (docs/bench.md).

    >>> work_units(80, 32), work_units(32, 8), work_units(4, 32), work_units(64, 64, share=512)
    ((10, 34), (4, 34), (1, 18), (4, 34))
    >>> work_units(32, 8, share=100)  # a small run: held for in_flight, not shrunk
    (4, 10)
    """
    rows = max(1, min(batch_size, in_flight // 8))
    held_rows = 4 * in_flight
    if share is not None and share / 4 < held_rows:
        held_rows = max(in_flight, math.ceil(share / 4))
        if held_rows > in_flight:
            rows = max(1, rows // 2, min(rows, held_rows // 32))
    return rows, math.ceil(held_rows / rows) + 2


def check_filter_files(cfg) -> None:
    """Files the configured filters read (evaluation sets) must exist before a worker loads them."""
    try:
        filters.preflight(cfg)
    except FileNotFoundError as e:
        raise InputError(str(e)) from None


def resource_needs(cfg: JobConfig, p: RunPlan) -> tuple[dict, str]:
    """The least the pipeline's pools reserve at once: every replica, one worker per CPU stage,
    one CPU for reads and writes."""
    from ..stages import CPU_STAGE_CPUS, GENERATION, Context, stages_for

    cpu_stages = [s for s in stages_for(GENERATION, Context(cfg, p)) if s.pool != "replicas"]
    r = p.replica_resources
    n = cfg.teacher.replicas
    cpus = n * r["num_cpus"] + len(cpu_stages) * CPU_STAGE_CPUS + 1
    custom = {k: v for k, v in r.items() if k not in ("num_cpus", "num_gpus")}
    what = (
        f"{n} replica(s) x {r['num_cpus']:g} CPU, {r['num_gpus']:g} GPU"
        + "".join(f", {v:g} {k}" for k, v in custom.items())
        + " (teacher.resources) + "
        f"{len(cpu_stages)} CPU stage worker(s) + 1 for reads and writes"
    )
    return {"CPU": cpus, "GPU": n * r["num_gpus"], **{k: n * v for k, v in custom.items()}}, what


def check_teacher(teacher) -> None:
    """The teacher's folder must be there before engines start on it (nothing is downloaded)."""
    import fsspec

    if not teacher.check_path:
        return
    fs, root = fsspec.core.url_to_fs(teacher.model)
    root = root.rstrip("/")
    missing = [name for name in ("config.json",) if not fs.exists(f"{root}/{name}")]
    if not any(fs.exists(f"{root}/{name}") for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        missing.append("tokenizer.json / tokenizer_config.json")
    if missing:
        what = "nothing" if not fs.exists(root) else f"no {', '.join(missing)}"
        raise InputError(
            f"teacher.model: {what} at {teacher.model!r}; expected a model folder (config.json and a "
            f"tokenizer); nothing is downloaded at run time (teacher.check_path: false skips this check "
            f"where only the GPU nodes see the folder)"
        )


def check_output_path(path: str, joining_cluster: bool) -> None:
    """A relative output path is refused when the job joins a cluster: it would resolve on the
    driver's node (under ``ray job submit``, inside the unpacked working directory, deleted with
    it), not where the user or the trainers look."""
    if joining_cluster and "://" not in path and not path.startswith("/"):
        raise ConfigError(
            f"output.path: {path!r} is relative, and this job joins a Ray cluster (ray.address or "
            f"RAY_ADDRESS is set): it would be written on whichever node runs the driver - under "
            f"ray job submit inside its working-dir package, which is deleted with it. Give an absolute "
            f"path on storage every node sees, or a URL (s3://..., gs://...)"
        )


def make_plan(cfg: JobConfig) -> RunPlan:
    from ..storage import apply

    apply(cfg.storage_options)  # before the first file is looked at
    check_filter_files(cfg.filters)
    files = resolve_input(cfg.input.path, cfg.input.format)
    inputs = count_rows(files)
    if cfg.input.limit is not None:
        inputs = min(inputs, cfg.input.limit)
    res = replica_resources(cfg)
    share = math.ceil(inputs * samples_per_input(cfg.generation) / cfg.teacher.replicas)  # requests per replica
    rows, batches = work_units(cfg.teacher.in_flight, cfg.ray.batch_size, share)
    ray_cpus = embedded_ray_cpus(cfg.ray, cfg.teacher.replicas * res["num_cpus"])
    check_output_path(cfg.output.path, joining_cluster=ray_cpus is None)
    return RunPlan(
        files,
        inputs,
        samples_per_input(cfg.generation),
        res,
        batches,
        rows,
        f"{cfg.output.path.rstrip('/')}/{cfg.output.run_id}",
        ray_cpus,
        placement(cfg),
    )


def describe(cfg: JobConfig, p: RunPlan) -> str:
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
        if m.forces_thinking:
            least = ", ".join("none" if b is None else str(b) for b in m.min_thinkings)
            bits.append(f"min thinking {least} (s1: {m.continuation!r} up to {m.max_extensions}x)")
        if m.reasoning_effort is not None:
            bits.append(f"reasoning effort {', '.join(m.efforts)}")
        bits.append(f"T={s['temperature']} top_p={s['top_p']} top_k={s['top_k']} max_tokens={s['max_tokens']}")
        modes.append(f"    {m.name}: {', '.join(bits)}")
    g = cfg.generation
    if g.mix:
        total = sum(g.mix.values())
        modes.append("    mix: each prompt in one mode, " + ", ".join(f"{k} {w / total:.0%}" for k, w in g.mix.items()))
    if g.adaptive:
        a = g.adaptive
        modes.append(
            f"    adaptive ({a.rule}): {g.samples_per_prompt} samples in {a.think_mode} and {a.no_think_mode}"
            f" per prompt; no-think chosen when acc_no_think + {a.delta} >= acc_think"
        )
    if g.accepted_per_prompt:
        from ..rounds import cuts

        c = cuts(g.accepted_per_prompt, g.samples_per_prompt)
        modes.append(
            f"    until verified: a prompt (per mode and budget) stops at {g.accepted_per_prompt} accepted; "
            f"samples made in {len(c)} round(s), up to {', '.join(map(str, c))} (each round one pass "
            f"of the input; the engines start again for each)"
        )
    ray = f"embedded local Ray ({p.ray_cpus} logical CPUs)" if p.ray_cpus else (cfg.ray.address or "$RAY_ADDRESS")
    pg = p.placement
    place = (
        f"{cfg.teacher.replicas} replica(s), each a placement group of {len(pg['bundles'])} bundles "
        f"{pg['bundles'][0]} ({pg['strategy']}); vLLM's Ray executor, one TP worker per bundle"
        if pg
        else f"{cfg.teacher.replicas} replica(s), each an actor with "
        + ", ".join(f"{k}={v:g}" for k, v in p.replica_resources.items())
    )
    return "\n".join(
        [
            f"input     {p.files.format}, {len(p.files.paths)} file(s) at {cfg.input.path} -> {p.inputs} prompts"
            + (f" (limit {cfg.input.limit})" if cfg.input.limit else ""),
            f"samples   {'1 mixed mode' if g.mix else f'{len(g.modes)} mode(s)'} x "
            f"{g.samples_per_prompt} per prompt = {p.samples_per_input} per prompt -> {p.expected_samples} expected"
            + (" at most" if g.accepted_per_prompt else ""),
            "modes",
            *modes,
            f"stages    {describe_stages(GENERATION, Context(cfg, p))}",
            f"teacher   {cfg.teacher.model} (dialect {cfg.teacher.dialect}, device {cfg.teacher.device}, "
            f"TP {cfg.teacher.engine.tensor_parallel_size})",
            f"output    {p.run_url}/{{accepted,rejected,errors}}/ + summary.json",
            f"placement {place}",
            f"ray       {ray}",
        ]
    )
