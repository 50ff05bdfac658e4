"""Load stage (the filter job): rows of an existing dataset -> parsed samples for the filter stage.

Input rows (JSONL or Parquet): ``messages`` (the last message is the assistant's, its content
holding the think block as the teacher wrote it), optional ``reference``, optional ``mode``
(``think`` / ``no_think``; inferred from the think block when absent or another name), optional
``id``. Rows this job wrote itself carry the whole data contract and keep it: identity, token
counts, sampling and so on are copied through, the verdicts and ``reject_reason`` are new.
"""

from __future__ import annotations

from typing import Any

from filters.lib.extract import final_span

from ..dialects import get_dialect
from ..ids import content_prompt_id
from ..rows import RowError, check_messages, describe, location, parse_json_row, unreadable
from ..schema import to_table
from . import Context, Stage

# Contract columns copied from an input row when present, with the Python types they must have.
_COPY: dict[str, tuple[type, ...]] = {
    "prompt_id": (str,),
    "run_id": (str,),
    "source": (str,),
    "flag": (str,),
    "finish_reason": (str,),
    "teacher": (str,),
    "thinking_budget": (int,),
    "budget_strategy": (str,),
    "budget_hit": (bool,),
    "prompt_tokens": (int,),
    "thinking_tokens": (int,),
    "answer_tokens": (int,),
    "completion_tokens": (int,),
    "seed": (int,),
    "sample_index": (int,),
    "sampling": (dict,),
    "prompt_text": (str,),
    "turns": (list,),
    "flag_turn": (str,),
}


def load_row(raw: str, dialect) -> dict:
    """One raw input row -> a ``parsed`` stream row, or ``RowError`` naming the field."""
    row = parse_json_row(raw)
    messages = check_messages(row.get("messages"), "messages", last="assistant")
    split = dialect.split(dialect.text(messages[-1]))
    mode = row.get("mode")
    if mode not in (None, "think", "no_think") and not isinstance(mode, str):
        raise RowError("invalid_mode", "mode", f"mode: expected 'think', 'no_think' or absent, got {describe(mode)}")
    expected = {"think": True, "no_think": False}.get(mode, bool(split.thinking.strip()))
    reference = row.get("reference")
    if isinstance(reference, bool) or not (reference is None or isinstance(reference, (str, int, float))):
        raise RowError(
            "invalid_reference", "reference", f"reference: expected a string or number, got {describe(reference)}"
        )
    out: dict[str, Any] = {}
    for key, types in _COPY.items():
        value = row.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (types == (int,) and isinstance(value, bool)):
            raise RowError("invalid_column", key, f"{key}: expected {types[0].__name__}, got {describe(value)}")
        out[key] = value
    given = row.get("sample_id") or row.get("id")
    out.update(
        status="parsed",
        messages=messages,
        sample_id=str(given) if given is not None else content_prompt_id(messages),
        mode=mode or ("think" if expected else "no_think"),
        thinking_expected=expected,
        reference=None if reference is None else str(reference),
        thinking=split.thinking,
        answer=split.answer,
        extracted_answer=final_span(split.answer),
        think_opened=split.opened,
        think_closed=split.closed,
        think_blocks=split.blocks,
    )
    out.setdefault("prompt_id", content_prompt_id(messages[:-1]))
    return out


class Load(Stage):
    """Ray Data worker: raw input rows -> ``parsed`` rows or ``error`` rows."""

    name = "load"
    reads = ("_path", "_row", "_raw")  # and "_error" when the read stage could not decode the row
    writes = (
        "status",
        "messages",
        "sample_id",
        "mode",
        "thinking_expected",
        "reference",
        "thinking",
        "answer",
        "extracted_answer",
        "think_opened",
        "think_closed",
        "think_blocks",
        *_COPY,  # copied when present
        "stage",
        "error",
        "field",
        "detail",
        "location",
        "input",
    )

    @classmethod
    def settings(cls, ctx: Context) -> dict:
        return {"dialect": ctx.job.dialect}

    @classmethod
    def describe(cls, ctx: Context) -> str:
        return "load (rows with messages -> samples)"

    def __init__(self, dialect: str):
        self.dialect = get_dialect(dialect)

    def process(self, batch):
        rows = []
        for raw in batch.to_pylist():
            try:
                unreadable(raw)
                rows.append(load_row(raw["_raw"], self.dialect))
            except Exception as e:  # noqa: BLE001 - a RowError names the field; anything else is still one row
                e = e if isinstance(e, RowError) else RowError("load_failed", None, f"{type(e).__name__}: {e}")
                rows.append(
                    {
                        "status": "error",
                        "stage": "load",
                        "error": e.error,
                        "field": e.field,
                        "detail": e.detail,
                        "location": location(raw),
                        "input": raw["_raw"],
                    }
                )
        return to_table(rows, stage=self.name)


STAGE = Load
