"""Input rows: one raw row (JSON text) -> a validated ``Prompt``, or a ``RowError`` naming the field.

Pure functions over one row, shared by the generation job (``normalize``: a prompt to answer)
and the filter job (``check_messages`` with ``last="assistant"``: a sample to judge). Each error
has a stable snake_case reason, the input field at fault and what was found and expected.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .config import ColumnMap
from .ids import content_prompt_id

ROLES = ("system", "user", "assistant")
_BAD_TEXT = re.compile("[\ud800-\udfff\x00]")


class RowError(ValueError):
    """A row that cannot become a request. ``error`` is a stable snake_case reason."""

    def __init__(self, error: str, field: str | None, detail: str):
        detail = printable(detail)
        super().__init__(detail)
        self.error, self.field, self.detail = error, field, detail


@dataclass(frozen=True)
class Prompt:
    prompt_id: str
    messages: list[dict]
    reference: str | None
    source: str
    id_given: bool
    field: str | None = None  # the input column the conversation came from
    follow_ups: tuple[tuple[str, str | None], ...] = ()  # (prompt, reference) for later turns


def printable(text: str) -> str:
    """``text`` with lone surrogates as ``\\udXXX`` escapes, so it can be stored (Arrow, UTF-8)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def describe(value: Any) -> str:
    text = printable(json.dumps(value, ensure_ascii=False, default=str))
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def check_text(text: str, field: str, where: str | None = None) -> str:
    """Text the teacher will see: no lone surrogate (a truncated UTF-16 pair, common in scraped
    JSON) and no NUL, which tokenizers and Arrow cannot carry faithfully; raises ``RowError`` for the
    input column ``field`` (``where``: the place inside it, e.g. ``messages[0].content``).

    >>> check_text("caf\\u00e9", "prompt")
    'café'
    >>> check_text("bad \\ud800 end", "prompt")
    Traceback (most recent call last):
    ...
    pipeline.rows.RowError: prompt: a lone surrogate U+D800 at char 4; expected valid Unicode text
    """
    where = where or field
    if (m := _BAD_TEXT.search(text)) is not None:
        i, o = m.start(), ord(m.group(0))
        if 0xD800 <= o <= 0xDFFF:
            raise RowError(
                "invalid_text", field, f"{where}: a lone surrogate U+{o:04X} at char {i}; expected valid Unicode text"
            )
        if o == 0:
            raise RowError("invalid_text", field, f"{where}: a NUL character at char {i}; expected text without NUL")
    return text


def unreadable(raw: dict) -> None:
    """The read stage could not read this row as text (``_error``): raise ``RowError``."""
    if raw.get("_error"):
        raise RowError("invalid_utf8" if "UTF-8" in raw["_error"] else "unreadable_row", None, raw["_error"])


def parse_json_row(raw: str) -> dict:
    """One input row's JSON text -> a dict, or ``RowError`` (``invalid_json``)."""
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as e:
        raise RowError("invalid_json", None, f"not valid JSON: {e.msg} (char {e.pos})") from None
    except RecursionError:
        raise RowError("invalid_json", None, "JSON nested too deeply to read (Python's recursion limit)") from None
    if not isinstance(row, dict):
        raise RowError("invalid_json", None, f"expected a JSON object per row, got {describe(row)}")
    return row


