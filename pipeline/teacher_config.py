"""The ``teacher`` section of a job config: the model, its dialect, replicas and their starts,
vLLM's engine arguments, Ray resources per replica.

Part of ``pipeline.config`` (which re-exports these names); apart only to keep each file short.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .modes import SAMPLES, SPEED, Strict


class EngineConfig(Strict):
    """vLLM engine arguments (one engine per replica)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", json_schema_extra=SAMPLES)
    max_model_len: int = Field(default=4096, gt=0, json_schema_extra=SAMPLES)
    """Context window in tokens (prompt + completion). Longer prompts go to errors/."""
    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs per replica. On CPU must be 1."""
    max_num_seqs: int = Field(default=64, ge=1)
    """Sequences decoded at once in one engine."""
    kv_cache_gib: float | None = Field(default=None, gt=0)
    """KV cache per engine in GiB. ``null`` = vLLM's default (a fraction of GPU memory). On CPU
    set it: otherwise vLLM reserves 92% of the memory node and a second engine cannot start. It
    wins over the environment's ``VLLM_CPU_KVCACHE_SPACE`` (which vLLM would let override it)."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Fraction of accelerator memory vLLM may use (ignored when ``kv_cache_gib`` is set on CPU)."""
    enforce_eager: bool = False
    """Skip CUDA-graph capture / compilation (faster start, slower decode)."""
    chunked_prefill: bool | None = None
    """Split long prefills across engine steps. ``null`` = off on device ``cpu`` (vLLM 0.32's CPU
    build kills the engine with "CPU Generator does not use offset" when a seeded request's
    prefill is split), vLLM's default on ``gpu``."""
    enable_prefix_caching: bool = True
    trust_remote_code: bool = Field(False, json_schema_extra=SAMPLES)
    """Run model code from the checkpoint. Off unless you trust the checkpoint."""
    seed: int = Field(0, json_schema_extra=SAMPLES)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("WARNING", json_schema_extra=SPEED)
    """vLLM's log level inside the replicas (``VLLM_LOGGING_LEVEL``); INFO shows engine start-up."""
    extra: dict[str, Any] = Field(default_factory=dict, json_schema_extra=SAMPLES)
    """Further ``vllm.LLM`` keyword arguments, passed through unchanged."""


class ResourcesConfig(Strict):
    """Ray resources per replica. ``null`` = derived: GPU engines take ``tensor_parallel_size``
    GPUs and 1 CPU; CPU engines take ``num_cpus`` = 1."""

    num_cpus: float | None = Field(default=None, gt=0)
    num_gpus: float | None = Field(default=None, ge=0)
    custom: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict, json_schema_extra=SPEED)
    """Ray custom resources each replica takes, e.g. ``{teacher_slot: 1}`` to keep replicas on the
    nodes started with ``ray start --resources='{"teacher_slot": 1}'`` (one each there). Ray's own
    resources are ``num_cpus`` / ``num_gpus``, not here."""

    @field_validator("custom")
    @classmethod
    def _custom_names(cls, v: dict[str, float]) -> dict[str, float]:
        own = sorted(k for k in v if k in ("CPU", "GPU", "memory", "object_store_memory") or not k.strip())
        if own:
            raise ValueError(f"{own} are not custom resources (use num_cpus / num_gpus; Ray sets memory itself)")
        return v


def check_dialect(name: str) -> str:
    from .dialects import dialect_names

    if name not in dialect_names():
        raise ValueError(f"dialect must be one of {dialect_names()}, got {name!r}")
    return name


