"""Generate stage: a teacher replica is one Ray actor holding one engine (vLLM, async).

The stream is cut into small blocks before this stage (``block_rows``), and each replica holds a
few of them at a time (``runs.plan.work_units``), taking the next from the one shared queue as
one finishes: so every replica has work from the start to the end of a run, whatever the input's
file sizes. Every row is submitted to the engine as its own request, and a semaphore keeps at
most ``teacher.in_flight`` requests in the engine. So one long reasoning trace holds back only
its own small batch's output, never the engine: the other batches keep it full.

Each request carries its own seed (``sample_seed``). A thinking budget is enforced one of two
ways (``budget_strategy`` per mode): ``two_stage`` generates up to the budget, appends the
dialect's end string (Qwen3's early-stop sentence + ``</think>``) if the thinking is still open,
and continues in this replica; ``engine`` passes vLLM's ``thinking_token_budget`` and lets the
engine force the same string (one pass; see the README for its CPU-build caveat).

s1's budget forcing (a mode's ``min_thinking_tokens``) makes thinking longer: each request stops
at the end of thinking; if that came before the minimum, it is replaced by the mode's
``continuation`` ("Wait") and the thinking goes on, up to ``max_extensions`` times; then the
answer, as its own request. The budget, if any, still caps the thinking as in ``two_stage``.

Beside it in this package: the replica's settings and vLLM's arguments (``settings``), the budget
and s1 forcing steps (``thinking``), multi-turn samples (``conversation``), the engine's start
(``starts``: retries, the start timeout, ``teacher.min_replicas``) and the book of engine deaths
that finds a request killing its engine (``suspects``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import time

from ... import cores
from ...dialects import get_dialect
from ...engine import Completion, EmptyOutput, Engine, EngineDead, VllmEngine
from ...logprobs import row_columns
from ...metrics import gauge
from ...pinned import on_driver_node
from ...schema import to_table
from .. import Context, Stage
from .conversation import ContextFull, Conversation
from .settings import REPLICA_NICENESS, GenerateSettings, engine_kwargs, placement_strategy  # noqa: F401 - re-exported
from .starts import actor_id, start_engine, wait_for_replicas
from .suspects import DeathBook, Gate, acall, call
from .thinking import ThinkingControl

log = logging.getLogger(__name__)


class Generate(Conversation, ThinkingControl, Stage):
    """Ray Data worker (actor): pending rows in, rows with the engine's output (or an error) out.

    ``engine``: a stand-in for tests (anything shaped like ``pipeline.engine.Engine``); by
    default the replica starts its own vLLM engine."""

    name = "generate"
    reads = (
        "status",
        "sample_id",
        "prompt_token_ids",
        "prefill",
        "sampling",
        "seed",
        "thinking_budget",
        "min_thinking_tokens",
        "reasoning_effort",
        "budget_strategy",
        "messages",
        "reference",
        "mode",
        "turn_flags",
        "follow_ups",
        "turn_references",
        "prompt_text",
    )
    writes = (
        "generated",
        "completion_token_ids",
        "finish_reason",
        "t_submit",
        "t_done",
        "replica",
        # a multi-turn sample: the conversation up to its last turn, which the row then describes
        "messages",
        "prefill",
        "prompt_tokens",
        "completion_tokens",
        "reference",
        "flag",
        "thinking_expected",
        "sampling",
        "prompt_text",
        "status",
        "stage",
        "error",
        "field",
        "detail",
        "input",
        "extensions",
        "unforced_thinking_tokens",
        "lp_prompt_ids",
        "lp_token_ids",
        "lp_forced",
        "lp_sampled",
        "lp_top_ids",
        "lp_top",
    )
    pool = "replicas"

    @classmethod
    def block_rows(cls, ctx: Context) -> int:
        return ctx.plan.rows_per_batch

    @classmethod
    def settings(cls, ctx: Context) -> dict:
        import ray

        # one book for all replicas: it outlives a replica whose engine died, and counts restarts
        book = ctx.shared["deaths"] = ray.remote(DeathBook).options(**on_driver_node()).remote(ctx.job.output.run_id)
        return {
            "settings": GenerateSettings.of(ctx.job, ctx.deadline),
            "deaths": book,
            "engine_factory": ctx.engine_factory,
        }

    @classmethod
    def describe(cls, ctx: Context) -> str:
        t, p = ctx.job.teacher, ctx.plan
        res = ", ".join(f"{k}={v}" for k, v in p.replica_resources.items())
        return (
            f"generate ({t.replicas} replica(s), each one vLLM engine, {res}; up to {t.in_flight} requests "
            f"each, taken {p.rows_per_batch} at a time from one shared queue)"
        )

    @classmethod
    def ray_options(cls, ctx: Context) -> dict:
        import functools

        import ray.data

        k = ctx.plan.batches_per_replica
        own = dict(ctx.plan.replica_resources)
        resources = {"num_cpus": own.pop("num_cpus"), "num_gpus": own.pop("num_gpus")}
        pg = ctx.plan.placement
        if pg is not None:  # TP > 1: the GPUs are the placement group's; the actor takes none itself
            resources = {
                "num_cpus": pg["bundles"][0]["CPU"],
                "num_gpus": 0,
                "ray_remote_args_fn": functools.partial(placement_strategy, pg),
            }
        if own:  # custom resources (teacher.resources.custom); with a placement group, its first bundle's
            resources["resources"] = own
        return dict(
            batch_format="pyarrow",
            batch_size=ctx.plan.rows_per_batch,
            compute=ray.data.ActorPoolStrategy(
                size=ctx.job.teacher.replicas, max_tasks_in_flight_per_actor=k, max_concurrent_calls_per_actor=k
            ),
            runtime_env={
                "env_vars": {
                    "VLLM_LOGGING_LEVEL": ctx.job.teacher.engine.log_level,
                    "RAY_worker_niceness": str(REPLICA_NICENESS),
                }
            },
            # bounded: an engine that keeps dying must not be restarted all night
            max_restarts=ctx.job.teacher.max_replica_restarts,
            **resources,
        )

    def __init__(
        self,
        settings: GenerateSettings,
        engine: Engine | None = None,
        name: str | None = None,
        deaths=None,
        engine_factory=None,
    ):
        self.cores = None  # a CPU engine's: {"compute": its workers' cores, "others": the rest of the job's}
        if engine is None:  # retried until it is up (a hang past start_timeout_s counts as failed)
            host = socket.gethostname()
            me = actor_id() or f"{host}:{os.getpid()}"  # whose starts failed: a broken node's must not fail the rest
            report = (lambda why: call(deaths, "start_failed", host, why, me)) if deaths is not None else None
            if deaths is not None:
                call(deaths, "start_begins")
            if engine_factory is None and settings.isolate_cores:  # its workers inherit this mask: all cores
                cores.widen()
            engine = start_engine(
                engine_factory or (lambda: VllmEngine(settings.engine_args)), settings.start_timeout_s, report
            )
            if engine_factory is None and settings.isolate_cores:
                self.cores = cores.keep_job_off_engine()
        self.engine: Engine = engine
        self.min_replicas, self._enough = settings.min_replicas, settings.min_replicas <= 1
        self.tokenizer = self.engine.tokenizer
        self.max_in_flight = settings.max_in_flight
        self.timeout = settings.request_timeout_s
        self.deadline = settings.deadline
        self.stop_loops = settings.stop_loops
        self.logprobs = settings.logprobs
        self.replica = name or f"{socket.gethostname()}:{os.getpid()}"  # stamped on its rows
        self._sem: asyncio.Semaphore | None = None
        self._live, self.run_id = 0, settings.run_id  # requests in the engine now, and the metrics' run tag
        self._ids = itertools.count()
        self.deaths, self.gate = deaths, Gate()  # finding a request that kills its engine
        if deaths is not None:  # a second start of the same actor is a restart (counted in the summary)
            call(deaths, "started", actor_id() or self.replica, socket.gethostname(), self.cores)
        # for two-stage budgets: the forced text as ids, and the ids that close thinking
        self.dialect = get_dialect(settings.dialect)
        self.forced_ids = self.tokenizer.encode(self.dialect.budget_end_str(), add_special_tokens=False)
        self.think_start_ids = self.tokenizer.encode(self.dialect.think_start, add_special_tokens=False)
        self.think_end_ids = self.tokenizer.encode(self.dialect.think_end, add_special_tokens=False)
        # for s1's forcing: each mode's continuation word as ids
        self.continuations = {
            m.name: self.tokenizer.encode(m.continuation, add_special_tokens=False)
            for m in settings.modes
            if m.forces_thinking
        }
        # for multi-turn samples: the modes (hard switch, sampling per turn), and the context window
        self.modes = {m.name: m for m in settings.modes}
        self.max_len = settings.max_model_len

    async def __call__(self, batch):
        self.require(batch)
        if self._sem is None:  # created in the event loop Ray Data runs this worker's batches on
            self._sem = asyncio.Semaphore(self.max_in_flight)
        if not self._enough and self.deaths is not None:  # teacher.min_replicas: not before that many are up
            await wait_for_replicas(self.deaths, self.min_replicas)
            self._enough = True
        rows = batch.to_pylist()
        pending = [r["sample_id"] for r in rows if r["status"] == "pending"]
        died = await acall(self.deaths, "counts", pending) if self.deaths is not None and pending else {}
        rows = await asyncio.gather(*(self._one(r, died.get(r["sample_id"])) for r in rows))
        yield to_table(rows, stage=self.name)

    async def _one(self, row: dict, died: list[int] | None = None) -> dict:
        if row["status"] != "pending":
            return row
        if died and died[1]:  # the engine died while it ran alone: it is the cause, not a bystander
            return _failed(
                row,
                "engine_died",
                f"the engine died {died[0]} time(s) with this request in flight, once with it alone; not sent again",
            )
        try:
            async with self._sem, self.gate.enter(alone=bool(died), sample_id=row["sample_id"]):
                if self.deadline is not None and time.time() >= self.deadline:
                    return _failed(
                        row,
                        "deadline_reached",
                        "ray.deadline_s was up before this request was sent; it is made when the run is resumed",
                    )
                row["t_submit"] = time.time()
                self._in_flight(+1)
                work = (
                    self._conversation(row)
                    if row.get("turn_flags")
                    else self._generate(row, row["prompt_token_ids"], row["prefill"], row["seed"])
                )
                try:
                    # a timeout cancels the request; vLLM aborts a cancelled request in the engine
                    c = await asyncio.wait_for(work, self.timeout) if self.timeout else await work
                except EngineDead as e:
                    self._engine_died(e)  # while this request is still counted in flight
                finally:
                    self._in_flight(-1)
        except TimeoutError:
            return _failed(row, "request_timeout", f"no result within teacher.request_timeout_s = {self.timeout} s")
        except EmptyOutput as e:
            return _failed(row, "engine_no_output", str(e))
        except ContextFull as e:
            return _failed(row, "conversation_too_long", str(e))
        except Exception as e:  # noqa: BLE001 - any per-request failure becomes an error row
            return _failed(row, "engine_error", f"{type(e).__name__}: {e}")
        if c.logprobs is not None:  # output.logprobs: for the sidecar (the prompt: the last turn's)
            row.update(row_columns(row.pop("lp_prompt_ids", None) or row["prompt_token_ids"], c.token_ids, c.logprobs))
        row.update(
            generated=c.text,
            completion_token_ids=c.token_ids,
            finish_reason=c.finish_reason,
            prompt_token_ids=None,
            t_done=time.time(),
            replica=self.replica,
        )
        return row

    async def _complete(self, prompt_ids: list[int], params, sample_id: str) -> Completion:
        if self.stop_loops is not None:
            params = params.but(stop_loops=self.stop_loops)
        if self.logprobs is not None:
            params = params.but(logprobs=self.logprobs)
        if self.dialect.keeps_special_tokens:
            params = params.but(skip_special_tokens=False)
        return await self.engine.complete(prompt_ids, params, f"{sample_id}-{next(self._ids)}")

    def _in_flight(self, step: int) -> None:
        """Requests in this replica's engine, for the live metrics (``pipeline.metrics``)."""
        self._live += step
        if self.run_id is not None:
            gauge("thinkmill_requests_in_flight", self._live, run_id=self.run_id, replica=self.replica)

    def _engine_died(self, e: Exception) -> None:
        # The engine process is gone and every later request would fail too. Exit the actor so
        # Ray restarts it with a fresh engine and retries the batch (as ray.data.llm does;
        # os._exit makes it a system error, which Ray retries, unlike exit_actor()). Every
        # request in flight is a suspect until one of them kills an engine alone.
        log.error("teacher engine died, restarting the replica: %s", e)
        if self.deaths is not None:
            call(self.deaths, "record", sorted(self.gate.inflight))
        self._exit()

    @staticmethod
    def _exit() -> None:
        os._exit(1)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=not self.dialect.keeps_special_tokens)

    def __del__(self):
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.shutdown()


def _failed(row: dict, error: str, detail: str) -> dict:
    row.update(
        status="error",
        stage="generate",
        error=error,
        field=None,
        detail=detail,
        prompt_token_ids=None,
        input=json.dumps({"messages": row["messages"], "reference": row["reference"]}, ensure_ascii=False),
    )
    return row


STAGE = Generate
