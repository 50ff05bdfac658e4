"""Parse stage: the engine's output -> a sample of the data contract.

The assistant turn is the prompt-side prefill (an open or empty think block the template
wrote) plus the generated text, exactly as the teacher produced it; it is appended to the
prompt's ``messages`` (for a multi-turn sample the replica has put the earlier turns there).
The dialect splits it into thinking and answer; token counts come from the engine's own token
ids, so ``thinking_tokens`` is exact and comparable to the budget (the last turn's, in a
multi-turn sample; ``completion_tokens`` counts all its turns).

The split is made here, once: ``thinking`` / ``answer`` and the block's shape (working columns
``think_opened``, ``think_closed``, ``think_blocks``) travel with the row, and the filter stage
hands that split to every filter. Judging the sample is that stage's work; parse only describes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from filters.flag_following import flag_turns
from filters.lib.extract import final_span

from ..dialects import Dialect, get_dialect
from ..schema import to_table
from . import Context, Stage


class TokenCounts(NamedTuple):
    thinking: int
    answer: int
    budget_hit: bool


def count_tokens(
    ids: Sequence[int],
    *,
    opened_in_prompt: bool,
    start: Sequence[int],
    end: Sequence[int],
    forced: Sequence[int],
    budget: int | None,
) -> TokenCounts:
    """Thinking / answer token counts of one completion, from its token ids.

    Thinking tokens are those between the think tags (``start`` and ``end``, the ids of the
    dialect's tags: one token each for Qwen3, a run of them for the harmony channels), not counting
    the tags; when the budget forced the end (the ``forced`` ids, ending in the end tag, follow
    exactly ``budget`` thinking tokens) the forced early-stop text is not counted and
    ``budget_hit`` is true. ``opened_in_prompt``: the prompt already holds the start tag (R1-style
    templates).

    >>> S, E = [1], [2]
    >>> count_tokens([1, 5, 6, 2, 9], opened_in_prompt=False, start=S, end=E, forced=E, budget=None)
    TokenCounts(thinking=2, answer=1, budget_hit=False)
    >>> count_tokens([1, 5, 6, 7, 8, 2, 9, 9], opened_in_prompt=False, start=S, end=E, forced=[7, 8, 2], budget=2)
    TokenCounts(thinking=2, answer=2, budget_hit=True)
    >>> count_tokens([5, 6], opened_in_prompt=True, start=S, end=E, forced=E, budget=None)
    TokenCounts(thinking=2, answer=0, budget_hit=False)
    >>> count_tokens([9, 9], opened_in_prompt=False, start=S, end=E, forced=E, budget=None)
    TokenCounts(thinking=0, answer=2, budget_hit=False)
    >>> count_tokens([1, 3, 5, 6, 2, 4, 9], opened_in_prompt=False, start=[1, 3], end=[2, 4], forced=[2, 4], budget=2)
    TokenCounts(thinking=2, answer=1, budget_hit=True)
    """
    ids, start, end, forced = list(ids), list(start), list(end), list(forced)
    if opened_in_prompt:
        first = 0
    elif (at := _find(ids, start)) >= 0:
        first = at + len(start)
    else:  # no think block in the generated text (no-think mode: the prompt held the empty block)
        return TokenCounts(0, len(ids), False)
    last = _find(ids, end, first)
    if last < 0:  # never closed
        return TokenCounts(len(ids) - first, 0, False)
    answer = len(ids) - last - len(end)
    if (
        budget is not None
        and last + len(end) - first == budget + len(forced)
        and ids[first + budget : last + len(end)] == forced
    ):
        return TokenCounts(budget, answer, True)
    return TokenCounts(last - first, answer, False)


def _find(ids: list[int], seq: list[int], at: int = 0) -> int:
    """Where ``seq`` first starts in ``ids`` at or after ``at``; -1 if nowhere."""
    n = len(seq)
    for i in range(at, len(ids) - n + 1):
        if ids[i] == seq[0] and ids[i : i + n] == seq:
            return i
    return -1


@dataclass(frozen=True)
class ParseSettings:
    teacher: str  # model path: its tokenizer names the think tags' token ids
    dialect: str
    trust_remote_code: bool

    @classmethod
    def of(cls, job) -> ParseSettings:
        t = job.teacher
        return cls(t.model, t.dialect, t.engine.trust_remote_code)


class Parse(Stage):
    """Ray Data worker: generated rows -> parsed samples (``STREAM`` schema)."""

    name = "parse"
    reads = (
        "status",
        "prefill",
        "generated",
        "completion_token_ids",
        "thinking_budget",
        "messages",
        "completion_tokens",
        "turn_flags",
        "turn_references",
    )
    writes = (
        "messages",
        "thinking",
        "answer",
        "think_opened",
        "think_closed",
        "think_blocks",
        "budget_hit",
        "thinking_tokens",
        "answer_tokens",
        "completion_tokens",
        "extracted_answer",
        "turns",
        "status",
    )

    @classmethod
    def settings(cls, ctx: Context) -> dict:
        return {"settings": ParseSettings.of(ctx.job)}

    def __init__(self, settings: ParseSettings):
        from transformers import AutoTokenizer

        self.dialect: Dialect = get_dialect(settings.dialect)
        tok = AutoTokenizer.from_pretrained(settings.teacher, trust_remote_code=settings.trust_remote_code)
        single = not self.dialect.keeps_special_tokens  # plain think tags: one token each
        self.start, self.end = (_tag_ids(tok, t, single) for t in (self.dialect.think_start, self.dialect.think_end))
        self.forced = tok.encode(self.dialect.budget_end_str(), add_special_tokens=False)

    def process(self, batch):
        return to_table(
            [self.safe_parse(r) if r["status"] == "pending" else r for r in batch.to_pylist()], stage=self.name
        )

    def safe_parse(self, row: dict) -> dict:
        try:
            return self.parse(row)
        except Exception as e:  # noqa: BLE001 - one odd output must not fail the batch
            row.update(
                status="error",
                stage="parse",
                error="parse_failed",
                field=None,
                detail=f"{type(e).__name__}: {e}",
                completion_token_ids=None,
                generated=None,
            )
            return row

    def parse(self, row: dict) -> dict:
        d = self.dialect
        completion = d.completion(row["prefill"], row["generated"])
        split = d.split(completion)
        counts = count_tokens(
            row["completion_token_ids"],
            opened_in_prompt=row["prefill"].endswith(f"{d.think_start}\n"),
            start=self.start,
            end=self.end,
            forced=self.forced,
            budget=row["thinking_budget"],
        )
        messages = list(row["messages"]) + [d.message(completion)]
        generated = row.get("completion_tokens")  # a multi-turn sample: all its turns (the replica counts)
        turns = None
        if row.get("turn_flags"):
            # which flag each turn had to follow and whether it did (the flag_following filter decides)
            earlier = [d.split(d.text(m)) for m in messages[:-1] if m["role"] == "assistant"]
            turns = [
                {**t, "reference": ref}
                for t, ref in zip(
                    flag_turns(messages, d.think_start, d.think_end, earlier + [split]), row["turn_references"]
                )
            ]
        row.update(
            messages=messages,
            thinking=split.thinking,
            answer=split.answer,
            budget_hit=counts.budget_hit,
            think_opened=split.opened,
            think_closed=split.closed,
            think_blocks=split.blocks,
            thinking_tokens=counts.thinking,
            answer_tokens=counts.answer,
            completion_tokens=generated if generated is not None else len(row["completion_token_ids"]),
            extracted_answer=final_span(split.answer),
            turns=turns,
            status="parsed",
            completion_token_ids=None,
            generated=None,
        )
        return row


def _tag_ids(tok, text: str, single: bool) -> list[int]:
    """A think tag's ids: ``single``, one token (a ``<think>`` the tokenizer splits is not the teacher's)."""
    ids = tok.encode(text, add_special_tokens=False)
    if single and len(ids) != 1:
        raise ValueError(
            f"the dialect's think tag {text!r} is not one token in this tokenizer ({ids}); token counts need it to be"
        )
    return ids


STAGE = Parse
