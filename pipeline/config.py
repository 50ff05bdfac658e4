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

# re-exported: the generation section's models live in modes.py, the teacher's in teacher_config.py; every
# config model is importable from here
from .modes import SAMPLES, SPEED, AdaptiveConfig, GenerationConfig, ModeConfig, SamplingConfig, Strict  # noqa: F401
from .teacher_config import EngineConfig, ResourcesConfig, TeacherConfig, check_dialect  # noqa: F401

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
                raise ValueError(
                    "generation.follow_ups: multi-turn modes need follow-up prompts "
                    "(here, or an input column named by input.columns.follow_ups)"
                )
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
        return check_dialect(name)
