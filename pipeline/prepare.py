"""Prepare stage: raw input rows -> one request per (prompt, mode, budget, sample), rendered.

For every input row this stage emits exactly ``len(plan)`` rows: either ``pending`` requests
(prompt rendered by the teacher's dialect and tokenized, seed and ids fixed) or ``error`` rows
saying which field was wrong and what was expected. So nothing is lost here, and the writer
can account for ``inputs x samples`` exactly.

``normalize`` is a pure function over one row; ``Prepare`` is the Ray Data worker that holds
the tokenizer (loaded once) and talks to the ``IdLedger`` actor that catches duplicate ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .config import ColumnMap, JobConfig, ModeConfig
from .ids import content_prompt_id, fingerprint, sample_id, sample_seed
from .schema import to_table

ROLES = ("system", "user", "assistant")


class RowError(ValueError):
    """A row that cannot become a request. ``error`` is a stable snake_case reason."""

    def __init__(self, error: str, field: str | None, detail: str):
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


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def parse_json_row(raw: str) -> dict:
    """One input row's JSON text -> a dict, or ``RowError`` (``invalid_json``)."""
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as e:
        raise RowError("invalid_json", None, f"not valid JSON: {e.msg} (char {e.pos})") from None
    if not isinstance(row, dict):
        raise RowError("invalid_json", None, f"expected a JSON object per row, got {_describe(row)}")
    return row


def check_messages(value: Any, field: str) -> list[dict]:
    """A conversation ending in a user turn, as ``[{role, content}]``; raises ``RowError``.

    >>> check_messages([{"role": "user", "content": "hi"}], "messages")
    [{'role': 'user', 'content': 'hi'}]
    >>> check_messages([{"role": "bot", "content": "hi"}], "messages")
    Traceback (most recent call last):
    ...
    pipeline.prepare.RowError: messages[0].role: expected one of 'system', 'user', 'assistant', got 'bot'
    """
    if not isinstance(value, list) or not value:
        raise RowError("malformed_messages", field,
                       f"{field}: expected a non-empty list of {{role, content}} turns, got {_describe(value)}")
    out = []
    for i, turn in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise RowError("malformed_messages", field, f"{where}: expected an object with role and content, "
                                                       f"got {_describe(turn)}")
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            raise RowError("malformed_messages", field,
                           f"{where}.role: expected one of 'system', 'user', 'assistant', got {role!r}")
        if not isinstance(content, str):
            raise RowError("malformed_messages", field, f"{where}.content: expected a string, got {_describe(content)}")
        if role == "system" and i != 0:
            raise RowError("malformed_messages", field, f"{where}: a system turn may only come first")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "user":
        raise RowError("malformed_messages", field,
                       f"{field}: the last turn must be the user's (the teacher answers it), got {out[-1]['role']!r}")
    if not out[-1]["content"].strip():
        raise RowError("empty_prompt", field, f"{field}[{len(out) - 1}].content: the last user turn is empty")
    return out


