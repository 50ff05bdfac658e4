"""The teacher engine as the generate stage sees it: token ids in, one completion out.

``Engine`` is the seam: anything with a ``tokenizer``, ``async complete(prompt_ids, params,
request_id) -> Completion`` and ``shutdown()`` can stand in for vLLM, so the logic around the
engine (budgets, multi-turn, error rows) is unit-tested with a scripted engine, while
``VllmEngine`` (vLLM's ``AsyncLLMEngine``, one per replica) is tested end to end.

``Params`` is plain data (no vLLM import): the sampling of one request, converted to vLLM's
``SamplingParams`` inside ``VllmEngine``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

log = logging.getLogger(__name__)


class Completion(NamedTuple):
    text: str
    token_ids: list[int]
    finish_reason: str | None
    logprobs: Any = None  # ``pipeline.logprobs.TokenLogprobs`` when asked for (``Params.logprobs``)


class EngineDead(RuntimeError):
    """The engine process is gone: every later request would fail too."""


class EmptyOutput(RuntimeError):
    """The engine finished a request without an output."""


@dataclass(frozen=True)
class Params:
    """Sampling of one request (vLLM ``SamplingParams`` fields; ``top_k`` -1 = off)."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    presence_penalty: float
    repetition_penalty: float
    max_tokens: int
    seed: int
    thinking_token_budget: int | None = None  # vLLM's engine-side budget; None = off
    #: (min, max) unit length in tokens and the repeats in a row that stop a looping request
    #: (vLLM's ``repetition_detection``); None = off
    stop_loops: tuple[int, int, int] | None = None
    #: tokens that end the request (included in its output): s1's forcing stops at the end of thinking
    stop_token_ids: tuple[int, ...] | None = None
    #: top-k teacher log-probabilities per generated token (``output.logprobs``); None = off
    logprobs: int | None = None
    #: False keeps special tokens in the text (the harmony format's channel markers are special tokens)
    skip_special_tokens: bool = True

    def but(self, **changes) -> Params:
        return replace(self, **changes)


def request_params(
    row: dict,
    *,
    max_tokens: int | None = None,
    seed: int | None = None,
    engine_budget: bool = True,
    sampling: dict | None = None,
) -> Params:
    """The ``Params`` of one request row (mode sampling + seed + budget); ``sampling`` replaces
    the row's (a multi-turn sample's earlier turns).

    >>> s = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0, "presence_penalty": 0.0,
    ...      "repetition_penalty": 1.0, "max_tokens": 50}
    >>> row = {"sampling": s, "seed": 3, "thinking_budget": 32}
    >>> request_params({**row, "budget_strategy": "engine"}).thinking_token_budget
    32
    >>> request_params({**row, "budget_strategy": "two_stage"}).thinking_token_budget
    """
    s = sampling or row["sampling"]
    budget = row["thinking_budget"] if engine_budget and row.get("budget_strategy") == "engine" else None
    return Params(
        temperature=s["temperature"],
        top_p=s["top_p"],
        top_k=s["top_k"],
        min_p=s["min_p"],
        presence_penalty=s["presence_penalty"],
        repetition_penalty=s["repetition_penalty"],
        max_tokens=max_tokens or s["max_tokens"],
        seed=row["seed"] if seed is None else seed,
        thinking_token_budget=budget,
    )


class Engine(Protocol):
    tokenizer: Any

    async def complete(self, prompt_ids: list[int], params: Params, request_id: str) -> Completion: ...

    def shutdown(self) -> None: ...


def vllm_args(engine_args: dict) -> dict:
    """Engine arguments with vLLM's own types in place (needs vLLM: call it in a worker)."""
    from vllm.config import ReasoningConfig

    kw = dict(engine_args)
    if "reasoning_end_str" in kw:
        kw["reasoning_config"] = ReasoningConfig(reasoning_end_str=kw.pop("reasoning_end_str"))
    return kw


