"""How the generate stage controls thinking within one assistant turn: a budget (Qwen3's
two-stage recipe) and s1's budget forcing (think at least ``min_thinking_tokens``). A mixin of
``Generate``: it needs the replica's ``_complete``, ``_decode``, ``dialect``, ``modes`` and the
token ids the replica encodes once (``forced_ids``, ``think_start_ids``, ``think_end_ids``,
``continuations``), and
``logprobs`` (top-k, or None): the teacher's logprobs of each part are joined as its ids are, the
tokens put in here marked as forced (``pipeline.logprobs.join``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine import Completion, Params, request_params
from ...logprobs import join

if TYPE_CHECKING:
    from ...config import ModeConfig
    from ...dialects import Dialect


class ThinkingControl:
    # what the replica that mixes this in provides (``Generate.__init__`` sets them)
    dialect: Dialect
    modes: dict[str, ModeConfig]
    logprobs: int | None
    forced_ids: list[int]  # the budget's forced text (early-stop sentence + end tag), as ids
    think_start_ids: list[int]
    think_end_ids: list[int]
    continuations: dict[str, list[int]]  # per mode with s1 forcing: its continuation word, as ids

    async def _complete(self, prompt_ids: list[int], params: Params, sample_id: str) -> Completion:
        raise NotImplementedError  # the replica's: one request to its engine

    def _decode(self, ids: list[int]) -> str:
        raise NotImplementedError  # the replica's: its tokenizer's decode

    async def _generate(
        self, row: dict, prompt_ids: list[int], prefill: str, seed: int, sampling: dict | None = None
    ) -> Completion:
        """One assistant turn of ``row`` for this prompt, with the row's budget and strategy."""
        if row.get("min_thinking_tokens"):
            return await self._forced(row, prompt_ids, prefill, seed, sampling)
        if row["thinking_budget"] is not None and row.get("budget_strategy") == "two_stage":
            return await self._two_stage(row, prompt_ids, prefill, seed, sampling)
        return await self._complete(prompt_ids, request_params(row, seed=seed, sampling=sampling), row["sample_id"])

    async def _two_stage(
        self, row: dict, prompt_ids: list[int], prefill: str, seed: int, sampling: dict | None = None
    ) -> Completion:
        """Qwen3's budget recipe: think up to the budget; if the thinking is still open, append
        the early-stop text and ``</think>``; continue from there in this replica (the prefix
        cache holds prompt + first part, so the second request only decodes the answer)."""
        budget, cap = row["thinking_budget"], row["sampling"]["max_tokens"]
        # the model opens the block itself (the start tag's tokens) unless the prompt already did
        opened_in_prompt = prefill.endswith(f"{self.dialect.think_start}\n")
        first_cap = min(cap, budget + (0 if opened_in_prompt else len(self.think_start_ids)))
        first = await self._complete(
            prompt_ids, request_params(row, max_tokens=first_cap, seed=seed, sampling=sampling), row["sample_id"]
        )
        if first.finish_reason != "length" or first_cap == cap:
            return first  # finished inside the budget (or the length cap is the budget)
        closed = _contains(first.token_ids, self.think_end_ids)
        forced = [] if closed else self.forced_ids  # thinking ended under budget: just let it answer
        ids = first.token_ids + forced
        lp = join(first.logprobs, len(forced), k=self.logprobs)
        if cap - len(ids) <= 0:  # no room left to answer: cut at the length cap like one pass would
            ids = ids[:cap]
            return Completion(self._decode(ids), ids, "length", lp and lp.cut(cap))
        # a new request restarts the seeded sampler; derive the seed so the continuation is its own draw
        second = await self._complete(
            prompt_ids + ids,
            request_params(row, max_tokens=cap - len(ids), seed=seed + 1, sampling=sampling),
            row["sample_id"],
        )
        ids = ids + second.token_ids
        return Completion(self._decode(ids), ids, second.finish_reason, join(lp, second.logprobs, k=self.logprobs))

    async def _forced(
        self, row: dict, prompt_ids: list[int], prefill: str, seed: int, sampling: dict | None = None
    ) -> Completion:
        """s1's budget forcing: at least ``min_thinking_tokens`` of thinking (an end of thinking
        that comes earlier is replaced by the continuation word, at most ``max_extensions`` times),
        at most ``thinking_budget`` (then the early-stop text and the end are forced); then the
        answer. Each step is a request of its own with the thinking so far in its prompt (the
        prefix cache holds it), and its own seed. Records ``extensions`` and the thinking at the
        teacher's first end of thinking (``unforced_thinking_tokens``) in the row."""
        least, budget, cap = row["min_thinking_tokens"], row["thinking_budget"], row["sampling"]["max_tokens"]
        mode = self.modes[row["mode"]]
        end = self.think_end_ids[-1]
        # the opening tag: in the prefill, or written by the model
        opener = 0 if prefill.endswith(f"{self.dialect.think_start}\n") else len(self.think_start_ids)
        ids: list[int] = []
        lp = join(k=self.logprobs)  # the teacher's logprobs of ids (None: not asked for)
        extensions, unforced, step, finish = 0, None, 0, None
        while True:
            room = cap - len(ids) if budget is None else min(cap, budget + opener) - len(ids)
            c = await self._complete(
                prompt_ids + ids,
                request_params(row, max_tokens=room, seed=_step_seed(seed, step), sampling=sampling).but(
                    stop_token_ids=(end,)
                ),
                row["sample_id"],
            )
            step += 1
            ids, lp = ids + c.token_ids, join(lp, c.logprobs, k=self.logprobs)
            if ids and ids[-1] == end and c.finish_reason == "stop":  # the teacher ended its thinking
                thought = len(ids) - opener - len(self.think_end_ids)
                unforced = thought if unforced is None else unforced
                if thought < least and extensions < mode.max_extensions:  # too early: "Wait", go on
                    wait, kept = self.continuations[mode.name], len(ids) - len(self.think_end_ids)
                    ids, lp = ids[:kept] + wait, join(lp and lp.cut(kept), len(wait), k=self.logprobs)
                    extensions += 1
                    continue
                break
            if c.finish_reason == "length" and budget is not None and len(ids) < cap:
                # the budget is spent: force the end of thinking, as two_stage does
                ids, lp = ids + self.forced_ids, join(lp, len(self.forced_ids), k=self.logprobs)
                break
            finish = c.finish_reason  # the length cap, an end of text inside the thinking, a stopped loop
            break
        row.update(extensions=extensions, unforced_thinking_tokens=unforced)
        if finish is None and cap - len(ids) > 0:  # thinking done: the answer
            answer = await self._complete(
                prompt_ids + ids,
                request_params(row, max_tokens=cap - len(ids), seed=_step_seed(seed, step), sampling=sampling),
                row["sample_id"],
            )
            ids, finish, lp = ids + answer.token_ids, answer.finish_reason, join(lp, answer.logprobs, k=self.logprobs)
        elif finish is None:  # no room left to answer: cut at the length cap like one pass would
            ids, finish, lp = ids[:cap], "length", lp and lp.cut(cap)
        return Completion(self._decode(ids), ids, finish, lp)


def _step_seed(seed: int, step: int) -> int:
    """The seed of a forced sample's request ``step``: a new request restarts the seeded sampler,
    so each continues with a draw of its own (apart from the seeds of other turns and stages)."""
    return seed if step == 0 else (seed + 7919 * step) & 0x7FFFFFFF


def _contains(ids: list[int], seq: list[int]) -> bool:
    n = len(seq)
    return any(ids[i : i + n] == seq for i in range(len(ids) - n + 1))
