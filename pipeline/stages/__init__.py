"""The stages, and the one list of them that the jobs and ``--dry-run`` read.

A stage is a Ray Data worker class (``Stage``): it builds its expensive state once in
``__init__`` from its own settings, and maps one batch. It declares the columns it reads and
writes, how it runs (a small CPU pool, the teacher replicas, or a single worker), whether a job
wants it, and how ``--dry-run`` describes it. ``chain`` applies a list of stages to the read
dataset; each job then writes the result into a sink.

A stage lives in a module of this package, named as the stage, that ends with ``STAGE = Cls``.
Adding a stage is that module plus its name in one of the lists below.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa

#: The generation job: read -> these -> write.
GENERATION = ("prepare", "generate", "parse", "filter", "select")
#: The filter job (re-judging a dataset): read -> these -> write.
FILTER_JOB = ("load", "filter")

#: What the read stage gives the first stage (``stages/read.py``).
READ_COLUMNS = ("_path", "_row", "_raw", "_error")
#: Logical CPUs per CPU-stage worker (prepare, parse, filter, ...). Their work per row is small.
CPU_STAGE_CPUS = 1


class MissingColumns(ValueError):
    """A stage got (or would get) a batch without a column it reads."""

    def __init__(self, stage: str, missing: list[str], present: list[str]):
        super().__init__(f"stage {stage!r} reads columns {missing} that its input does not have; present: {present}")


class UnknownColumns(ValueError):
    """A stage declares columns it writes that the stream's schema does not hold (``to_table``
    would drop them without a word)."""

    def __init__(self, stage: str, unknown: list[str]):
        super().__init__(
            f"stage {stage!r} writes columns {unknown} that the stream schema does not have; add "
            f"them to pipeline/schema.py (STREAM: the contract's columns or the working ones)"
        )


@dataclass(frozen=True)
class Context:
    """What a stage's settings are taken from: the job's config and, for the generation job,
    its plan (replica resources, the teacher's token facts)."""

    job: Any
    plan: Any = None
    done: Any = None  # a resumed run: the prompts already committed (``committed.DoneSet``)
    ledger: Any = None  # the duplicate-id ledger (``ledger.IdLedger``), seeded on resume
    deadline: float | None = None  # epoch seconds after which no new work starts (``ray.deadline_s``)
    earlier: Any = None  # an incremental run: prompts earlier runs generated (``catalog.Earlier``)
    #: a picklable callable making each replica's engine instead of vLLM: the benchmarks'
    #: labelled stand-in (``bench.simulate``); never set by a job's config
    engine_factory: Any = None
    #: run-wide actors a stage makes and the run reads back when the data is written
    shared: dict = field(default_factory=dict)
    round: Any = None  # sample until verified: what this pass makes (``rounds.Round``)
    done_samples: Any = None  # ... and a resumed one's committed samples (``committed.DoneSet`` of sample ids)


class Stage:
    name: ClassVar[str] = ""
    #: Columns the stage needs in every batch it maps.
    reads: ClassVar[tuple[str, ...]] = ()
    #: Columns it fills or changes (for the docs and the static chain check).
    writes: ClassVar[tuple[str, ...]] = ()
    #: ``cpu``: an autoscaling pool of up to ``ray.cpu_stage_actors`` workers; ``one``: a single
    #: worker (it sees every row); ``replicas``: its own resources (``ray_options``).
    pool: ClassVar[Literal["cpu", "one", "replicas"]] = "cpu"
    #: the last stage of a chain reports each batch it finishes here (``progress.ProgressBook``,
    #: set by ``chain``), with the samples each ``earlier`` row stands for
    progress: ClassVar[Any] = None
    per_input: ClassVar[int] = 1
    run_id: ClassVar[str] = ""  # ... and counts it into the live metrics (``pipeline.metrics``) under this run

    @classmethod
    def wanted(cls, ctx: Context) -> bool:
        """Whether this job runs the stage (e.g. select only with ``generation.adaptive``)."""
        return True

    @classmethod
    def settings(cls, ctx: Context) -> dict:
        """The constructor's keyword arguments, from the parts of the config the stage uses."""
        return {}

    @classmethod
    def block_rows(cls, ctx: Context) -> int | None:
        """Cut the stream into blocks of at most this many rows before the stage (Ray Data hands
        a worker whole blocks): the generate stage's unit of work. ``None``: as they come."""
        return None

    @classmethod
    def describe(cls, ctx: Context) -> str:
        """How ``--dry-run`` names the stage."""
        return cls.name

    @classmethod
    def ray_options(cls, ctx: Context) -> dict:
        """``map_batches`` arguments: the pool, resources, batch size."""
        import ray.data

        r = ctx.job.ray
        size = dict(size=1) if cls.pool == "one" else dict(min_size=1, max_size=r.cpu_stage_actors)
        return dict(
            compute=ray.data.ActorPoolStrategy(**size),
            num_cpus=CPU_STAGE_CPUS,
            batch_format="pyarrow",
            batch_size=r.batch_size,
        )

    def require(self, batch: pa.Table) -> None:
        """Fail with the stage's name and both column lists when a batch lacks a column."""
        present = set(batch.column_names)
        missing = [c for c in self.reads if c not in present]
        if missing:
            raise MissingColumns(type(self).name, missing, sorted(present))

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.require(batch)
        out = self.process(batch)
        if self.progress is not None and out.num_rows:
            from ..progress import counts

            self.progress.add.remote(*counts(out, self.per_input))  # not awaited: the console's only
            from ..metrics import rows_done

            rows_done(out, self.run_id)
        return out

    def process(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError


def stage_class(name: str) -> type[Stage]:
    return importlib.import_module(f"{__name__}.{name}").STAGE


def stages_for(names: tuple[str, ...], ctx: Context) -> list[type[Stage]]:
    """The stages of ``names`` this job wants, in order; checks that each stage's columns are
    there (from the read stage or an earlier stage) and that the schema holds what it writes,
    before anything runs."""
    from ..schema import STREAM

    chosen = [cls for cls in map(stage_class, names) if cls.wanted(ctx)]
    available = set(READ_COLUMNS)
    for cls in chosen:
        missing = [c for c in cls.reads if c not in available]
        if missing:
            raise MissingColumns(cls.name, missing, sorted(available))
        if unknown := [c for c in cls.writes if c not in STREAM.names]:
            raise UnknownColumns(cls.name, unknown)
        available |= set(cls.writes)
    return chosen


def chain(ds, names: tuple[str, ...], ctx: Context):
    """``ds`` (the read dataset) through the wanted stages of ``names``, lazily. With a
    ``ctx.shared["progress"]`` book, the last stage reports to it."""
    from ..metrics import run_tag

    chosen = stages_for(names, ctx)
    book = ctx.shared.get("progress")
    for i, cls in enumerate(chosen):
        if (rows := cls.block_rows(ctx)) is not None:  # streaming: blocks are split as they come
            ds = ds.repartition(target_num_rows_per_block=rows)
        worker = cls
        if book is not None and i == len(chosen) - 1:
            per_input = ctx.plan.samples_per_input if ctx.plan is not None else 1
            worker = type(
                cls.__name__,
                (cls,),
                {"progress": book, "per_input": per_input, "run_id": run_tag(ctx.job), "__module__": cls.__module__},
            )
        with warnings.catch_warnings():
            # Ray 2.60 deprecates remote arguments passed through (``max_restarts``), but its
            # named parameters have none for restarts yet
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            ds = ds.map_batches(worker, fn_constructor_kwargs=cls.settings(ctx), **cls.ray_options(ctx))
    return ds


def describe(names: tuple[str, ...], ctx: Context) -> str:
    """The chain as ``--dry-run`` prints it: read -> ... -> write."""
    return " -> ".join(["read", *(cls.describe(ctx) for cls in stages_for(names, ctx)), "write"])
