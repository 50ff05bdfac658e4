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
from typing import Any, NamedTuple

from .config import ColumnMap, JobConfig, ModeConfig
from .ids import content_prompt_id, draw, fingerprint, sample_id, sample_seed
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
    follow_ups: tuple[tuple[str, str | None], ...] = ()  # (prompt, reference) for later turns


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
    follow_ups = check_follow_ups(row.get(columns.follow_ups), columns.follow_ups) if columns.follow_ups else ()
    return Prompt(prompt_id, messages, reference, source, id_given, from_field, follow_ups)


def check_follow_ups(value: Any, field: str) -> tuple[tuple[str, str | None], ...]:
    """Follow-up prompts of one row: strings or ``{prompt, reference}`` objects; raises ``RowError``.

    >>> check_follow_ups(["And times 2?", {"prompt": "Plus 1?", "reference": 9}], "follow_ups")
    (('And times 2?', None), ('Plus 1?', '9'))
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RowError("invalid_follow_ups", field, f"{field}: expected a list of prompts, got {_describe(value)}")
    out = []
    for i, item in enumerate(value):
        prompt, reference = (item.get("prompt"), item.get("reference")) if isinstance(item, dict) else (item, None)
        if not isinstance(prompt, str) or not prompt.strip():
            raise RowError("invalid_follow_ups", field,
                           f"{field}[{i}]: expected a non-empty string or {{prompt, reference}}, got {_describe(item)}")
        if isinstance(reference, bool) or not (reference is None or isinstance(reference, (str, int, float))):
            raise RowError("invalid_follow_ups", field,
                           f"{field}[{i}].reference: expected a string or number, got {_describe(reference)}")
        out.append((prompt, None if reference is None else str(reference)))
    return tuple(out)


# ------------------------------------------------------------------------ the plan

@dataclass(frozen=True)
class SampleSpec:
    """One sample to draw for every prompt: which mode, which budget, which draw."""

    mode: ModeConfig
    budget: int | None
    index: int
    generation_fp: str  # what, besides the prompt, decides the sample


def plan_samples(cfg: JobConfig) -> list[SampleSpec]:
    """Every sample a prompt can get: each mode x budget (a sweep) x ``samples_per_prompt``.
    With ``generation.mix`` a prompt gets only its drawn mode's samples (``Planner``)."""
    specs = []
    for mode in cfg.generation.modes:
        # the budget is part of the sample id, not of the fingerprint: adding a budget to a sweep
        # keeps the ids of the samples already made at the others
        fp = fingerprint({"teacher": cfg.teacher.model, "dialect": cfg.teacher.dialect,
                          "mode": mode.model_dump(exclude={"thinking_budget"}), "seed": cfg.generation.seed,
                          **({"mix": cfg.generation.mix} if cfg.generation.mix else {}),
                          **({"follow_ups": cfg.generation.follow_ups} if mode.turns > 1 else {})})
        for budget in mode.budgets:
            for i in range(cfg.generation.samples_per_prompt):
                specs.append(SampleSpec(mode, budget, i, fp))
    return specs


def samples_per_input(cfg: JobConfig) -> int:
    """Rows the job writes per input row (what the accounting expects)."""
    if cfg.generation.mix:  # one mode per prompt, one budget per mixed mode
        return cfg.generation.samples_per_prompt
    return len(plan_samples(cfg))


class Draw(NamedTuple):
    """What chance decided for one sample: the flag of each turn, where the flag goes."""

    flags: tuple[str | None, ...]
    flag_turn: str | None

    @property
    def effective_flag(self) -> str | None:
        """The flag the last turn must follow: the latest one given (Qwen3 follows the most recent)."""
        return next((f for f in reversed(self.flags) if f), None)


