"""Generate stage: a teacher replica is one Ray actor holding one vLLM engine (async).

Ray Data sends several batches to each replica at once (``max_concurrency``); every row of
every batch is submitted to the engine as its own request, and a semaphore keeps at most
``teacher.max_in_flight`` requests in the engine. So one long reasoning trace holds back only
its own batch's output, never the engine: the other batches keep it full.

Each request carries its own seed (``sample_seed``) and, for thinking modes with a budget,
vLLM's ``thinking_token_budget``: after that many thinking tokens the engine forces the
dialect's end string (Qwen3's early-stop sentence + ``</think>``) and the model answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time

from .config import JobConfig
from .dialects import get_dialect
from .schema import to_table

log = logging.getLogger(__name__)


def engine_kwargs(cfg: JobConfig) -> dict:
    """``vllm`` engine arguments for one replica, from the job config.

    >>> from pipeline.config import JobConfig
    >>> cfg = JobConfig.model_validate({"input": {"path": "p"}, "teacher": {"model": "m",
    ...     "engine": {"kv_cache_gib": 1}}})
    >>> kw = engine_kwargs(cfg)
    >>> kw["kv_cache_memory_bytes"], kw["trust_remote_code"], "reasoning_parser" in kw
    (1073741824, False, False)
    """
    t, e = cfg.teacher, cfg.teacher.engine
    kw = dict(model=t.model, dtype=e.dtype, max_model_len=e.max_model_len,
              tensor_parallel_size=e.tensor_parallel_size, max_num_seqs=e.max_num_seqs, seed=e.seed,
              enforce_eager=e.enforce_eager, enable_prefix_caching=e.enable_prefix_caching,
              trust_remote_code=e.trust_remote_code, gpu_memory_utilization=e.gpu_memory_utilization,
              disable_log_stats=True)
    if e.kv_cache_gib is not None:
        kw["kv_cache_memory_bytes"] = int(e.kv_cache_gib * 2**30)
    if any(m.thinking_budget is not None for m in cfg.generation.modes):
        dialect = get_dialect(t.dialect)
        kw["reasoning_parser"] = dialect.reasoning_parser
        kw["reasoning_end_str"] = dialect.budget_end_str()  # turned into a ReasoningConfig in the worker
    kw.update(e.extra)
    return kw


def sampling_params(row: dict):
    """The vLLM ``SamplingParams`` of one request row (mode sampling + seed + budget)."""
    from vllm import SamplingParams

    s = row["sampling"]
    return SamplingParams(
        temperature=s["temperature"], top_p=s["top_p"], top_k=s["top_k"], min_p=s["min_p"],
        presence_penalty=s["presence_penalty"], repetition_penalty=s["repetition_penalty"],
        max_tokens=s["max_tokens"], seed=row["seed"], thinking_token_budget=row["thinking_budget"])


class TeacherReplica:
    """Ray Data worker (actor): pending rows in, rows with the engine's output (or an error) out."""

    def __init__(self, cfg: JobConfig):
        import vllm
        from vllm.config import ReasoningConfig

        kw = engine_kwargs(cfg)
        if "reasoning_end_str" in kw:
            kw["reasoning_config"] = ReasoningConfig(reasoning_end_str=kw.pop("reasoning_end_str"))
        self.engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**kw))
        self.max_in_flight = cfg.teacher.max_in_flight
        self._sem: asyncio.Semaphore | None = None
        self._ids = itertools.count()

    async def __call__(self, batch):
        if self._sem is None:  # created in the event loop Ray Data runs this worker's batches on
            self._sem = asyncio.Semaphore(self.max_in_flight)
        rows = await asyncio.gather(*(self._one(r) for r in batch.to_pylist()))
        yield to_table(rows)

    async def _one(self, row: dict) -> dict:
        if row["status"] != "pending":
            return row
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError

        final = None
        try:
            async with self._sem:
                row["t_submit"] = time.time()
                prompt = TokensPrompt(prompt_token_ids=row["prompt_token_ids"])
                async for out in self.engine.generate(prompt, sampling_params(row),
                                                      request_id=f"{row['sample_id']}-{next(self._ids)}"):
                    final = out
        except EngineDeadError as e:
            # The engine process is gone and every later request would fail too. Exit the actor
            # so Ray restarts it with a fresh engine and retries the batch (as ray.data.llm does;
            # os._exit makes it a system error, which Ray retries, unlike exit_actor()).
            log.error("teacher engine died, restarting the replica: %s", e)
            os._exit(1)
        except Exception as e:  # noqa: BLE001 - any per-request failure becomes an error row
            return _failed(row, "engine_error", f"{type(e).__name__}: {e}")
        if final is None or not final.outputs:
            return _failed(row, "engine_no_output", "the engine finished the request without an output")
        c = final.outputs[0]
        row.update(generated=c.text, completion_token_ids=list(c.token_ids), finish_reason=c.finish_reason,
                   prompt_token_ids=None, t_done=time.time())
        return row

    def __del__(self):
        # Ray Data drops the worker when the stage is done. Stop the engine's output loop
        # first: otherwise it sees the engine process go away and logs an EngineDeadError.
        engine = getattr(self, "engine", None)
        if engine is None:
            return
        handler = getattr(engine, "output_handler", None)
        if handler is not None and not handler.done():
            async def cancel():
                handler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await handler

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel(), handler.get_loop()).result(timeout=10)
        engine.shutdown()


def _failed(row: dict, error: str, detail: str) -> dict:
    import json

    row.update(status="error", stage="generate", error=error, field=None, detail=detail, prompt_token_ids=None,
               input=json.dumps({"messages": row["messages"], "reference": row["reference"]}, ensure_ascii=False))
    return row