def normalize(raw: str, columns: ColumnMap, system_prompt: str | None = None,
              default_source: str = "default") -> Prompt:
    """One raw input row (JSON text) -> a ``Prompt``, or ``RowError`` naming the field.

    >>> p = normalize('{"prompt": "2+2?", "reference": 4}', ColumnMap())
    >>> p.messages, p.reference, p.source, p.id_given
    ([{'role': 'user', 'content': '2+2?'}], '4', 'default', False)
    >>> normalize('{"prompt": 7}', ColumnMap())
    Traceback (most recent call last):
    ...
    pipeline.prepare.RowError: prompt: expected a non-empty string, got int 7
    """
    row = parse_json_row(raw)
    if columns.messages and row.get(columns.messages) is not None:
        messages = check_messages(row[columns.messages], columns.messages)
        from_field = columns.messages
    else:
        field = columns.prompt
        if field is None or row.get(field) is None:
            wanted = " or ".join(repr(c) for c in (columns.prompt, columns.messages) if c)
            raise RowError("missing_prompt", field or columns.messages,
                           f"expected a prompt in column {wanted}; the row has columns {sorted(row)}")
        prompt = row[field]
        if not isinstance(prompt, str):
            raise RowError("non_text_prompt", field, f"{field}: expected a non-empty string, got {_describe(prompt)}")
        if not prompt.strip():
            raise RowError("empty_prompt", field, f"{field}: expected a non-empty string, got {prompt!r}")
        messages = [{"role": "user", "content": prompt}]
        from_field = field

    system = system_prompt
    if columns.system and row.get(columns.system) is not None:
        system = row[columns.system]
        if not isinstance(system, str):
            raise RowError("invalid_system", columns.system,
                           f"{columns.system}: expected a string, got {_describe(system)}")
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}] + messages

    reference = row.get(columns.reference) if columns.reference else None
    if isinstance(reference, bool) or not (reference is None or isinstance(reference, (str, int, float))):
        raise RowError("invalid_reference", columns.reference,
                       f"{columns.reference}: expected a string or number, got {_describe(reference)}")
    reference = None if reference is None else str(reference)

    given = row.get(columns.id) if columns.id else None
    if given is not None and (isinstance(given, bool) or not isinstance(given, (str, int))):
        raise RowError("invalid_id", columns.id, f"{columns.id}: expected a string or integer, got {_describe(given)}")
    id_given = given is not None and str(given).strip() != ""
    prompt_id = str(given).strip() if id_given else content_prompt_id(messages)

    source = row.get(columns.source) if columns.source else None
    source = source if isinstance(source, str) and source.strip() else default_source
    return Prompt(prompt_id, messages, reference, source, id_given, from_field)


# ------------------------------------------------------------------------ the plan

@dataclass(frozen=True)
class SampleSpec:
    """One sample to draw for every prompt: which mode, which budget, which draw."""

    mode: ModeConfig
    budget: int | None
    index: int
    generation_fp: str  # what, besides the prompt, decides the sample


def plan_samples(cfg: JobConfig) -> list[SampleSpec]:
    """The samples drawn per prompt: every mode x budget (a sweep) x ``samples_per_prompt``."""
    specs = []
    for mode in cfg.generation.modes:
        # the budget is part of the sample id, not of the fingerprint: adding a budget to a sweep
        # keeps the ids of the samples already made at the others
        fp = fingerprint({"teacher": cfg.teacher.model, "dialect": cfg.teacher.dialect,
                          "mode": mode.model_dump(exclude={"thinking_budget"}), "seed": cfg.generation.seed})
        for budget in mode.budgets:
            for i in range(cfg.generation.samples_per_prompt):
                specs.append(SampleSpec(mode, budget, i, fp))
    return specs


# ---------------------------------------------------------------- duplicate ids

class IdLedger:
    """Ray actor: the first row to claim a prompt id owns it; later rows are duplicates.

    Claims are keyed by the row's location, so a retried batch re-claims its own ids.
    """

    def __init__(self):
        self._owner: dict[str, str] = {}

    def claim(self, items: list[tuple[str, str]]) -> list[str | None]:
        """For each ``(prompt_id, location)``: ``None`` if it owns the id, else the owner's location."""
        out = []
        for pid, loc in items:
            owner = self._owner.setdefault(pid, loc)
            out.append(None if owner == loc else owner)
        return out


# ---------------------------------------------------------------------- the stage

