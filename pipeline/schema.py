"""The data contract, as Arrow schemas.

Every row that flows between stages has the ``STREAM`` schema: the sample columns of the
contract, the error columns, and a few working columns that are never written. The writer
projects each row onto one of the output schemas according to its ``status``:

- ``accepted/`` and ``rejected/``: ``SAMPLE`` (one row per generated sample);
- ``errors/``: ``ERROR`` (one row per sample that could not be made, with the reason);
- ``earlier/``: ``EARLIER`` (one row per prompt an earlier run already generated).

A fixed schema per stage keeps blocks concatenable whatever mix of rows a batch holds
(an all-errors batch has the same columns as a clean one).
"""

from __future__ import annotations

import pyarrow as pa

from .logprobs import WORKING as LOGPROB_WORKING

#: ``thinking``: an assistant turn's analysis channel, in gpt-oss's messages format (its template
#: renders ``thinking`` and ``content``); null for every other teacher, whose think block is in
#: ``content``. ``content`` is null only for a gpt-oss turn cut off inside its analysis.
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string()), ("thinking", pa.string())]))

SAMPLING = pa.struct(
    [
        ("temperature", pa.float64()),
        ("top_p", pa.float64()),
        ("top_k", pa.int64()),
        ("min_p", pa.float64()),
        ("presence_penalty", pa.float64()),
        ("repetition_penalty", pa.float64()),
        ("max_tokens", pa.int64()),
    ]
)

VERDICTS = pa.list_(
    pa.struct(
        [
            ("filter", pa.string()),
            ("passed", pa.bool_()),
            ("reason", pa.string()),
            ("score", pa.float64()),
            ("detail", pa.string()),
        ]
    )
)

#: Per assistant turn of a multi-turn sample: the flag it had to follow (the latest given), whether
#: its think block holds thinking, whether that matches the flag (null: no flag to follow), and the
#: reference answer of the question it answers (null: none known), which wrong_answer checks.
TURNS = pa.list_(
    pa.struct([("flag", pa.string()), ("thinking", pa.bool_()), ("followed", pa.bool_()), ("reference", pa.string())])
)

