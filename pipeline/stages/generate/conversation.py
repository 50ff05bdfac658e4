"""Multi-turn samples (a mode with ``turns`` > 1): a conversation generated turn by turn in one
replica. After each assistant turn the next follow-up prompt (with its drawn flag) is appended,
the conversation is rendered again by the teacher's template (which strips earlier turns'
thinking, as at inference) and generated, each turn with its budget (``ThinkingControl``). A
mixin of ``Generate``: it needs the replica's ``dialect``, ``modes``, ``tokenizer``, ``max_len``,
``logprobs`` and ``_generate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from filters.lib.text import last_boxed

from ...engine import Completion

if TYPE_CHECKING:
    from ...config import ModeConfig
    from ...dialects import Dialect


class ContextFull(RuntimeError):
    """A multi-turn conversation outgrew the context window before its last turn."""


class Conversation:
    # what the replica that mixes this in provides (``Generate.__init__`` sets them)
    dialect: Dialect
    modes: dict[str, ModeConfig]
    tokenizer: Any
    max_len: int  # teacher.engine.max_model_len
    logprobs: int | None
    # and ``_generate`` (``ThinkingControl``'s: one assistant turn under its budget), not stubbed
    # here: a stub would come before it in ``Generate``'s bases

    async def _conversation(self, row: dict) -> Completion:
        """A multi-turn sample, turn by turn. Leaves in ``row`` the conversation up to the last
        user turn and that turn's prompt; returns the last turn (the one parse appends). A turn
        cut by the length cap ends the conversation there (the format filter rejects it)."""
        messages, prompt_ids, prefill = list(row["messages"]), row["prompt_token_ids"], row["prefill"]
        prompt, generated, latest, previous = row.get("prompt_text"), 0, None, ""
        mode = self.modes[row["mode"]]
        for turn, flag in enumerate(row["turn_flags"]):
            latest = flag or latest  # the flag in force: each turn samples as its mode (row["sampling"]: the last)
            sampling = self.dialect.sampling(mode, thinking=mode.thinks_under(latest))
            if turn:
                answer = self.dialect.split(previous).answer
                text = row["follow_ups"][turn - 1].replace("{answer}", last_boxed(answer) or answer.strip())
                messages = messages + [self.dialect.message(previous), {"role": "user", "content": text}]
                messages = self.dialect.with_flag(messages, flag, "user")
                prompt = self.dialect.render(self.tokenizer, messages, mode.thinking, row.get("reasoning_effort"))
                prompt_ids = self.tokenizer.encode(prompt, add_special_tokens=False)
                if len(prompt_ids) >= self.max_len:
                    raise ContextFull(
                        f"turn {turn + 1} of {len(row['turn_flags'])}: the conversation is "
                        f"{len(prompt_ids)} tokens, teacher.engine.max_model_len is {self.max_len}"
                    )
                prefill = self.dialect.prefill(prompt)
            # each turn its own draw (two_stage takes seed + 1 for a continuation)
            c = await self._generate(row, prompt_ids, prefill, row["seed"] + 2 * turn, sampling)
            generated += len(c.token_ids)
            previous = self.dialect.completion(prefill, c.text)
            if c.finish_reason in ("length", "repetition"):  # cut, or stopped as a loop: no next turn
                break
        # the row describes its last turn - which may come early, if a turn was cut
        if self.logprobs is not None:
            row["lp_prompt_ids"] = prompt_ids
        row.update(
            messages=messages,
            prefill=prefill,
            prompt_tokens=len(prompt_ids),
            completion_tokens=generated,
            reference=row["turn_references"][turn],
            flag=latest,
            thinking_expected=mode.thinks_under(latest),
            sampling=sampling,
        )
        if row.get("prompt_text") is not None:  # output.keep_prompt_text: the prompt of the last turn
            row["prompt_text"] = prompt
        return c