class Planner:
    """Per prompt: which samples (the mix's mode draw) and, per sample, its flags. Every choice
    is a ``draw`` keyed by the base seed and the prompt id, so it is the same in every run."""

    def __init__(self, cfg: JobConfig):
        self.seed = cfg.generation.seed
        self.specs = plan_samples(cfg)
        self.mix = cfg.generation.mix
        if self.mix:
            total = sum(self.mix.values())
            self.cumulative, acc = [], 0.0
            for name, w in self.mix.items():
                acc += w / total
                self.cumulative.append((acc, name))

    def specs_for(self, prompt_id: str) -> list[SampleSpec]:
        if not self.mix:
            return self.specs
        u = draw(self.seed, prompt_id, "mix")
        name = next((n for c, n in self.cumulative if u < c), self.cumulative[-1][1])
        return [s for s in self.specs if s.mode.name == name]

    def flags_for(self, spec: SampleSpec, prompt_id: str) -> Draw:
        m = spec.mode
        key = (self.seed, prompt_id, m.name, spec.index)
        flags = []
        for turn in range(m.turns):
            if m.flag is None or draw(*key, "flag_share", turn) >= m.flag_share:
                flags.append(None)
            elif m.flag == "random":
                flags.append("/think" if draw(*key, "flag", turn) < 0.5 else "/no_think")
            else:
                flags.append(m.flag)
        if not any(flags):
            return Draw(tuple(flags), None)
        turn = m.flag_turn if m.flag_turn != "random" else ("user" if draw(*key, "flag_turn") < 0.5 else "system")
        return Draw(tuple(flags), turn)

    def follow_ups_for(self, spec: SampleSpec, p: Prompt, templates: list[str]) -> list[tuple[str, str | None]]:
        """The user prompts of turns 2..K: the row's own, or templates drawn per turn."""
        need = spec.mode.turns - 1
        if need <= 0:
            return []
        if p.follow_ups:
            if len(p.follow_ups) < need:
                raise RowError("too_few_follow_ups", "follow_ups",
                               f"follow_ups: mode {spec.mode.name!r} has {spec.mode.turns} turns and needs {need} "
                               f"follow-up prompts, the row has {len(p.follow_ups)}")
            return list(p.follow_ups[:need])
        key = (self.seed, p.prompt_id, spec.mode.name, spec.index)
        return [(templates[int(draw(*key, "follow_up", t) * len(templates))], None) for t in range(need)]


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
        self.planner = Planner(cfg)
        self.per_input = samples_per_input(cfg)
        self.dialect = get_dialect(cfg.teacher.dialect)
        self.tokenizer = AutoTokenizer.from_pretrained(
            cfg.teacher.model, trust_remote_code=cfg.teacher.engine.trust_remote_code)
        self.ledger = ledger
        self.max_len = cfg.teacher.engine.max_model_len
        # follow-ups are read only when a mode uses them: a stray column must not fail a single-turn job
        self.columns = cfg.input.columns
        if not any(m.turns > 1 for m in cfg.generation.modes):
            self.columns = self.columns.model_copy(update={"follow_ups": None})

    def __call__(self, batch):
        import ray

        raws = batch.to_pylist()
        prompts: list[Prompt | RowError] = []
        for r in raws:
            try:
                prompts.append(normalize(r["_raw"], self.columns, self.cfg.input.system_prompt,
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
        rendered: dict[tuple, tuple[list[dict], str, list[int]] | RowError] = {}
        rows = []
        for spec in self.planner.specs_for(p.prompt_id):
            mode = spec.mode
            try:
                follow_ups = self.planner.follow_ups_for(spec, p, self.cfg.generation.follow_ups)
            except RowError as e:
                rows.extend(self._errors(raw, loc, e, p.prompt_id, [spec], p.source))
                continue
            d = self.planner.flags_for(spec, p.prompt_id)
            key = (mode.name, d.flags[0], d.flag_turn)  # what the first turn's prompt depends on
            if key not in rendered:
                rendered[key] = self._render(p, mode, d.flags[0], d.flag_turn)
            r = rendered[key]
            if isinstance(r, RowError):
                rows.extend(self._errors(raw, loc, r, p.prompt_id, [spec], p.source, stage="render"))
                continue
            messages, prompt_text, ids = r
            effective = d.effective_flag
            thinks = mode.thinks_under(effective)
            rows.append({
                "status": "pending",
                "sample_id": sample_id(p.prompt_id, mode.name, spec.budget, spec.index, spec.generation_fp),
                "prompt_id": p.prompt_id, "run_id": self.cfg.output.run_id, "source": p.source,
                "messages": messages, "mode": mode.name, "flag": effective, "flag_turn": d.flag_turn,
                "thinking_expected": thinks,
                "thinking_budget": spec.budget,
                # the reference belongs to the question the last turn answers
                "reference": follow_ups[-1][1] if follow_ups else p.reference,
                "teacher": self.cfg.teacher.model,
                # a flag drawn per sample decides thinking or not: so do the recommended settings
                "sampling": self.dialect.sampling(mode, thinking=thinks),
                "seed": sample_seed(self.cfg.generation.seed, p.prompt_id, mode.name, spec.index),
                "budget_strategy": mode.budget_strategy if spec.budget is not None else None,
                "sample_index": spec.index, "prompt_tokens": len(ids), "prompt_token_ids": ids,
                "prefill": self.dialect.prefill(prompt_text), "location": loc,
                "prompt_text": prompt_text if self.cfg.output.keep_prompt_text else None,
                "turn_flags": list(d.flags) if mode.turns > 1 else None,
                "follow_ups": [f for f, _ in follow_ups] if mode.turns > 1 else None,
                "turn_references": [p.reference] + [r for _, r in follow_ups] if mode.turns > 1 else None,
            })
        return rows

    def _render(self, p: Prompt, mode: ModeConfig, flag: str | None, flag_turn: str | None):
        field = p.field
        try:
            messages = self.dialect.with_flag(p.messages, flag, flag_turn or "user")
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
        if specs is None:  # the row never became a prompt: as many error rows as it would have had samples
            if prompt_id is not None:
                specs = self.planner.specs_for(prompt_id)
            else:  # in a mixed set no mode was drawn for it: error rows without a mode
                specs = [None] * self.per_input if self.planner.mix else self.planner.specs
        rows = []
        for i, spec in enumerate(specs):
            rows.append({
                "status": "error", "stage": stage, "error": err.error, "field": err.field, "detail": err.detail,
                "location": loc, "input": raw["_raw"], "run_id": self.cfg.output.run_id,
                "prompt_id": prompt_id, "source": source,
                # a row without a prompt in a mixed set has no mode drawn yet
                "mode": spec.mode.name if spec else None, "sample_index": spec.index if spec else i,
                "sample_id": sample_id(prompt_id, spec.mode.name, spec.budget, spec.index, spec.generation_fp)
                if prompt_id and spec else None,
            })
        return rows


def _location(raw: dict) -> str:
    path, row = raw["_path"], raw["_row"]
    return f"{path}#row{row}" if path.endswith((".parquet", ".arrow")) else f"{path}:{row}"