#: accepted/ and rejected/ rows (GUIDE "Data contract").
SAMPLE = pa.schema(
    [
        # identity
        ("sample_id", pa.string()),
        ("prompt_id", pa.string()),
        ("run_id", pa.string()),
        ("source", pa.string()),
        ("location", pa.string()),  # the input row it came from: file:line (JSONL) or file#rowN (Parquet)
        # training: the conversation, ending in the assistant turn exactly as the teacher wrote it
        ("messages", MESSAGES),
        # the same split as TRL's conversational prompt-completion format (``conversation_split``): the
        # messages up to the last user turn, and the teacher's turn; a trainer given these columns
        # takes the loss on the completion only
        ("prompt", MESSAGES),
        ("completion", MESSAGES),
        # analysis
        ("thinking", pa.string()),
        ("answer", pa.string()),
        ("mode", pa.string()),
        ("flag", pa.string()),  # the soft flag the last turn follows (null = none given)
        ("flag_turn", pa.string()),  # where the flag was put: user / system
        ("turns", TURNS),  # multi-turn samples: one entry per assistant turn
        ("thinking_budget", pa.int64()),
        ("budget_strategy", pa.string()),
        ("budget_hit", pa.bool_()),
        # s1's forcing (a mode's min_thinking_tokens): the least thinking asked, how often the end of
        # thinking was replaced by the continuation word, and the thinking when the teacher first ended it
        ("min_thinking_tokens", pa.int64()),
        ("extensions", pa.int64()),
        ("unforced_thinking_tokens", pa.int64()),
        ("reasoning_effort", pa.string()),  # gpt-oss's Reasoning: level the sample was made at (null: not set)
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("thinking_tokens", pa.int64()),
        ("answer_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("reference", pa.string()),
        ("extracted_answer", pa.string()),
        ("teacher", pa.string()),
        ("sampling", SAMPLING),
        ("seed", pa.int64()),
        ("sample_index", pa.int64()),
        ("verdicts", VERDICTS),
        ("reject_reason", pa.string()),
        # adaptive mode choice: the prompt's verified accuracy per mode and the mode it chose
        ("acc_think", pa.float64()),
        ("acc_no_think", pa.float64()),
        ("chosen_mode", pa.string()),
        # sample until verified (generation.accepted_per_prompt): of this sample's prompt in its mode and
        # budget, the samples made, how many passed, and their ratio (a difficulty signal); null otherwise
        ("prompt_samples", pa.int64()),
        ("prompt_accepted", pa.int64()),
        ("prompt_pass_rate", pa.float64()),
        # the exact prompt text the engine saw; only filled when output.keep_prompt_text is on
        ("prompt_text", pa.string()),
    ]
)

#: errors/ rows: a sample that could not be made, and why.
ERROR = pa.schema(
    [
        ("sample_id", pa.string()),
        ("prompt_id", pa.string()),
        ("run_id", pa.string()),
        ("source", pa.string()),
        ("mode", pa.string()),
        ("sample_index", pa.int64()),
        # the sample's budget, thinking minimum and effort (null: none; or no prompt to make samples of)
        ("thinking_budget", pa.int64()),
        ("min_thinking_tokens", pa.int64()),
        ("reasoning_effort", pa.string()),
        ("stage", pa.string()),  # read / prepare / render / generate / parse
        ("error", pa.string()),  # stable snake_case reason, e.g. missing_prompt
        ("field", pa.string()),  # the input field at fault, when there is one
        ("detail", pa.string()),  # what was found and what was expected
        ("location", pa.string()),  # file:line (JSONL) or file#row (Parquet, saved datasets)
        ("input", pa.string()),  # the raw input row (JSON), so nothing is lost
    ]
)

#: earlier/ rows: a prompt this run skipped because a completed earlier run under the same
#: output path generated it with the same generation settings (``output.incremental``). One row
#: per prompt; it stands for the prompt's ``samples_per_input`` samples in the accounting.
EARLIER = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("run_id", pa.string()),
        ("source", pa.string()),
        ("location", pa.string()),
        ("generated_by", pa.string()),  # the run_id whose folder holds the prompt's samples
    ]
)

#: Working columns, dropped by the writer.
_WORKING = [
    ("status", pa.string()),  # pending -> parsed -> accepted / rejected; or error
    ("thinking_expected", pa.bool_()),  # the mode promises a non-empty think block
    ("prompt_token_ids", pa.list_(pa.int32())),
    ("prefill", pa.string()),  # assistant-side text already in the prompt
    ("generated", pa.string()),  # raw engine text (without prefill)
    ("completion_token_ids", pa.list_(pa.int32())),
    ("t_submit", pa.float64()),  # wall clock when the request entered the engine
    ("t_done", pa.float64()),  # ... and when its last token came back
    ("replica", pa.string()),  # which replica generated it (host:pid)
    ("turn_flags", pa.list_(pa.string())),  # multi-turn: the flag drawn for each turn
    ("follow_ups", pa.list_(pa.string())),  # multi-turn: the user prompts of turns 2..K
    ("turn_references", pa.list_(pa.string())),  # multi-turn: each turn's reference (or null)
    # the think split parse made (with ``thinking`` / ``answer``), so the filters need not split again
    ("think_opened", pa.bool_()),
    ("think_closed", pa.bool_()),
    ("think_blocks", pa.int64()),
    # output.logprobs: the teacher's top-k per generated token, for the sink's logprobs/ sidecar
    *LOGPROB_WORKING,
]

STREAM = pa.schema(
    list(SAMPLE)
    + [f for f in ERROR if f.name not in SAMPLE.names]
    + [f for f in EARLIER if f.name not in SAMPLE.names and f.name not in ERROR.names]
    + [pa.field(n, t) for n, t in _WORKING]
)