def check_messages(value: Any, field: str, last: str = "user") -> list[dict]:
    """A conversation ending in a ``last`` turn, as ``[{role, content}]`` (an assistant turn's
    ``thinking`` kept where given: gpt-oss's format); raises ``RowError``.
    ``last="user"``: a prompt the teacher answers; ``"assistant"``: a sample to judge.

    >>> check_messages([{"role": "user", "content": "hi"}], "messages")
    [{'role': 'user', 'content': 'hi'}]
    >>> check_messages([{"role": "bot", "content": "hi"}], "messages")
    Traceback (most recent call last):
    ...
    pipeline.rows.RowError: messages[0].role: expected one of 'system', 'user', 'assistant', got 'bot'
    """
    if not isinstance(value, list) or not value:
        raise RowError(
            "malformed_messages",
            field,
            f"{field}: expected a non-empty list of {{role, content}} turns, got {describe(value)}",
        )
    out = []
    for i, turn in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise RowError(
                "malformed_messages", field, f"{where}: expected an object with role and content, got {describe(turn)}"
            )
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            raise RowError(
                "malformed_messages",
                field,
                f"{where}.role: expected one of 'system', 'user', 'assistant', got {role!r}",
            )
        if not isinstance(content, str):
            raise RowError("malformed_messages", field, f"{where}.content: expected a string, got {describe(content)}")
        if role == "system" and i != 0:
            raise RowError("malformed_messages", field, f"{where}: a system turn may only come first")
        turn_out = {"role": role, "content": check_text(content, field, f"{where}.content")}
        if turn.get("thinking") is not None:  # gpt-oss's messages: an assistant turn's analysis channel
            if role != "assistant" or not isinstance(turn["thinking"], str):
                raise RowError(
                    "malformed_messages",
                    field,
                    f"{where}.thinking: expected a string on an assistant turn (gpt-oss's analysis), "
                    f"got {describe(turn['thinking'])} on a {role} turn",
                )
            turn_out["thinking"] = check_text(turn["thinking"], field, f"{where}.thinking")
        out.append(turn_out)
    if out[-1]["role"] != last:
        why = "the teacher answers it" if last == "user" else "the sample to judge"
        raise RowError(
            "malformed_messages", field, f"{field}: the last turn must be the {last}'s ({why}), got {out[-1]['role']!r}"
        )
    if last == "user" and not out[-1]["content"].strip():
        raise RowError("empty_prompt", field, f"{field}[{len(out) - 1}].content: the last user turn is empty")
    return out


def normalize(
    raw: str, columns: ColumnMap, system_prompt: str | None = None, default_source: str = "default"
) -> Prompt:
    """One raw input row (JSON text) -> a ``Prompt``, or ``RowError`` naming the field.

    >>> p = normalize('{"prompt": "2+2?", "reference": 4}', ColumnMap())
    >>> p.messages, p.reference, p.source, p.id_given
    ([{'role': 'user', 'content': '2+2?'}], '4', 'default', False)
    >>> normalize('{"prompt": 7}', ColumnMap())
    Traceback (most recent call last):
    ...
    pipeline.rows.RowError: prompt: expected a non-empty string, got int 7
    """
    row = parse_json_row(raw)
    if columns.messages and row.get(columns.messages) is not None:
        messages = check_messages(row[columns.messages], columns.messages)
        from_field = columns.messages
    else:
        field = columns.prompt
        if field is None or row.get(field) is None:
            wanted = " or ".join(repr(c) for c in (columns.prompt, columns.messages) if c)
            raise RowError(
                "missing_prompt",
                field or columns.messages,
                f"expected a prompt in column {wanted}; the row has columns {sorted(row)}",
            )
        prompt = row[field]
        if not isinstance(prompt, str):
            raise RowError("non_text_prompt", field, f"{field}: expected a non-empty string, got {describe(prompt)}")
        if not prompt.strip():
            raise RowError("empty_prompt", field, f"{field}: expected a non-empty string, got {prompt!r}")
        messages = [{"role": "user", "content": check_text(prompt, field)}]
        from_field = field

    system = system_prompt
    if columns.system and row.get(columns.system) is not None:
        system = row[columns.system]
        if not isinstance(system, str):
            raise RowError(
                "invalid_system", columns.system, f"{columns.system}: expected a string, got {describe(system)}"
            )
        check_text(system, columns.system)
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}] + messages

    reference = _reference(row.get(columns.reference) if columns.reference else None, columns.reference)

    given = _id(row.get(columns.id) if columns.id else None)
    if given is not None and (isinstance(given, bool) or not isinstance(given, (str, int))):
        raise RowError("invalid_id", columns.id, f"{columns.id}: expected a string or integer, got {describe(given)}")
    id_given = given is not None and str(given).strip() != ""
    prompt_id = check_text(str(given).strip(), columns.id) if id_given else content_prompt_id(messages)

    source = row.get(columns.source) if columns.source else None
    source = check_text(source, columns.source) if isinstance(source, str) and source.strip() else default_source
    follow_ups = check_follow_ups(row.get(columns.follow_ups), columns.follow_ups) if columns.follow_ups else ()
    return Prompt(prompt_id, messages, reference, source, id_given, from_field, follow_ups)


