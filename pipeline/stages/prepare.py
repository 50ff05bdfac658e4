"""Prepare stage: raw input rows -> one request per (prompt, mode, budget, sample), rendered.

For every input row this stage emits exactly ``samples_per_input`` rows: either ``pending``
requests (prompt rendered by the teacher's dialect and tokenized, seed and ids fixed) or
``error`` rows saying which field was wrong and what was expected; or, for a prompt an earlier
run generated, one ``earlier`` row that stands for its samples. So nothing is lost here, and the
writer can account for ``inputs x samples`` exactly.

Row validation is ``pipeline.rows``, the sample plan ``pipeline.samples``; this worker holds the
tokenizer (loaded once) and asks the run's ``ledger.IdLedger`` which row owns each prompt id.
Prompts a resumed run already holds are skipped; prompts an earlier run generated (an
incremental run, ``pipeline.catalog``) become one ``earlier`` row each.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ..config import ColumnMap, GenerationConfig, ModeConfig
from ..ids import sample_seed
from ..rows import Prompt, RowError, error_rows, location, normalize, unreadable
from ..samples import SampleDraws, SampleSpec, samples_per_input
from ..schema import to_table
from . import Context, Stage


@dataclass(frozen=True)
class PrepareSettings:
    columns: ColumnMap
    system_prompt: str | None
    default_source: str
    generation: GenerationConfig
    teacher: str  # model path: the tokenizer and chat template, and the fingerprint
    dialect: str
    trust_remote_code: bool
    max_model_len: int
    run_id: str
    keep_prompt_text: bool
    deadline: float | None = None  # epoch seconds: rows that arrive later are left for a resume
    label: str | None = None  # the ``teacher`` column (``TeacherConfig.label``); default ``teacher``

    @classmethod
    def of(cls, job, deadline: float | None = None) -> PrepareSettings:
        i, t = job.input, job.teacher
        return cls(
            i.columns,
            i.system_prompt,
            i.default_source,
            job.generation,
            t.model,
            t.dialect,
            t.engine.trust_remote_code,
            t.engine.max_model_len,
            job.output.run_id,
            job.output.keep_prompt_text,
            deadline,
            t.label,
        )


class Prepare(Stage):
    """Ray Data worker: raw rows -> pending requests or error rows (``STREAM`` schema)."""

    name = "prepare"
    reads = ("_path", "_row", "_raw")  # and "_error" when the read stage could not decode the row
    writes = (
        "status",
        "sample_id",
        "prompt_id",
        "run_id",
        "source",
        "messages",
        "mode",
        "flag",
        "flag_turn",
        "thinking_expected",
        "thinking_budget",
        "min_thinking_tokens",
        "reasoning_effort",
        "reference",
        "teacher",
        "sampling",
        "seed",
        "budget_strategy",
        "sample_index",
        "prompt_tokens",
        "prompt_token_ids",
        "prefill",
        "location",
        "prompt_text",
        "turn_flags",
        "follow_ups",
        "turn_references",
        "stage",
        "error",
        "field",
        "detail",
        "input",
        "generated_by",
    )

    @classmethod
    def settings(cls, ctx: Context) -> dict:
        return {
            "settings": PrepareSettings.of(ctx.job, ctx.deadline),
            "ledger": ctx.ledger,
            "done": ctx.done,
            "earlier": ctx.earlier,
            "round": ctx.round,
            "done_samples": ctx.done_samples,
        }

    @classmethod
    def describe(cls, ctx: Context) -> str:
        return f"prepare (render, tokenize; <= {ctx.job.ray.cpu_stage_actors} CPU workers)"

    def __init__(self, settings: PrepareSettings, ledger=None, done=None, earlier=None, round=None, done_samples=None):
        from transformers import AutoTokenizer

        from ..dialects import get_dialect

        self.s = settings
        self.draws = SampleDraws(settings.generation, settings.teacher, settings.dialect)
        self.per_input = samples_per_input(settings.generation)
        self.dialect = get_dialect(settings.dialect)
        self.tokenizer = AutoTokenizer.from_pretrained(settings.teacher, trust_remote_code=settings.trust_remote_code)
        # every token the tokenizer would read as one control token wherever it stands in the text
        specials = {t.content for t in self.tokenizer.added_tokens_decoder.values()} | set(
            self.tokenizer.all_special_tokens
        )
        longest_first = sorted(specials, key=len, reverse=True)
        self.control = re.compile("|".join(re.escape(t) for t in longest_first if t) or "(?!)")
        self.ledger = ledger
        self.done = done if done is not None and len(done) else None  # prompts a resumed run already holds
        self.earlier = earlier if earlier is not None and len(earlier) else None  # ... that earlier runs hold
        # sample until verified (``pipeline.rounds``): this round's samples, and those a resumed run holds
        self.round = round
        self.done_samples = done_samples if done_samples is not None and len(done_samples) else None
        self.max_len = settings.max_model_len
        # follow-ups are read only when a mode uses them: a stray column must not fail a single-turn job
        self.columns = settings.columns
        if not any(m.turns > 1 for m in settings.generation.modes):
            self.columns = self.columns.model_copy(update={"follow_ups": None})

    def process(self, batch):
        if self.s.deadline is not None and time.time() >= self.s.deadline:
            return to_table([], stage=self.name)  # ray.deadline_s is up: these rows wait for a resume
        raws = batch.to_pylist()
        prompts: list[Prompt | RowError] = []
        for r in raws:
            try:
                unreadable(r)
                p = normalize(r["_raw"], self.columns, self.s.system_prompt, self.s.default_source)
                self._no_control_tokens(p)
                prompts.append(p)
            except RowError as e:
                prompts.append(e)
            except Exception as e:  # noqa: BLE001 - one odd row must not fail the batch (and the job)
                prompts.append(RowError("prepare_failed", None, f"{type(e).__name__}: {e}"))
        locations = [location(r) for r in raws]
        # a row an earlier attempt committed as a duplicate stays one: it does not claim its id
        # again (its owner may not have been committed yet, and must still own it)
        settled = [self.done is not None and self.done.has(f"@{loc}") for loc in locations]
        claims = [
            (p.prompt_id, r["_path"], r["_row"])
            for p, r, s in zip(prompts, raws, settled)
            if isinstance(p, Prompt) and not s
        ]
        owners = iter(self.ledger.claim(claims) if claims and self.ledger else [None] * len(claims))
        out: list[dict] = []
        for raw, loc, p, s in zip(raws, locations, prompts, settled):
            if s:
                continue
            if isinstance(p, Prompt) and (owner := next(owners)) is not None:
                what = "id" if p.id_given else "prompt"
                field = self.s.columns.id if p.id_given else p.field
                p = RowError(
                    f"duplicate_{what}",
                    field,
                    f"{what} {p.prompt_id!r} already came from {owner}; each prompt must be unique",
                )
            if self.done is not None and self.done.has(p.prompt_id if isinstance(p, Prompt) else f"@{loc}"):
                continue  # committed by an earlier attempt (the ledger was seeded with its owner)
            if self.round is not None and self.round.wanted is not None:  # a later round: the groups that need more
                if isinstance(p, Prompt):  # (its errors and the earlier runs' prompts were written in round 0)
                    out.extend(self._guarded(raw, loc, p))
                continue
            if isinstance(p, RowError):
                out.extend(self._errors(raw, loc, p, prompt_id=None))
                continue
            if self.earlier is not None and (by := self.earlier.run_of(p.prompt_id)) is not None:
                # generated by an earlier run with the same settings (output.incremental): one row
                # says so and stands for the prompt's samples; it still owned its id above
                out.append(
                    {
                        "status": "earlier",
                        "prompt_id": p.prompt_id,
                        "run_id": self.s.run_id,
                        "source": p.source,
                        "location": loc,
                        "generated_by": by,
                    }
                )
                continue
            out.extend(self._guarded(raw, loc, p))
        return to_table(out, stage=self.name)

    def _guarded(self, raw: dict, loc: str, p: Prompt) -> list[dict]:
        """The prompt's requests; where making them raises, its samples (of this pass) as error rows."""
        try:
            return self._requests(raw, loc, p)
        except Exception as e:  # noqa: BLE001 - as above: this row's samples become error rows
            specs = [s for s in self.draws.specs_for(p.prompt_id) if self._makes(s, p.prompt_id)]
            return self._errors(
                raw,
                loc,
                RowError("prepare_failed", p.field, f"{type(e).__name__}: {e}"),
                p.prompt_id,
                specs,
                source=p.source,
            )

    def _no_control_tokens(self, p: Prompt) -> None:
        """The teacher's control tokens (``<|im_start|>``, ``</think>``, ...) in user or system text
        would reach the engine as control tokens: the row is refused, never silently edited."""
        texts = [
            (f"{p.field}[{i}].content" if p.field == self.columns.messages else p.field, m["content"])
            for i, m in enumerate(p.messages)
            if m["role"] in ("user", "system")
        ]
        texts += [(f"{self.columns.follow_ups}[{i}]", text) for i, (text, _) in enumerate(p.follow_ups)]
        for field, text in texts:
            if m := self.control.search(text):
                raise RowError(
                    "control_token_in_prompt",
                    p.field,
                    f"{field}: holds the teacher's control token {m.group(0)!r}; prompts must not "
                    f"contain the chat template's special tokens",
                )

    def _requests(self, raw: dict, loc: str, p: Prompt) -> list[dict]:
        rendered: dict[tuple, tuple[list[dict], str, list[int]] | RowError] = {}
        rows = []
        for spec in self.draws.specs_for(p.prompt_id):
            if not self._makes(spec, p.prompt_id):
                continue
            mode = spec.mode
            try:
                follow_ups = self.draws.follow_ups_for(spec, p, self.s.generation.follow_ups)
            except RowError as e:
                rows.extend(self._errors(raw, loc, e, p.prompt_id, [spec], p.source))
                continue
            d = self.draws.flags_for(spec, p.prompt_id)
            key = (mode.name, d.flags[0], d.flag_turn, spec.effort)  # what the first turn's prompt depends on
            if key not in rendered:
                rendered[key] = self._render(p, mode, d.flags[0], d.flag_turn, spec.effort)
            r = rendered[key]
            if isinstance(r, RowError):
                rows.extend(self._errors(raw, loc, r, p.prompt_id, [spec], p.source, stage="render"))
                continue
            messages, prompt_text, ids = r
            effective = d.effective_flag
            thinks = mode.thinks_under(effective)
            rows.append(
                {
                    "status": "pending",
                    "sample_id": spec.sample_id(p.prompt_id),
                    "prompt_id": p.prompt_id,
                    "run_id": self.s.run_id,
                    "source": p.source,
                    "messages": messages,
                    "mode": mode.name,
                    "flag": effective,
                    "flag_turn": d.flag_turn,
                    "thinking_expected": thinks,
                    "thinking_budget": spec.budget,
                    "min_thinking_tokens": spec.min_thinking,
                    "reasoning_effort": spec.effort,
                    # the reference belongs to the question the last turn answers
                    "reference": follow_ups[-1][1] if follow_ups else p.reference,
                    "teacher": self.s.label or self.s.teacher,
                    # a flag drawn per sample decides thinking or not: so do the recommended settings
                    "sampling": self.dialect.sampling(mode, thinking=thinks),
                    "seed": sample_seed(self.s.generation.seed, p.prompt_id, mode.name, spec.index),
                    "budget_strategy": mode.budget_strategy if spec.budget is not None or spec.min_thinking else None,
                    "sample_index": spec.index,
                    "prompt_tokens": len(ids),
                    "prompt_token_ids": ids,
                    "prefill": self.dialect.prefill(prompt_text),
                    "location": loc,
                    "prompt_text": prompt_text if self.s.keep_prompt_text else None,
                    "turn_flags": list(d.flags) if mode.turns > 1 else None,
                    "follow_ups": [f for f, _ in follow_ups] if mode.turns > 1 else None,
                    "turn_references": [p.reference] + [r for _, r in follow_ups] if mode.turns > 1 else None,
                }
            )
        return rows

    def _makes(self, spec: SampleSpec, prompt_id: str) -> bool:
        """Whether this pass makes the sample: all of them, or a round's (less a resume's committed ones)."""
        if self.round is None:
            return True
        if self.round.wanted is None and spec.index >= self.round.cut:  # round 0: no hash needed to say no
            return False
        sid = spec.sample_id(prompt_id)
        return self.round.takes(spec.index, sid) and not (self.done_samples is not None and self.done_samples.has(sid))

    def _render(self, p: Prompt, mode: ModeConfig, flag: str | None, flag_turn: str | None, effort: str | None):
        field = p.field
        try:
            messages = self.dialect.with_flag(p.messages, flag, flag_turn or "user")
            text = self.dialect.render(self.tokenizer, messages, mode.thinking, effort)
        except Exception as e:  # noqa: BLE001 - a template may raise anything (jinja raise_exception)
            return RowError("render_failed", field, f"the chat template failed in mode {mode.name!r}: {e}")
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) >= self.max_len:
            return RowError(
                "prompt_too_long",
                field,
                f"the rendered prompt is {len(ids)} tokens in mode {mode.name!r}; "
                f"teacher.engine.max_model_len is {self.max_len}, so it must be shorter",
            )
        return messages, text, ids

    def _errors(
        self,
        raw: dict,
        loc: str,
        err: RowError,
        prompt_id: str | None,
        specs: list[SampleSpec] | None = None,
        source: str | None = None,
        stage: str = "prepare",
    ):
        if specs is None:  # the row never became a prompt: as many error rows as it would have had samples
            if prompt_id is not None:
                specs = self.draws.specs_for(prompt_id)
            else:  # in a mixed set no mode was drawn for it: error rows without a mode
                specs = [None] * self.per_input if self.draws.mix else self.draws.specs
        return error_rows(raw, loc, err, prompt_id, specs, self.s.run_id, source, stage)


STAGE = Prepare