def vllm_sampling(params: Params):
    """``Params`` as vLLM's ``SamplingParams``."""
    from dataclasses import asdict

    from vllm import SamplingParams
    from vllm.sampling_params import RepetitionDetectionParams, RequestOutputKind

    kw = asdict(params)
    # the pipeline reads only a request's final output, as ``LLM.generate`` does: by default the
    # async engine builds every running request's cumulative output (ids, text) at every step
    kw["output_kind"] = RequestOutputKind.FINAL_ONLY
    loops = kw.pop("stop_loops")
    kw["stop_token_ids"] = list(kw["stop_token_ids"] or ())
    if kw["logprobs"] is not None:
        kw["flat_logprobs"] = True  # a few flat lists per request, not one dict per token
    if loops is not None:
        kw["repetition_detection"] = RepetitionDetectionParams(
            min_pattern_size=loops[0], max_pattern_size=loops[1], min_count=loops[2]
        )
    return SamplingParams(**kw)


@contextlib.contextmanager
def config_kv_cache_wins(engine_args: dict):
    """While an engine is built: a KV cache size from the config (``kv_cache_memory_bytes``, from
    ``teacher.engine.kv_cache_gib``) is the one the engine gets. vLLM's CPU platform lets the legacy
    variable ``VLLM_CPU_KVCACHE_SPACE`` override it silently (vllm/platforms/cpu.py, "Legacy
    setting"); the variable is hidden from the build (and the engine processes it spawns) and put
    back after, with a warning that names it. Without a size in the config it keeps its meaning.

    >>> import os; os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
    >>> with config_kv_cache_wins({"kv_cache_memory_bytes": 2**29}):
    ...     "VLLM_CPU_KVCACHE_SPACE" in os.environ
    False
    >>> os.environ.pop("VLLM_CPU_KVCACHE_SPACE")
    '1'
    """
    key = "VLLM_CPU_KVCACHE_SPACE"
    hidden = os.environ.pop(key, None) if "kv_cache_memory_bytes" in engine_args else None
    if hidden:
        log.warning(
            "%s=%s is ignored: teacher.engine.kv_cache_gib sets this engine's KV cache (%.2f GiB)",
            key,
            hidden,
            engine_args["kv_cache_memory_bytes"] / 2**30,
        )
    try:
        yield
    finally:
        if hidden is not None:
            os.environ[key] = hidden


def offline_llm(engine_args: dict):
    """vLLM's ``LLM`` over engine arguments of ``engine_kwargs`` (for jobs that batch without the
    pipeline: scoring, the benchmarks' bare side), with the config's KV cache size."""
    from vllm import LLM

    with config_kv_cache_wins(engine_args):
        return LLM(**vllm_args(engine_args))


class VllmEngine:
    """One vLLM ``AsyncLLMEngine`` (engine arguments from ``pipeline.stages.generate.engine_kwargs``)."""

    def __init__(self, engine_args: dict):
        import vllm

        with config_kv_cache_wins(engine_args):
            self.engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**vllm_args(engine_args)))
        self.tokenizer = self.engine.get_tokenizer()

    async def complete(self, prompt_ids: list[int], params: Params, request_id: str) -> Completion:
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError

        final = None
        try:
            async for out in self.engine.generate(
                TokensPrompt(prompt_token_ids=prompt_ids), vllm_sampling(params), request_id=request_id
            ):
                final = out
        except EngineDeadError as e:
            raise EngineDead(str(e)) from e
        if final is None or not final.outputs:
            raise EmptyOutput("the engine finished the request without an output")
        c = final.outputs[0]
        lp = None
        if params.logprobs is not None:
            from .logprobs import TokenLogprobs

            lp = TokenLogprobs.of_vllm(c.logprobs or [], list(c.token_ids), params.logprobs)
        return Completion(c.text, list(c.token_ids), c.finish_reason, lp)

    def shutdown(self) -> None:
        # Ray Data drops the worker when the stage is done. Stop the engine's output loop
        # first: otherwise it sees the engine process go away and logs an EngineDeadError.
        engine = self.engine
        handler = getattr(engine, "output_handler", None)
        if handler is not None and not handler.done():

            async def cancel():
                handler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await handler

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel(), handler.get_loop()).result(timeout=10)
        with contextlib.suppress(Exception):  # at interpreter exit vLLM's module globals may be gone
            engine.shutdown()
