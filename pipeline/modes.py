"""The ``generation`` section of a job config: modes, sampling, budgets, fusion, adaptive choice.

Part of ``pipeline.config`` (which re-exports these names); apart only to keep each file short.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


#: What a setting is to a run (``pipeline.identity`` reads these marks): ``SPEED`` changes how fast
#: it goes or where it reports, not what it writes (a resume may change it); ``SAMPLES``, what its
#: samples are (the generation fingerprint, which the nights of an incremental series share).
#: Unmarked settings are part of the run's identity only (a resume must not change them).
SPEED, SAMPLES = {"run": "speed"}, {"run": "samples"}


# ------------------------------------------------------------------- generation


class SamplingConfig(Strict):
    """Sampling for one mode (vLLM ``SamplingParams``). ``null`` = the dialect's recommended value
    for the mode (qwen3: thinking T=0.6 top_p=0.95 top_k=20, non-thinking T=0.7 top_p=0.8
    top_k=20; r1: T=0.6 top_p=0.95 in both); ``--dry-run`` prints the resolved values."""

    temperature: float | None = Field(default=None, ge=0)
    """0 = greedy."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=-1)
    """-1 = off."""
    min_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float = Field(default=0.0, ge=-2, le=2)
    repetition_penalty: float = Field(default=1.0, gt=0)
    max_tokens: int = Field(default=2048, gt=0)
    """Completion length cap (thinking + answer) per assistant turn, tokens. Hitting it truncates the sample."""


#: A mode's s1 forcing settings: they count in a fingerprint only where the forcing is on
#: (``samples.mode_identity``, ``catalog.fingerprint``), so modes without it keep theirs.
FORCING_FIELDS = ("min_thinking_tokens", "continuation", "max_extensions")
#: gpt-oss's reasoning effort levels.
EFFORTS = ("low", "medium", "high")
Effort = Literal["low", "medium", "high"]


