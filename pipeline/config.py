"""Job configuration: strict pydantic models loaded from YAML.

Config flows one way: YAML -> ``JobConfig`` (validated here, at load time; ``pipeline.loading``
reads the file) -> each stage's own settings -> constructors. Unknown keys are errors; every
error names its key path (``teacher.engine.max_model_len``) and what was expected, before any
engine starts. The ``filters`` section is ``filters.FiltersConfig``, owned by the filters.

>>> cfg = JobConfig.model_validate({"input": {"path": "p.jsonl"}, "teacher": {"model": "m"}})
>>> [m.name for m in cfg.generation.modes]
['think', 'no_think']
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from filters import FiltersConfig

# re-exported: the generation section's models live in modes.py, every config model is importable from here
from .modes import AdaptiveConfig, GenerationConfig, ModeConfig, SamplingConfig, Strict  # noqa: F401

#: What a setting is to a run (``pipeline.identity`` reads these marks): ``SPEED`` changes how fast
#: it goes or where it reports, not what it writes (a resume may change it); ``SAMPLES``, what its
#: samples are (the generation fingerprint, which the nights of an incremental series share).
#: Unmarked settings are part of the run's identity only (a resume must not change them).
SPEED, SAMPLES = {"run": "speed"}, {"run": "samples"}

# ------------------------------------------------------------------------ input

class ColumnMap(Strict):
    """Which input columns hold what. A column set to ``null`` is not read."""

    prompt: str | None = "prompt"
    """Column with the prompt text (one user turn). Either this or ``messages``."""
    messages: str | None = None
    """Column with a list of ``{role, content}`` turns ending in a user turn; wins over ``prompt``."""
    reference: str | None = "reference"
    """Column with the reference answer; missing or null means no reference."""
    id: str | None = "id"
    """Column with a prompt id; when absent or empty the id is a content hash."""
    system: str | None = None
    """Column with a per-row system prompt (prepended as a system turn)."""
    source: str | None = "source"
    """Column naming the row's source/dataset, used for per-source reporting."""
    follow_ups: str | None = "follow_ups"
    """Column with follow-up prompts for multi-turn modes: a list of strings or of
    ``{prompt, reference}``; a row without it uses ``generation.follow_ups``."""


class InputConfig(Strict):
    path: str
    """Local path, glob, fsspec URL (``s3://...``), or a folder saved by ``datasets.save_to_disk``."""
    format: Literal["auto", "jsonl", "parquet", "hf_saved"] = "auto"
    """``auto`` picks by extension (``.jsonl``/``.json`` or ``.parquet``) or a saved-dataset folder."""
    columns: ColumnMap = Field(ColumnMap(), json_schema_extra=SAMPLES)
    system_prompt: str | None = Field(None, json_schema_extra=SAMPLES)
    """System prompt for rows without one of their own; ``null`` = none."""
    default_source: str = "default"
    """Source label for rows whose source column is missing or empty."""
    limit: int | None = Field(default=None, gt=0)
    """Read at most this many rows; ``null`` = all."""


# ---------------------------------------------------------------------- teacher

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


def _check_dialect(name: str) -> str:
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
        return _check_dialect(name)

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
            raise ValueError(f"isolate_cores applies to device 'cpu' only (vLLM binds no cores on a GPU), "
                             f"got device {self.device!r}")
        if self.min_replicas > self.replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is more than replicas ({self.replicas})")
        if self.device == "cpu" and self.engine.tensor_parallel_size != 1:
            raise ValueError(f"engine.tensor_parallel_size must be 1 on device 'cpu', "
                             f"got {self.engine.tensor_parallel_size}")
        return self


# ----------------------------------------------------------------------- output

class LogprobsConfig(Strict):
    """Teacher log-probabilities for logit distillation, stored beside ``accepted/``
    (``pipeline.logprobs``)."""

    top_k: int = Field(default=20, ge=1, le=1000)
    """Log-probabilities of the k most likely tokens at every generated position (and of the
    sampled one). About 6 bytes per token per k before compression (int32 id + float16)."""


