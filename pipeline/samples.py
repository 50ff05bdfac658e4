"""Which samples a prompt gets: modes x budgets (x thinking minimums x efforts) x draws, the mix's
mode, each sample's flags.

Pure and deterministic: every choice is an ``ids.draw`` keyed by the base seed and the prompt
id, so the same prompt gets the same samples, flags and follow-ups in every run, on any worker.
The prepare stage turns these specs into requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .config import GenerationConfig, ModeConfig
from .ids import draw, fingerprint, sample_id
from .modes import FORCING_FIELDS
from .rows import Prompt, RowError


@dataclass(frozen=True)
class SampleSpec:
    """One sample to draw for every prompt: which mode, which budget, which draw."""

    mode: ModeConfig
    budget: int | None
    index: int
    generation_fp: str  # what, besides the prompt, decides the sample
    min_thinking: int | None = None  # s1's forcing: the least thinking (``min_thinking_tokens``)
    effort: str | None = None  # gpt-oss's reasoning effort (``reasoning_effort``)

    def sample_id(self, prompt_id: str) -> str:
        """This spec's sample of ``prompt_id`` (``ids.sample_id``)."""
        return sample_id(
            prompt_id, self.mode.name, self.budget, self.index, self.generation_fp, self.min_thinking, self.effort
        )


def mode_identity(mode: ModeConfig) -> dict:
    """What of a mode decides its samples' text, less the controls swept per sample (the budget
    the thinking minimum and the reasoning effort, which are in the sample id): the forcing's settings only where it
    is on, so a mode without it keeps the fingerprint it had before they existed."""
    skip = {"thinking_budget", "min_thinking_tokens", "reasoning_effort"} | (
        set() if mode.forces_thinking else set(FORCING_FIELDS)
    )
    return mode.model_dump(exclude=skip)


def plan_samples(g: GenerationConfig, teacher: str, dialect: str) -> list[SampleSpec]:
    """Every sample a prompt can get: each mode x budget (a sweep) x ``samples_per_prompt``.
    With ``generation.mix`` a prompt gets only its drawn mode's samples (``SampleDraws``).
    ``teacher`` (the model path) and ``dialect`` are part of every sample's fingerprint."""
    specs = []
    for mode in g.modes:
        # the budget is part of the sample id, not of the fingerprint: adding a budget to a sweep
        # keeps the ids of the samples already made at the others
        fp = fingerprint(
            {
                "teacher": teacher,
                "dialect": dialect,
                "mode": mode_identity(mode),
                "seed": g.seed,
                **({"mix": g.mix} if g.mix else {}),
                # a loop stopped early is another text: in the id when it is on
                **({"stop_loops": g.stop_loops.model_dump()} if g.stop_loops else {}),
                **({"follow_ups": g.follow_ups} if mode.turns > 1 else {}),
            }
        )
        for budget in mode.budgets:
            for least in mode.min_thinkings:
                for effort in mode.efforts:
                    for i in range(g.samples_per_prompt):
                        specs.append(SampleSpec(mode, budget, i, fp, least, effort))
    return specs


def samples_per_input(g: GenerationConfig) -> int:
    """Rows the job writes per input row (what the accounting expects).

    >>> samples_per_input(GenerationConfig(samples_per_prompt=2))  # think + no_think, 2 each
    4
    """
    if g.mix:  # one mode per prompt, one budget per mixed mode
        return g.samples_per_prompt
    return g.samples_per_prompt * sum(len(m.budgets) * len(m.min_thinkings) * len(m.efforts) for m in g.modes)


class Draw(NamedTuple):
    """What chance decided for one sample: the flag of each turn, where the flag goes."""

    flags: tuple[str | None, ...]
    flag_turn: str | None

    @property
    def effective_flag(self) -> str | None:
        """The flag the last turn must follow: the latest one given (Qwen3 follows the most recent)."""
        return next((f for f in reversed(self.flags) if f), None)


class SampleDraws:
    """Per prompt: which samples (the mix's mode draw) and, per sample, its flags. Every choice
    is a ``draw`` keyed by the base seed and the prompt id, so it is the same in every run."""

    def __init__(self, g: GenerationConfig, teacher: str, dialect: str):
        self.seed = g.seed
        self.specs = plan_samples(g, teacher, dialect)
        self.mix = g.mix
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
                raise RowError(
                    "too_few_follow_ups",
                    "follow_ups",
                    f"follow_ups: mode {spec.mode.name!r} has {spec.mode.turns} turns and needs {need} "
                    f"follow-up prompts, the row has {len(p.follow_ups)}",
                )
            return list(p.follow_ups[:need])
        key = (self.seed, p.prompt_id, spec.mode.name, spec.index)
        return [(templates[int(draw(*key, "follow_up", t) * len(templates))], None) for t in range(need)]
