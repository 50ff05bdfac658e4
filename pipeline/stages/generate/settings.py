"""A replica's settings: vLLM's engine arguments from the teacher section, the placement group of a
replica whose engine spans GPUs, and what each replica is built with (``GenerateSettings``)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import ModeConfig, TeacherConfig
from ...dialects import get_dialect

#: The replicas' CPU priority. Ray starts its workers at niceness 15, below the driver and Ray's
#: own processes; an engine's scheduling loop feeds the accelerator, so the replicas (and their
#: engine processes) run at the normal priority a bare vLLM server has, and the CPU stages
#: (parse, filters, writes) stay at 15 and yield to them.
REPLICA_NICENESS = 0


def engine_kwargs(teacher: TeacherConfig, modes: list[ModeConfig]) -> dict:
    """``vllm`` engine arguments for one replica, from the teacher section (and the modes: an
    engine-side budget needs the reasoning parser).

    >>> from pipeline.config import JobConfig
    >>> cfg = JobConfig.model_validate({"input": {"path": "p"}, "teacher": {"model": "m",
    ...     "engine": {"kv_cache_gib": 1}}})
    >>> kw = engine_kwargs(cfg.teacher, cfg.generation.modes)
    >>> kw["kv_cache_memory_bytes"], kw["trust_remote_code"], "reasoning_parser" in kw
    (1073741824, False, False)
    """
    t, e = teacher, teacher.engine
    kw = dict(
        model=t.model,
        dtype=e.dtype,
        max_model_len=e.max_model_len,
        tensor_parallel_size=e.tensor_parallel_size,
        max_num_seqs=e.max_num_seqs,
        seed=e.seed,
        enforce_eager=e.enforce_eager,
        enable_prefix_caching=e.enable_prefix_caching,
        trust_remote_code=e.trust_remote_code,
        gpu_memory_utilization=e.gpu_memory_utilization,
        disable_log_stats=True,
    )
    if e.kv_cache_gib is not None:
        kw["kv_cache_memory_bytes"] = int(e.kv_cache_gib * 2**30)
    if t.device == "gpu" and e.tensor_parallel_size > 1:  # workers in the replica's placement group
        kw["distributed_executor_backend"] = "ray"
    chunked = e.chunked_prefill if e.chunked_prefill is not None else (False if t.device == "cpu" else None)
    if chunked is not None:
        kw["enable_chunked_prefill"] = chunked
    if any(m.budget_strategy == "engine" and any(b is not None for b in m.budgets) for m in modes):
        dialect = get_dialect(t.dialect)
        kw["reasoning_parser"] = dialect.reasoning_parser
        kw["reasoning_end_str"] = dialect.budget_end_str()  # a ReasoningConfig in VllmEngine
    kw.update(e.extra)
    return kw


def placement_strategy(pg: dict) -> dict:
    """Ray Data calls this for each replica it starts (``ray_remote_args_fn``): a placement group
    of its own, which the engine's TP workers join (``capture_child_tasks``)."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = ray.util.placement_group(pg["bundles"], strategy=pg["strategy"])
    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(group, placement_group_capture_child_tasks=True)}


@dataclass(frozen=True)
class GenerateSettings:
    engine_args: dict  # ``engine_kwargs``: vLLM's arguments for one engine
    dialect: str
    modes: tuple  # the job's modes: multi-turn samples sample each turn as its mode
    max_in_flight: int
    max_model_len: int
    request_timeout_s: float | None = None
    deadline: float | None = None  # epoch seconds: requests not sent by then are left for a resume
    stop_loops: tuple[int, int, int] | None = None  # ``generation.stop_loops`` (min, max, repeats)
    logprobs: int | None = None  # ``output.logprobs.top_k``: the teacher's top-k per generated token
    isolate_cores: bool = False  # ``teacher.isolate_cores``: the job's other processes keep off a CPU engine's cores
    min_replicas: int = 1  # ``teacher.min_replicas``: a replica takes work once that many engines are up
    start_timeout_s: float = 1800.0  # ``teacher.start_timeout_s``: an engine start taking longer counts as failed
    run_id: str | None = None  # the live metrics' run tag (``pipeline.metrics``; None: not counted)

    @classmethod
    def of(cls, job, deadline: float | None = None) -> GenerateSettings:
        t, loops, lp = job.teacher, job.generation.stop_loops, job.output.logprobs
        args = engine_kwargs(t, job.generation.modes)
        if lp is not None and lp.top_k > 20:  # vLLM refuses more than max_logprobs (20 by default)
            args["max_logprobs"] = lp.top_k
        return cls(
            args,
            t.dialect,
            tuple(job.generation.modes),
            t.in_flight,
            t.engine.max_model_len,
            t.request_timeout_s,
            deadline,
            (loops.min_tokens, loops.max_tokens, loops.repeats) if loops else None,
            lp.top_k if lp is not None else None,
            t.isolate_cores,
            t.min_replicas,
            t.start_timeout_s,
            job.output.run_id,
        )