def with_pandas_ints(schema: pa.Schema) -> pa.Schema:
    """``schema`` with pandas metadata naming its integer columns ``Int64``: ``pandas.read_parquet``
    (and ``pyarrow``'s ``to_pandas``) then keep them integers with ``<NA>`` for a null, where
    pandas would otherwise turn a column with one null (``thinking_budget``) into floats.

    >>> import json
    >>> s = with_pandas_ints(pa.schema([("n", pa.int64()), ("t", pa.string())]))
    >>> [c["numpy_type"] for c in json.loads(s.metadata[b"pandas"])["columns"]]
    ['Int64', 'object']
    """
    import pandas as pd

    frame = pd.DataFrame(
        {
            f.name: pd.array([], dtype="Int64") if pa.types.is_integer(f.type) else pd.Series([], dtype=object)
            for f in schema
        }
    )
    meta = pa.Schema.from_pandas(frame, preserve_index=False).metadata
    return schema.with_metadata({**(schema.metadata or {}), b"pandas": meta[b"pandas"]})


def conversation_split(messages: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``messages`` as (prompt, completion): every message but the last, and the last one, the
    teacher's turn. A row whose conversation does not end in an assistant turn gets nulls.

    >>> m = pa.array([[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    ...               None, [{"role": "user", "content": "q"}]], MESSAGES)
    >>> prompt, completion = conversation_split(m)
    >>> prompt.to_pylist()
    [[{'role': 'user', 'content': 'q', 'thinking': None}], None, None]
    >>> completion.to_pylist()
    [[{'role': 'assistant', 'content': 'a', 'thinking': None}], None, None]
    """
    import numpy as np
    import pyarrow.compute as pc

    m = messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    n = pc.fill_null(pc.list_value_length(m), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = m.flatten()  # the values of the non-null lists, in order
    ends = np.cumsum(n)
    assistant = pc.fill_null(pc.equal(pc.struct_field(flat, "role"), "assistant"), False).to_numpy(zero_copy_only=False)
    ok = (n > 0) & (assistant[np.maximum(ends - 1, 0)] if len(flat) else False)
    pos = np.arange(len(flat)) - np.repeat(ends - n, n)  # each value's place in its conversation
    in_ok, length = np.repeat(ok, n), np.repeat(n, n)
    offsets = [np.concatenate([[0], np.cumsum(np.where(ok, n - 1, 0))]), np.concatenate([[0], np.cumsum(ok)])]
    picks = [in_ok & (pos < length - 1), in_ok & (pos == length - 1)]
    mask = pa.array(~ok)
    return tuple(
        pa.ListArray.from_arrays(pa.array(o, pa.int32()), flat.filter(pa.array(p)), mask=mask)
        for o, p in zip(offsets, picks)
    )


def to_table(rows: list[dict], schema: pa.Schema = STREAM, stage: str | None = None) -> pa.Table:
    """Rows (dicts, missing keys = null) -> a table with exactly ``schema``'s columns.

    A row Arrow cannot hold (a value of the wrong type, text that is not valid Unicode) does not
    fail the batch: it becomes an error row of ``stage`` saying which row and why; the others go on.
    """
    projected = [{k: r.get(k) for k in schema.names} for r in rows]
    try:
        return pa.Table.from_pylist(projected, schema=schema)
    except (pa.ArrowException, UnicodeError, OverflowError, TypeError, ValueError):
        pass
    tables = []
    for r in projected:
        try:
            tables.append(pa.Table.from_pylist([r], schema=schema))
        except (pa.ArrowException, UnicodeError, OverflowError, TypeError, ValueError) as e:
            keep = {k: r.get(k) for k in ("sample_id", "prompt_id", "run_id", "mode", "sample_index", "location")}
            bad = {
                **{k: v if isinstance(v, (str, int)) or v is None else None for k, v in keep.items()},
                "status": "error",
                "stage": stage or "unknown",
                "error": "unstorable_row",
                "detail": f"the row cannot be stored: {type(e).__name__}: {e}"[:500]
                .encode("utf-8", "replace")
                .decode(),
                "input": None,
            }
            tables.append(pa.Table.from_pylist([{k: bad.get(k) for k in schema.names}], schema=schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()