class ModeConfig(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    thinking: bool = True
    """Hard switch: ``false`` renders with ``enable_thinking=False`` (empty think block)."""
    flag: Literal["/think", "/no_think", "random"] | None = None
    """Soft flag appended to a turn; ``random`` = ``/think`` or ``/no_think`` drawn per sample (per
    turn in a multi-turn mode), the model deciding by the flag; ``null`` = no flag."""
    flag_share: float = Field(default=1.0, ge=0, le=1)
    """Share of samples (turns) that carry the flag; the rest rely on the default (thinking).
    Drawn per sample from its seed, so the same samples carry it in every run."""
    flag_turn: Literal["user", "system", "random"] = "user"
    """Where the flag goes: the latest user turn, the system turn, or either (drawn per sample)."""
    turns: int = Field(default=1, ge=1)
    """Assistant turns per sample. Above 1 the conversation continues with follow-up prompts
    (``generation.follow_ups`` or the input's ``follow_ups`` column), turn by turn in one
    replica; each turn gets its own draw of the flag; ``messages`` holds the whole conversation."""
    sampling: SamplingConfig = SamplingConfig()
    thinking_budget: int | list[int | None] | None = None
    """Max thinking tokens; at the cap the early-stop text and ``</think>`` are forced and the
    model answers from the thinking it has. ``null`` = no budget. A list is a sweep: every prompt
    is generated at each budget (``null`` in the list = unbounded), with the same seed per draw,
    so the samples of one prompt differ only by where the budget cut them."""
    budget_strategy: Literal["two_stage", "engine"] = "two_stage"
    """``two_stage``: Qwen3's recipe - generate up to the budget, append the early-stop text and
    ``</think>`` if the thinking is still open, continue in the same replica (its prefix cache
    holds the first part); works with any engine. ``engine``: vLLM's ``thinking_token_budget``,
    one pass. On vLLM 0.32's CPU build ``engine`` forces the text into the answer when the
    thinking ended under budget but thinking + answer run past it (see README)."""

    min_thinking_tokens: int | list[int | None] | None = None
    """s1's budget forcing, the other way: when the teacher closes its thinking before this many
    thinking tokens, its end of thinking is replaced by ``continuation`` and it goes on thinking
    (in the same replica), up to ``max_extensions`` times. With ``thinking_budget`` (the most
    thinking) the two give s1's test-time scaling curve. A list is a sweep, like budgets (``null``
    in it = not forced). Needs ``budget_strategy: two_stage``."""
    continuation: str = Field(default="Wait", min_length=1)
    """What replaces the end of thinking when it came too early (s1: "Wait")."""
    max_extensions: int = Field(default=4, ge=1)
    """How many times one sample's thinking may be extended; then it may end."""
    reasoning_effort: Effort | list[Effort] | None = None
    """gpt-oss's ``Reasoning: low | medium | high`` (the ``gpt-oss`` dialect only): rendered into
    the system message by the teacher's template. A list is a sweep, like budgets: every prompt is
    generated at each level. ``null`` = the template's default (medium)."""

    @property
    def efforts(self) -> list[str | None]:
        """The reasoning efforts this mode is generated at (``[None]``: the template's default)."""
        return _sweep(self.reasoning_effort)

    @property
    def sweep(self) -> bool:
        """Whether the mode is generated under more than one setting of its per-sample controls."""
        return len(self.budgets) * len(self.min_thinkings) * len(self.efforts) > 1

    @property
    def min_thinkings(self) -> list[int | None]:
        """The thinking minimums this mode is generated at (``[None]``: not forced)."""
        return _sweep(self.min_thinking_tokens)

    @property
    def forces_thinking(self) -> bool:
        return any(m is not None for m in self.min_thinkings)

    @property
    def budgets(self) -> list[int | None]:
        """The budgets this mode is generated at (``[None]`` without a budget)."""
        return _sweep(self.thinking_budget)

    def thinks_under(self, flag: str | None) -> bool:
        """Whether a sample (or turn) of this mode should think with ``flag`` in force."""
        return self.thinking and flag != "/no_think"

    @property
    def thinks(self) -> bool:
        """Whether the mode's samples think by default (hard switch on and no fixed ``/no_think``)."""
        return self.thinks_under(self.flag)

    @model_validator(mode="after")
    def _budgets_are_valid(self) -> ModeConfig:
        budgets = self.budgets
        if any(b is not None and b <= 0 for b in budgets):
            raise ValueError(f"thinking_budget: budgets must be > 0 (null = unbounded), got {self.thinking_budget}")
        if isinstance(self.thinking_budget, list) and (not budgets or len(set(budgets)) != len(budgets)):
            raise ValueError(f"thinking_budget: a sweep needs distinct budgets, got {self.thinking_budget}")
        if any(b is not None for b in budgets) and not self.thinking:
            raise ValueError("thinking_budget needs thinking: true (a no-think mode has no thinking to cap)")
        minimums = self.min_thinkings
        if any(m is not None and m <= 0 for m in minimums):
            raise ValueError(f"min_thinking_tokens: must be > 0 (null = not forced), got {self.min_thinking_tokens}")
        if isinstance(self.min_thinking_tokens, list) and (not minimums or len(set(minimums)) != len(minimums)):
            raise ValueError(f"min_thinking_tokens: a sweep needs distinct values, got {self.min_thinking_tokens}")
        if self.forces_thinking:
            if not self.thinking:
                raise ValueError("min_thinking_tokens needs thinking: true (a no-think mode has no thinking to extend)")
            if self.budget_strategy != "two_stage":
                raise ValueError(
                    "min_thinking_tokens needs budget_strategy: two_stage (the engine's budget has "
                    "no way to make thinking longer)"
                )
            low = [b for b in budgets if b is not None and b <= max(m for m in minimums if m is not None)]
            if low:
                raise ValueError(
                    f"min_thinking_tokens ({self.min_thinking_tokens}) must be below every thinking "
                    f"budget ({self.thinking_budget}): a budget of {low[0]} would end the thinking first"
                )
        if isinstance(self.reasoning_effort, list) and (
            not self.reasoning_effort or len(set(self.reasoning_effort)) != len(self.reasoning_effort)
        ):
            raise ValueError(f"reasoning_effort: a sweep needs distinct levels, got {self.reasoning_effort}")
        if self.flag in ("/think", "random") and not self.thinking:
            raise ValueError(
                f"flag {self.flag!r} needs thinking: true (with the hard switch off the template "
                f"closes the think block before the model can follow a flag)"
            )
        if self.turns > 1 and self.flag_turn != "user":
            raise ValueError(
                "flag_turn: a multi-turn mode puts each turn's flag in that turn's user message; "
                f"got {self.flag_turn!r}"
            )
        return self


def _sweep(value) -> list:
    """A per-sample control's values: a list is a sweep, one value (or null) is a list of one."""
    return list(value) if isinstance(value, list) else [value]


def _default_modes() -> list[ModeConfig]:
    return [ModeConfig(name="think"), ModeConfig(name="no_think", thinking=False)]


class StopLoops(Strict):
    """Stop a generation as soon as its tail repeats one unit of ``min_tokens`` to ``max_tokens``
    tokens ``repeats`` times in a row, instead of letting the loop run to ``max_tokens`` (vLLM's
    ``repetition_detection``; checked in its scheduler at every step, cost measured in
    ``docs/bench.md``). Such a sample ends with ``finish_reason: repetition`` and is rejected by
    the ``repetition`` filter (``loop_stopped``); the summary counts them and the tokens they did
    not generate. The defaults need at least 48 identical tokens, e.g. one sentence six times."""

    min_tokens: int = Field(default=8, ge=1)
    max_tokens: int = Field(default=64, ge=1)
    repeats: int = Field(default=6, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> StopLoops:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must be <= max_tokens ({self.max_tokens})")
        return self


class AdaptiveConfig(Strict):
    """AdaptThink-style mode choice per prompt: ``samples_per_prompt`` (K) samples in each of two
    modes, verified by ``wrong_answer``; no-think is chosen when ``acc_no_think + delta >=
    acc_think``. The chosen mode's samples are kept; the other's go to ``rejected/`` with reason
    ``mode_not_chosen``."""

    think_mode: str = "think"
    no_think_mode: str = "no_think"
    delta: float = Field(default=0.05, ge=0, le=1)
    """How much accuracy no-think may lose and still be chosen (AdaptThink's delta)."""
    rule: Literal["adaptthink", "query_filter"] = "adaptthink"
    """``adaptthink``: the rule above. ``query_filter`` (Qwen3's cold-start query filtering): keep
    the thinking samples, except for prompts the no-think mode solves K/K (rejected with
    ``solved_without_thinking``); no-think samples are only the probe (``mode_not_chosen``)."""


class GenerationConfig(Strict):
    modes: list[ModeConfig] = Field(default_factory=_default_modes, min_length=1)
    samples_per_prompt: int = Field(default=1, ge=1)
    """``n``: samples per prompt and mode, each with its own seed (K of the adaptive choice); with
    ``accepted_per_prompt``, the most a prompt gets."""
    accepted_per_prompt: int | None = Field(default=None, ge=1)
    """Sample until verified (``k``): a prompt's samples of a mode and budget are made in rounds
    (``pipeline.rounds``: k, then 2k, 4k, ... up to ``samples_per_prompt``), and it gets no new ones
    once k of them passed the filters. Its i-th sample is the fixed-n run's i-th (same id, seed,
    text). ``null`` = off: every prompt gets ``samples_per_prompt``."""
    seed: int = 0
    """Base seed; each sample's seed derives from it, the prompt id, mode and index."""
    mix: dict[str, float] | None = None
    """Thinking-mode fusion: mode name -> weight. Each prompt is answered in ONE of these modes,
    drawn by weight from its id, so the set mixes them by the ratio. ``null`` = every prompt in
    every mode."""
    follow_ups: list[str] = Field(default_factory=list)
    """Follow-up prompts for multi-turn modes, drawn per turn; ``{answer}`` is replaced by the
    previous turn's final answer (its last ``\\boxed{}``). Rows with a ``follow_ups`` input
    column use theirs instead."""
    adaptive: AdaptiveConfig | None = None
    """Choose think or no-think per prompt by measured accuracy (AdaptThink); ``null`` = off."""
    stop_loops: StopLoops | None = None
    """Stop looping generations early (``StopLoops``); ``null`` = off: a loop runs to
    ``max_tokens`` and the ``repetition`` filter rejects it afterwards."""

    @field_validator("modes")
    @classmethod
    def _unique_names(cls, modes: list[ModeConfig]) -> list[ModeConfig]:
        names = [m.name for m in modes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"mode names must be unique, got duplicates {dup}")
        return modes

    def mode(self, name: str) -> ModeConfig:
        return next(m for m in self.modes if m.name == name)

    @model_validator(mode="after")
    def _selection_is_valid(self) -> GenerationConfig:
        names = [m.name for m in self.modes]
        if self.mix is not None:
            unknown = sorted(set(self.mix) - set(names))
            if unknown:
                raise ValueError(f"mix: {unknown} are not modes; modes are {names}")
            unused = [n for n in names if n not in self.mix]
            if unused:
                raise ValueError(f"mix: modes {unused} have no weight and would never be used")
            if any(w <= 0 for w in self.mix.values()):
                raise ValueError(f"mix: weights must be > 0, got {self.mix}")
            for i, m in enumerate(self.modes):
                if m.sweep:
                    raise ValueError(
                        f"modes.{i}: a mixed mode takes one thinking_budget, one "
                        f"min_thinking_tokens and one reasoning_effort, not a sweep"
                    )
                if not m.thinking and (m.flag != "/no_think" or m.flag_share < 1):
                    raise ValueError(
                        f"modes.{i}: in a fused set a no-think mode must carry flag '/no_think' on every sample "
                        f"(flag_share 1): without a flag the default is thinking, and the student would learn "
                        f"to skip it unasked"
                    )
        k = self.accepted_per_prompt
        if k is not None and k > self.samples_per_prompt:
            raise ValueError(
                f"accepted_per_prompt ({k}) must be <= samples_per_prompt ({self.samples_per_prompt}), "
                f"the most samples a prompt may get"
            )
        if k is not None and self.adaptive is not None:
            raise ValueError(
                "accepted_per_prompt does not combine with adaptive: the adaptive choice compares the "
                "accuracy of all samples_per_prompt samples in each mode; set one"
            )
        if self.adaptive is not None:
            a = self.adaptive
            for key in ("think_mode", "no_think_mode"):
                if getattr(a, key) not in names:
                    raise ValueError(f"adaptive.{key}: {getattr(a, key)!r} is not a mode; modes are {names}")
            if self.mix is not None:
                raise ValueError("adaptive and mix are two ways to choose the mode; set one")
            if not self.mode(a.think_mode).thinks or self.mode(a.no_think_mode).thinks:
                raise ValueError(
                    "adaptive: think_mode must think and no_think_mode must not "
                    f"(got {a.think_mode!r}, {a.no_think_mode!r})"
                )
            for key in ("think_mode", "no_think_mode"):
                if self.mode(getattr(a, key)).sweep:
                    raise ValueError(
                        f"adaptive.{key}: the chosen modes take one budget, one "
                        f"min_thinking_tokens and one reasoning_effort, not a sweep"
                    )
        return self
