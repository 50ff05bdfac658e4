"""Generate stage: a teacher replica is one Ray actor holding one vLLM engine (async).

Ray Data sends several batches to each replica at once (``max_concurrency``); every row of
every batch is submitted to the engine as its own request, and a semaphore keeps at most
``teacher.max_in_flight`` requests in the engine. So one long reasoning trace holds back only
its own batch's output, never the engine: the other batches keep it full.

Each request carries its own seed (``sample_seed``). A thinking budget is enforced one of two
ways (``budget_strategy`` per mode): ``two_stage`` generates up to the budget, appends the
dialect's end string (Qwen3's early-stop sentence + ``</think>``) if the thinking is still open,
and continues in this replica; ``engine`` passes vLLM's ``thinking_token_budget`` and lets the
engine force the same string (one pass; see the README for its CPU-build caveat).

A multi-turn sample (a mode with ``turns`` > 1) is a conversation generated turn by turn in
this replica: after each assistant turn the next follow-up prompt (with its drawn flag) is
appended, the conversation is rendered again by the teacher's template (which strips earlier
turns' thinking, as at inference) and generated, each turn with its budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
from typing import NamedTuple

from .config import JobConfig
from .dialects import get_dialect
from .schema import to_table
from .thinking import last_boxed

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
    if any(m.budget_strategy == "engine" and any(b is not None for b in m.budgets) for m in cfg.generation.modes):
        dialect = get_dialect(t.dialect)
        kw["reasoning_parser"] = dialect.reasoning_parser
        kw["reasoning_end_str"] = dialect.budget_end_str()  # a ReasoningConfig in vllm_engine_kwargs
    kw.update(e.extra)
    return kw


def vllm_engine_kwargs(cfg: JobConfig) -> dict:
    """``engine_kwargs`` with vLLM's own types in place (needs vLLM: call it in a worker)."""
    from vllm.config import ReasoningConfig

    kw = engine_kwargs(cfg)
    if "reasoning_end_str" in kw:
        kw["reasoning_config"] = ReasoningConfig(reasoning_end_str=kw.pop("reasoning_end_str"))
    return kw


def sampling_params(row: dict, *, max_tokens: int | None = None, seed: int | None = None,
                    engine_budget: bool = True, sampling: dict | None = None):
    """The vLLM ``SamplingParams`` of one request row (mode sampling + seed + budget); ``sampling``
    replaces the row's (a multi-turn sample's earlier turns)."""
    from vllm import SamplingParams

    s = sampling or row["sampling"]
    budget = row["thinking_budget"] if engine_budget and row.get("budget_strategy") == "engine" else None
    return SamplingParams(
        temperature=s["temperature"], top_p=s["top_p"], top_k=s["top_k"], min_p=s["min_p"],
        presence_penalty=s["presence_penalty"], repetition_penalty=s["repetition_penalty"],
        max_tokens=max_tokens or s["max_tokens"], seed=row["seed"] if seed is None else seed,
        thinking_token_budget=budget)


class Completion(NamedTuple):
    text: str
    token_ids: list[int]
    finish_reason: str | None