class TeacherConfig(Strict):
    model: str = Field(json_schema_extra=SAMPLES)
    """Model path (local folder). Nothing is downloaded at run time."""
    dialect: str = Field("qwen3", json_schema_extra=SAMPLES)
    """How the teacher is rendered and parsed: ``qwen3``, ``r1``, ``gpt-oss`` (harmony)."""
    device: Literal["cpu", "gpu"] = "gpu"
    replicas: int = Field(default=1, ge=1, json_schema_extra=SPEED)
    """Number of engine replicas (Ray actors), each one vLLM engine."""
    min_replicas: int = Field(default=1, ge=1, json_schema_extra=SPEED)
    """Replicas whose engines must be up for the job to generate (at most ``replicas``). A start
    that fails is retried with backoff while the job runs (a replica that comes up later joins);
    fewer than this many up ``start_timeout_s`` after the job started fails the job with the
    engines' errors (exit 6)."""
    start_timeout_s: float = Field(default=1800, gt=0, json_schema_extra=SPEED)
    """Seconds one engine start may take (model load, warm-up) before it counts as failed, and
    after which the job fails if fewer than ``min_replicas`` engines are up."""
    max_in_flight: int | None = Field(default=None, ge=1, json_schema_extra=SPEED)
    """Requests one replica holds at once (running in its engine or queued there). Default: the
    engine's batch (``engine.max_num_seqs``) and a quarter more, so a finished request is
    replaced at once while few wait behind a busy engine; the rest of the work waits in the
    pipeline's shared queue, where whichever replica frees a slot takes it."""
    request_timeout_s: float | None = Field(default=None, gt=0, json_schema_extra=SPEED)
    """Wall-clock bound per request (a whole sample: every turn and budget stage), seconds; an
    overrun is aborted in the engine and becomes an error row ``request_timeout`` (redone on
    resume). ``null`` = no bound."""
    isolate_cores: bool = Field(False, json_schema_extra=SPEED)
    """Device ``cpu`` only: once a replica's engine is up, move the job's other processes on its
    node (everything under the raylet, and an embedded Ray's driver) off the cores vLLM bound the
    engine's workers to (``pipeline.cores``). For a node given to the job alone: the rest of the
    job keeps fewer cores (on 2 cores, one), and Ray's worker processes keep the narrowed mask
    while their Ray lives. Off by default."""
    max_replica_restarts: int = Field(default=3, ge=0, json_schema_extra=SPEED)
    """Times Ray restarts one replica whose engine died before the job gives up on it (Ray
    Data's default is unlimited, which can retry a crashing engine all night)."""
    engine: EngineConfig = EngineConfig()
    resources: ResourcesConfig = Field(ResourcesConfig(), json_schema_extra=SPEED)
    check_path: bool = Field(True, json_schema_extra=SPEED)
    """Check before starting that ``model`` is a model folder this machine sees (``config.json``
    and a tokenizer), so a wrong path fails at once (exit 2). Off for clusters where only the
    GPU nodes mount the models."""
    name: str | None = None
    """What the ``teacher`` column and the summary call the model (``Qwen/Qwen3-32B``). Default:
    ``model``, made absolute when it is a relative local path."""

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, name: str) -> str:
        return check_dialect(name)

    @property
    def label(self) -> str:
        """``name``, or ``model`` as an absolute path or URL: never a path relative to wherever the
        job happened to run."""
        import os

        if self.name:
            return self.name
        return self.model if "://" in self.model or os.path.isabs(self.model) else os.path.abspath(self.model)

    @property
    def in_flight(self) -> int:
        """``max_in_flight``, resolved."""
        n = self.engine.max_num_seqs
        return self.max_in_flight or n + max(2, n // 4)

    @model_validator(mode="after")
    def _device_fits(self) -> TeacherConfig:
        if self.isolate_cores and self.device != "cpu":
            raise ValueError(
                f"isolate_cores applies to device 'cpu' only (vLLM binds no cores on a GPU), got device {self.device!r}"
            )
        if self.min_replicas > self.replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is more than replicas ({self.replicas})")
        if self.device == "cpu" and self.engine.tensor_parallel_size != 1:
            raise ValueError(
                f"engine.tensor_parallel_size must be 1 on device 'cpu', got {self.engine.tensor_parallel_size}"
            )
        return self


# ----------------------------------------------------------------------- output