class Prepare:
    """Ray Data worker: raw rows -> pending requests or error rows (``STREAM`` schema)."""

    def __init__(self, cfg: JobConfig, ledger=None):
        from transformers import AutoTokenizer

        from .dialects import get_dialect

        self.cfg = cfg
        self.specs = plan_samples(cfg)
        self.dialect = get_dialect(cfg.teacher.dialect)
        self.tokenizer = AutoTokenizer.from_pretrained(
            cfg.teacher.model, trust_remote_code=cfg.teacher.engine.trust_remote_code)
        self.ledger = ledger
        self.max_len = cfg.teacher.engine.max_model_len

    def __call__(self, batch):
        import ray

        raws = batch.to_pylist()
        prompts: list[Prompt | RowError] = []
        for r in raws:
            try:
                prompts.append(normalize(r["_raw"], self.cfg.input.columns, self.cfg.input.system_prompt,
                                         self.cfg.input.default_source))
            except RowError as e:
                prompts.append(e)
        locations = [_location(r) for r in raws]
        claims = [(p.prompt_id, loc) for p, loc in zip(prompts, locations) if isinstance(p, Prompt)]
        owners = iter(ray.get(self.ledger.claim.remote(claims)) if claims and self.ledger else [None] * len(claims))
        out: list[dict] = []
        for raw, loc, p in zip(raws, locations, prompts):
            if isinstance(p, Prompt) and (owner := next(owners)) is not None:
                what = "id" if p.id_given else "prompt"
                field = self.cfg.input.columns.id if p.id_given else p.field
                p = RowError(f"duplicate_{what}", field,
                             f"{what} {p.prompt_id!r} already came from {owner}; each prompt must be unique")
            if isinstance(p, RowError):
                out.extend(self._errors(raw, loc, p, prompt_id=None))
            else:
                out.extend(self._requests(raw, loc, p))
        return to_table(out)

    def _requests(self, raw: dict, loc: str, p: Prompt) -> list[dict]:
        rendered: dict[str, tuple[list[dict], str, list[int]] | RowError] = {}
        rows = []
        for spec in self.specs:
            mode = spec.mode
            if mode.name not in rendered:
                rendered[mode.name] = self._render(p, mode)
            r = rendered[mode.name]
            if isinstance(r, RowError):
                rows.extend(self._errors(raw, loc, r, p.prompt_id, [spec], p.source, stage="render"))
                continue
            messages, prompt_text, ids = r
            rows.append({
                "status": "pending",
                "sample_id": sample_id(p.prompt_id, mode.name, spec.budget, spec.index, spec.generation_fp),
                "prompt_id": p.prompt_id, "run_id": self.cfg.output.run_id, "source": p.source,
                "messages": messages, "mode": mode.name, "flag": mode.flag,
                "thinking_expected": mode.thinking and mode.flag != "/no_think",
                "thinking_budget": spec.budget, "reference": p.reference, "teacher": self.cfg.teacher.model,
                "sampling": mode.sampling.model_dump(),
                "seed": sample_seed(self.cfg.generation.seed, p.prompt_id, mode.name, spec.index),
                "budget_strategy": mode.budget_strategy if spec.budget is not None else None,
                "sample_index": spec.index, "prompt_tokens": len(ids), "prompt_token_ids": ids,
                "prefill": self.dialect.prefill(prompt_text), "location": loc,
                "prompt_text": prompt_text if self.cfg.output.keep_prompt_text else None,
            })
        return rows

    def _render(self, p: Prompt, mode: ModeConfig):
        field = p.field
        try:
            messages = self.dialect.with_flag(p.messages, mode.flag, mode.flag_turn)
            text = self.dialect.render(self.tokenizer, messages, mode.thinking)
        except Exception as e:  # noqa: BLE001 - a template may raise anything (jinja raise_exception)
            return RowError("render_failed", field, f"the chat template failed in mode {mode.name!r}: {e}")
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) >= self.max_len:
            return RowError("prompt_too_long", field,
                            f"the rendered prompt is {len(ids)} tokens in mode {mode.name!r}; "
                            f"teacher.engine.max_model_len is {self.max_len}, so it must be shorter")
        return messages, text, ids

    def _errors(self, raw: dict, loc: str, err: RowError, prompt_id: str | None,
                specs: list[SampleSpec] | None = None, source: str | None = None, stage: str = "prepare"):
        rows = []
        for spec in specs if specs is not None else self.specs:
            rows.append({
                "status": "error", "stage": stage, "error": err.error, "field": err.field, "detail": err.detail,
                "location": loc, "input": raw["_raw"], "run_id": self.cfg.output.run_id,
                "prompt_id": prompt_id, "source": source, "mode": spec.mode.name, "sample_index": spec.index,
                "sample_id": sample_id(prompt_id, spec.mode.name, spec.budget, spec.index, spec.generation_fp)
                if prompt_id else None,
            })
        return rows


def _location(raw: dict) -> str:
    path, row = raw["_path"], raw["_row"]
    return f"{path}#row{row}" if path.endswith((".parquet", ".arrow")) else f"{path}:{row}"