class TeacherReplica:
    """Ray Data worker (actor): pending rows in, rows with the engine's output (or an error) out."""

    def __init__(self, cfg: JobConfig):
        import vllm
        from transformers import AutoTokenizer

        self.engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**vllm_engine_kwargs(cfg)))
        self.max_in_flight = cfg.teacher.max_in_flight
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._sem: asyncio.Semaphore | None = None
        self._ids = itertools.count()
        # for two-stage budgets: the forced text as ids, and the ids that open / close thinking
        self.dialect = get_dialect(cfg.teacher.dialect)
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.teacher.model,
                                                       trust_remote_code=cfg.teacher.engine.trust_remote_code)
        self.forced_ids = self.tokenizer.encode(self.dialect.budget_end_str(), add_special_tokens=False)
        self.think_end_ids = self.tokenizer.encode(self.dialect.think_end, add_special_tokens=False)
        # for multi-turn samples: the modes (hard switch, sampling per turn), and the context window
        self.modes = {m.name: m for m in cfg.generation.modes}
        self.max_len = cfg.teacher.engine.max_model_len

    async def __call__(self, batch):
        if self._sem is None:  # created in the event loop Ray Data runs this worker's batches on
            self._sem = asyncio.Semaphore(self.max_in_flight)
        rows = await asyncio.gather(*(self._one(r) for r in batch.to_pylist()))
        yield to_table(rows)

    async def _one(self, row: dict) -> dict:
        if row["status"] != "pending":
            return row
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            async with self._sem:
                row["t_submit"] = time.time()
                if row.get("turn_flags"):
                    c = await self._conversation(row)
                else:
                    c = await self._generate(row, row["prompt_token_ids"], row["prefill"], row["seed"])
        except EngineDeadError as e:
            # The engine process is gone and every later request would fail too. Exit the actor
            # so Ray restarts it with a fresh engine and retries the batch (as ray.data.llm does;
            # os._exit makes it a system error, which Ray retries, unlike exit_actor()).
            log.error("teacher engine died, restarting the replica: %s", e)
            os._exit(1)
        except EmptyOutput as e:
            return _failed(row, "engine_no_output", str(e))
        except ContextFull as e:
            return _failed(row, "conversation_too_long", str(e))
        except Exception as e:  # noqa: BLE001 - any per-request failure becomes an error row
            return _failed(row, "engine_error", f"{type(e).__name__}: {e}")
        row.update(generated=c.text, completion_token_ids=c.token_ids, finish_reason=c.finish_reason,
                   prompt_token_ids=None, t_done=time.time(), replica=self.name)
        return row

    async def _complete(self, prompt_ids: list[int], params, sample_id: str) -> Completion:
        from vllm.inputs import TokensPrompt

        final = None
        async for out in self.engine.generate(TokensPrompt(prompt_token_ids=prompt_ids), params,
                                              request_id=f"{sample_id}-{next(self._ids)}"):
            final = out
        if final is None or not final.outputs:
            raise EmptyOutput("the engine finished the request without an output")
        c = final.outputs[0]
        return Completion(c.text, list(c.token_ids), c.finish_reason)

    async def _generate(self, row: dict, prompt_ids: list[int], prefill: str, seed: int,
                        sampling: dict | None = None) -> Completion:
        """One assistant turn of ``row`` for this prompt, with the row's budget and strategy."""
        if row["thinking_budget"] is not None and row.get("budget_strategy") == "two_stage":
            return await self._two_stage(row, prompt_ids, prefill, seed, sampling)
        return await self._complete(prompt_ids, sampling_params(row, seed=seed, sampling=sampling), row["sample_id"])

    async def _two_stage(self, row: dict, prompt_ids: list[int], prefill: str, seed: int,
                         sampling: dict | None = None) -> Completion:
        """Qwen3's budget recipe: think up to the budget; if the thinking is still open, append
        the early-stop text and ``</think>``; continue from there in this replica (the prefix
        cache holds prompt + first part, so the second request only decodes the answer)."""
        budget, cap = row["thinking_budget"], row["sampling"]["max_tokens"]
        # the model opens the block itself (one <think> token) unless the prompt already did
        opened_in_prompt = prefill.endswith(f"{self.dialect.think_start}\n")
        first_cap = min(cap, budget + (0 if opened_in_prompt else 1))
        first = await self._complete(prompt_ids, sampling_params(row, max_tokens=first_cap, seed=seed,
                                                                 sampling=sampling), row["sample_id"])
        if first.finish_reason != "length" or first_cap == cap:
            return first  # finished inside the budget (or the length cap is the budget)
        closed = _contains(first.token_ids, self.think_end_ids)
        forced = [] if closed else self.forced_ids  # thinking ended under budget: just let it answer
        ids = first.token_ids + forced
        if cap - len(ids) <= 0:  # no room left to answer: cut at the length cap like one pass would
            ids = ids[:cap]
            return Completion(self._decode(ids), ids, "length")
        # a new request restarts the seeded sampler; derive the seed so the continuation is its own draw
        second = await self._complete(prompt_ids + ids,
                                      sampling_params(row, max_tokens=cap - len(ids), seed=seed + 1,
                                                      sampling=sampling),
                                      row["sample_id"])
        ids = ids + second.token_ids
        return Completion(self._decode(ids), ids, second.finish_reason)

    async def _conversation(self, row: dict) -> Completion:
        """A multi-turn sample, turn by turn. Leaves in ``row`` the conversation up to the last
        user turn and that turn's prompt; returns the last turn (the one parse appends). A turn
        cut by the length cap ends the conversation there (the format filter rejects it)."""
        messages, prompt_ids, prefill = list(row["messages"]), row["prompt_token_ids"], row["prefill"]
        prompt, generated, latest = row.get("prompt_text"), 0, None
        mode = self.modes[row["mode"]]
        for turn, flag in enumerate(row["turn_flags"]):
            latest = flag or latest  # the flag in force: each turn samples as its mode (row["sampling"]: the last)
            sampling = self.dialect.sampling(mode, thinking=mode.thinks_under(latest))
            if turn:
                answer = self.dialect.split(previous).answer
                text = row["follow_ups"][turn - 1].replace("{answer}", last_boxed(answer) or answer.strip())
                messages = messages + [{"role": "assistant", "content": previous}, {"role": "user", "content": text}]
                messages = self.dialect.with_flag(messages, flag, "user")
                prompt = self.dialect.render(self.tokenizer, messages, mode.thinking)
                prompt_ids = self.tokenizer.encode(prompt, add_special_tokens=False)
                if len(prompt_ids) >= self.max_len:
                    raise ContextFull(f"turn {turn + 1} of {len(row['turn_flags'])}: the conversation is "
                                      f"{len(prompt_ids)} tokens, teacher.engine.max_model_len is {self.max_len}")
                prefill = self.dialect.prefill(prompt)
            # each turn its own draw (two_stage takes seed + 1 for a continuation)
            c = await self._generate(row, prompt_ids, prefill, row["seed"] + 2 * turn, sampling)
            generated += len(c.token_ids)
            previous = self.dialect.completion(prefill, c.text)
            if c.finish_reason == "length":
                break
        # the row describes its last turn - which may come early, if a turn was cut
        row.update(messages=messages, prefill=prefill, prompt_tokens=len(prompt_ids), completion_tokens=generated,
                   reference=row["turn_references"][turn], flag=latest, thinking_expected=mode.thinks_under(latest),
                   sampling=sampling)
        if row.get("prompt_text") is not None:  # output.keep_prompt_text: the prompt of the last turn
            row["prompt_text"] = prompt
        return c

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

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
        with contextlib.suppress(Exception):  # at interpreter exit vLLM's module globals may be gone
            engine.shutdown()


class EmptyOutput(RuntimeError):
    """The engine finished a request without an output."""


class ContextFull(RuntimeError):
    """A multi-turn conversation outgrew the context window before its last turn."""


def _contains(ids: list[int], seq: list[int]) -> bool:
    n = len(seq)
    return any(ids[i:i + n] == seq for i in range(len(ids) - n + 1))


def _failed(row: dict, error: str, detail: str) -> dict:
    import json

    row.update(status="error", stage="generate", error=error, field=None, detail=detail, prompt_token_ids=None,
               input=json.dumps({"messages": row["messages"], "reference": row["reference"]}, ensure_ascii=False))
    return row
