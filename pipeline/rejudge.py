"""Re-judging an existing dataset: rows with ``messages`` -> parsed samples for the filter stage.

Input rows (JSONL or Parquet): ``messages`` (the last message is the assistant's, its content
holding the think block as the teacher wrote it), optional ``reference``, optional ``mode``
(``think`` / ``no_think``; inferred from the think block when absent or another name), optional
``id``. Rows this job wrote itself carry the whole data contract and keep it: identity, token
counts, sampling and so on are copied through, the verdicts and ``reject_reason`` are new.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .config import FiltersConfig, RayConfig, Strict
from .dialects import get_dialect
from .ids import content_prompt_id
from .prepare import ROLES, RowError, _describe, _location, parse_json_row
from .schema import to_table
from .thinking import last_boxed


class FilterJobConfig(Strict):
    """Config of ``jobs.filter``: the ``filters`` section, the think tags' dialect, Ray."""

    filters: FiltersConfig = FiltersConfig()
    dialect: str = "qwen3"
    """Whose think tags the samples use (``qwen3``, ``r1``, ``tiny``)."""
    ray: RayConfig = RayConfig()
    rows_per_file: int = Field(default=10_000, gt=0)


# Contract columns copied from an input row when present, with the Python types they must have.
_COPY: dict[str, tuple[type, ...]] = {
    "prompt_id": (str,), "run_id": (str,), "source": (str,), "flag": (str,), "finish_reason": (str,),
    "teacher": (str,), "thinking_budget": (int,), "budget_strategy": (str,), "budget_hit": (bool,), "prompt_tokens": (int,),
    "thinking_tokens": (int,), "answer_tokens": (int,), "completion_tokens": (int,), "seed": (int,),
    "sample_index": (int,), "sampling": (dict,), "prompt_text": (str,), "turns": (list,), "flag_turn": (str,),
}


def load_row(raw: str, dialect) -> dict:
    """One raw input row -> a ``parsed`` stream row, or ``RowError`` naming the field."""
    row = parse_json_row(raw)
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RowError("malformed_messages", "messages",
                       f"messages: expected a non-empty list of {{role, content}} turns, got {_describe(messages)}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise RowError("malformed_messages", "messages",
                           f"messages[{i}]: expected {{role: system/user/assistant, content: string}}, got {_describe(m)}")
    if messages[-1]["role"] != "assistant":
        raise RowError("malformed_messages", "messages",
                       f"messages: the last turn must be the assistant's (the sample to judge), got {messages[-1]['role']!r}")
    completion = messages[-1]["content"]
    split = dialect.split(completion)
    mode = row.get("mode")
    if mode not in (None, "think", "no_think") and not isinstance(mode, str):
        raise RowError("invalid_mode", "mode", f"mode: expected 'think', 'no_think' or absent, got {_describe(mode)}")
    expected = {"think": True, "no_think": False}.get(mode, bool(split.thinking.strip()))
    reference = row.get("reference")
    if isinstance(reference, bool) or not (reference is None or isinstance(reference, (str, int, float))):
        raise RowError("invalid_reference", "reference", f"reference: expected a string or number, got {_describe(reference)}")
    out: dict[str, Any] = {}
    for key, types in _COPY.items():
        value = row.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (types == (int,) and isinstance(value, bool)):
            raise RowError("invalid_column", key, f"{key}: expected {types[0].__name__}, got {_describe(value)}")
        out[key] = value
    given = row.get("sample_id") or row.get("id")
    out.update(
        status="parsed", messages=[{"role": m["role"], "content": m["content"]} for m in messages],
        sample_id=str(given) if given is not None else content_prompt_id(messages),
        mode=mode or ("think" if expected else "no_think"), thinking_expected=expected,
        reference=None if reference is None else str(reference),
        thinking=split.thinking, answer=split.answer, extracted_answer=last_boxed(split.answer),
    )
    out.setdefault("prompt_id", content_prompt_id(messages[:-1]))
    return out


class LoadSamples:
    """Ray Data worker: raw input rows -> ``parsed`` rows or ``error`` rows."""

    def __init__(self, dialect: str):
        self.dialect = get_dialect(dialect)

    def __call__(self, batch):
        rows = []
        for raw in batch.to_pylist():
            try:
                rows.append(load_row(raw["_raw"], self.dialect))
            except RowError as e:
                rows.append({"status": "error", "stage": "load", "error": e.error, "field": e.field,
                             "detail": e.detail, "location": _location(raw), "input": raw["_raw"]})
        return to_table(rows)