class OutputConfig(Strict):
    path: str = Field("out", json_schema_extra=SPEED)
    """Local folder or fsspec URL; the run writes under ``<path>/<run_id>/``. When the job joins
    a cluster it must be absolute or a URL (a relative path would land on whichever node runs
    the driver; under ``ray job submit``, inside its unpacked working directory)."""
    run_id: str = Field(default="run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """The run's folder name. May hold ``{date}`` (UTC date, ``2026-12-01``) and ``{hour}``
    (``2026-12-01T03``), filled in when the config is loaded: ``qwen3-32b-{date}`` gives every
    night its own run, and a night submitted twice the same run (resumed or already complete).
    To resume a run after the date changed, pass its resolved id (``--set output.run_id=...``)."""
    rows_per_file: int = Field(default=10_000, gt=0, json_schema_extra=SPEED)
    """Rows buffered per Parquet file (per output folder)."""
    keep_prompt_text: bool = False
    """Also store the exact rendered prompt the engine saw (column ``prompt_text``). Off by
    default: it repeats what ``messages`` renders to."""
    license: str | None = Field(None, json_schema_extra=SPEED)
    """The dataset card's license (``README.md`` in the run folder; a Hugging Face license id such
    as ``apache-2.0``). ``null``: ``unknown``. The teacher's own license and terms apply to its
    outputs: choose accordingly."""
    overwrite: bool = Field(False, json_schema_extra=SPEED)
    """Replace an existing ``<path>/<run_id>/``. Off = refuse to write into a used run folder."""
    max_error_rate: float = Field(default=0.5, ge=0, le=1, json_schema_extra=SPEED)
    """Most ``errors/`` rows a run may have, as a share of its expected samples, and still exit 0;
    above it the job exits 4 (the rows are written all the same). 1 = never."""
    logprobs: LogprobsConfig | None = None
    """Store the teacher's top-k log-probabilities of every accepted sample's completion in
    ``logprobs/`` (``LogprobsConfig``); ``null`` = off."""
    incremental: bool = True
    """Skip the prompts that completed runs under the same ``path`` already generated with the
    same generation settings (``pipeline.catalog.fingerprint``): a nightly run over a growing
    input generates only what is new. Each skipped prompt leaves one row in ``earlier/`` naming
    the run that holds its samples. Off = generate every prompt (e.g. to check reproducibility)."""

    @field_validator("run_id", mode="before")
    @classmethod
    def _fill_run_id(cls, v):
        """``{date}`` / ``{hour}`` in ``run_id``, from the UTC clock at load time."""
        if not isinstance(v, str) or "{" not in v:
            return v
        now = datetime.now(UTC)
        try:
            return v.format(date=now.strftime("%Y-%m-%d"), hour=now.strftime("%Y-%m-%dT%H"))
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"run_id: only {{date}} and {{hour}} can be filled in, got {v!r} ({e})") from None


class RayConfig(Strict):
    address: str = ""
    """Cluster address; empty = an embedded local Ray (or the job's cluster under ``ray job submit``)."""
    batch_size: int = Field(default=32, gt=0)
    """Rows per Ray Data batch (input rows for prepare; samples for generate and parse)."""
    cpu_stage_actors: int = Field(default=2, ge=1)
    """Most workers for each CPU stage (prepare, parse); the pool grows from 1 as needed."""
    num_cpus: int | None = Field(default=None, gt=0)
    """Logical CPUs of the embedded Ray (ignored when joining a cluster). ``null`` = enough for
    the replicas plus the CPU stages; on a CPU teacher the engines share the real cores."""
    verbose: bool = False
    """Ray Data's progress blocks, Ray's info messages and the workers' output (vLLM's logs) on the
    console, as Ray prints them (``--verbose``). Off: one progress line; the rest is in the Ray
    session's log files, whose folder the job prints (``pipeline.progress``)."""
    deadline_s: float | None = Field(default=None, gt=0)
    """Wall-clock seconds one attempt may run, from its start. When they are up the job takes no
    new work (rows not yet prepared are left; requests not yet sent become ``deadline_reached``
    rows, redone on resume), lets the requests in flight finish, keeps what is committed and
    exits 5. Running the same command again resumes. ``null`` = no deadline."""
    node_loss_grace_s: float = Field(default=120, gt=0)
    """Seconds the job waits, after a node is lost mid-run, for Ray to place the actors it held
    again (on a node with room, or one that joins). Then, if some still have no room, the job stops
    the pass, keeps what it committed, and makes the rest in a new pass on the nodes that remain
    (``pipeline.node_loss``)."""


def _protocols(v: dict) -> dict:
    bad = [p for p in v if not p.isidentifier() or not p.islower()]
    if bad:
        raise ValueError(f"keys are fsspec protocols (s3, gcs, abfs, ...), got {bad}")
    return v


#: fsspec options per protocol (``pipeline.storage``).
StorageOptions = Annotated[dict[str, dict[str, Any]], AfterValidator(_protocols)]


class JobConfig(Strict):
    input: InputConfig
    teacher: TeacherConfig
    generation: GenerationConfig = Field(GenerationConfig(), json_schema_extra=SAMPLES)
    filters: FiltersConfig = FiltersConfig()
    output: OutputConfig = OutputConfig()
    ray: RayConfig = Field(RayConfig(), json_schema_extra=SPEED)
    storage_options: StorageOptions = Field(default_factory=dict, json_schema_extra=SPEED)
    """fsspec options per protocol for every file the job reads or writes (input, output,
    evaluation files), on the driver and on every worker; e.g. ``{s3: {endpoint_url:
    "http://minio:9000", key: ..., secret: ...}}``. Empty: the store's own configuration (for S3
    the ``AWS_*`` environment variables). Not part of a run's identity, never written to
    ``run.json``, secrets masked when printed (``pipeline.storage``)."""

    @model_validator(mode="after")
    def _sections_agree(self) -> JobConfig:
        from .dialects import get_dialect

        g, order = self.generation, self.filters.order
        get_dialect(self.teacher.dialect).check(g)
        if g.adaptive is not None and "wrong_answer" not in order:
            raise ValueError("filters.order: generation.adaptive measures accuracy by 'wrong_answer'; add it")
        if any(m.turns > 1 for m in g.modes):
            if "flag_following" not in order:
                raise ValueError("filters.order: multi-turn modes are checked turn by turn by 'flag_following'; add it")
            if not g.follow_ups and not self.input.columns.follow_ups:
                raise ValueError("generation.follow_ups: multi-turn modes need follow-up prompts "
                                 "(here, or an input column named by input.columns.follow_ups)")
        return self


class FilterJobConfig(Strict):
    """Config of ``jobs.filter``: the ``filters`` section, the think tags' dialect, Ray."""

    filters: FiltersConfig = FiltersConfig()
    dialect: str = "qwen3"
    """Whose think tags the samples use (``qwen3``, ``r1``, ``gpt-oss``)."""
    ray: RayConfig = RayConfig()
    rows_per_file: int = Field(default=10_000, gt=0)
    storage_options: StorageOptions = Field(default_factory=dict)
    """As the generation job's ``storage_options``."""

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, name: str) -> str:
        return _check_dialect(name)