def _id(value: Any) -> Any:
    """An id as tables give it: an integral float (an int column with gaps, read by pandas) is
    that integer; NaN is no id.

    >>> _id(12.0), _id(float("nan")), _id("a")
    (12, None, 'a')
    """
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def _reference(value: Any, field: str | None) -> str | None:
    if isinstance(value, float) and math.isnan(value):  # a missing value in a numeric column
        return None
    if isinstance(value, bool) or not (value is None or isinstance(value, (str, int, float))):
        raise RowError("invalid_reference", field, f"{field}: expected a string or number, got {describe(value)}")
    return None if value is None else check_text(str(value), field)


def check_follow_ups(value: Any, field: str) -> tuple[tuple[str, str | None], ...]:
    """Follow-up prompts of one row: strings or ``{prompt, reference}`` objects; raises ``RowError``.

    >>> check_follow_ups(["And times 2?", {"prompt": "Plus 1?", "reference": 9}], "follow_ups")
    (('And times 2?', None), ('Plus 1?', '9'))
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RowError("invalid_follow_ups", field, f"{field}: expected a list of prompts, got {describe(value)}")
    out = []
    for i, item in enumerate(value):
        prompt, reference = (item.get("prompt"), item.get("reference")) if isinstance(item, dict) else (item, None)
        if not isinstance(prompt, str) or not prompt.strip():
            raise RowError(
                "invalid_follow_ups",
                field,
                f"{field}[{i}]: expected a non-empty string or {{prompt, reference}}, got {describe(item)}",
            )
        if isinstance(reference, bool) or not (reference is None or isinstance(reference, (str, int, float))):
            raise RowError(
                "invalid_follow_ups",
                field,
                f"{field}[{i}].reference: expected a string or number, got {describe(reference)}",
            )
        out.append((check_text(prompt, field, f"{field}[{i}]"), None if reference is None else str(reference)))
    return tuple(out)


def location(raw: dict) -> str:
    path, row = raw["_path"], raw["_row"]
    return f"{path}#row{row}" if path.endswith((".parquet", ".arrow")) else f"{path}:{row}"


def error_rows(
    raw: dict,
    loc: str,
    err: RowError,
    prompt_id: str | None,
    specs: list,
    run_id: str,
    source: str | None = None,
    stage: str = "prepare",
) -> list[dict]:
    """One error row per sample ``specs`` (``samples.SampleSpec``, or None where a mixed set drew
    no mode for a row without a prompt) of input row ``raw`` at ``loc``: what was wrong, where."""
    rows = []
    for i, spec in enumerate(specs):
        rows.append(
            {
                "status": "error",
                "stage": stage,
                "error": err.error,
                "field": err.field,
                "detail": err.detail,
                "location": loc,
                "input": raw["_raw"],
                "run_id": run_id,
                "prompt_id": prompt_id,
                "source": source,
                # a row without a prompt in a mixed set has no mode drawn yet; a row without a
                # prompt id has no sample ids, so its index numbers its samples (0..n-1): with the
                # location it identifies each error row (``committed.row_keys``)
                "mode": spec.mode.name if spec else None,
                "thinking_budget": spec.budget if spec else None,
                "min_thinking_tokens": spec.min_thinking if spec else None,
                "reasoning_effort": spec.effort if spec else None,
                "sample_index": spec.index if spec and prompt_id else i,
                "sample_id": spec.sample_id(prompt_id) if prompt_id and spec else None,
            }
        )
    return rows
