"""Training conversations for the tiny teacher, rendered through its own chat template.

Each example is a prompt (rendered with ``add_generation_prompt=True``, exactly as
the engine will see it) and a completion split into segments, each trained on or
not. Prompt and completion are tokenized separately, as vLLM does at inference.

The mix teaches the behaviours thinkmill must be able to observe:
default thinking; ``enable_thinking=False`` (prefilled empty block); ``/no_think``
and ``/think`` flags in the user or system turn, the latest one winning;
thinking cut off by Qwen3's early-stop sentence followed by an answer (the cut
and the forced text are not trained on: the engine inserts them); two-turn
conversations whose history has lost its thinking.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.dialects import get_dialect

from .tasks import Problem, sample_problem

SYSTEM_PROMPTS = ("You are a helpful assistant.", "You are a careful math tutor.")


@dataclass
class Example:
    messages: list[dict] | None  # conversation before the trained turn; None = raw drill text
    enable_thinking: bool
    segments: list[tuple[str, bool]]  # (text, trained?) of the assistant completion
    kind: str


def budget_end_str() -> str:
    """What a thinking budget forces (engine ``reasoning_end_str`` / two-stage suffix)."""
    return get_dialect("qwen3").budget_end_str()


def think_completion(p: Problem) -> str:
    return f"<think>\n{p.thinking}\n</think>\n\n{p.answer}"


def no_think_completion(p: Problem) -> str:
    return f"<think>\n\n</think>\n\n{p.answer}"


def _user(p: Problem, flag: str | None) -> dict:
    return {"role": "user", "content": p.prompt + (f" {flag}" if flag else "")}


def _with_flag(rng: random.Random, p: Problem, flag: str) -> list[dict]:
    """Put ``flag`` in the user turn or the system turn; sometimes the system turn holds the
    opposite flag, which the latest (user) flag overrides."""
    r = rng.random()
    if r < 0.25:
        other = "/think" if flag == "/no_think" else "/no_think"
        return [{"role": "system", "content": f"{rng.choice(SYSTEM_PROMPTS)} {other}"}, _user(p, flag)]
    if r < 0.65:
        msgs = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.3 else []
        return msgs + [_user(p, flag)]
    return [{"role": "system", "content": f"{rng.choice(SYSTEM_PROMPTS)} {flag}"}, _user(p, None)]


def _maybe_system(rng: random.Random) -> list[dict]:
    return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.2 else []


def drill_text(rng: random.Random, n: int = 24) -> str:
    """Column facts in exactly the notation of the worked solutions, one per line.

    A worked solution exercises about three facts per hundred tokens; a drill line is
    all fact. Mixing drills in is what lets a model this small learn the tables
    (x*y+c, x+y+c, x-y-c with borrow) within the training budget.
    """
    lines = []
    for _ in range(n):
        x, y, c = rng.randint(0, 9), rng.randint(0, 9), rng.randint(0, 1)
        op = rng.choice("+-**")  # the multiplication table (with carries) is the largest
        if op == "+":
            lines.append(f"{x}+{y}+{c}={x + y + c}")
        elif op == "-":
            d = x - y - c
            lines.append(f"{x}-{y}-{c}={d}" if d >= 0 else f"{x}-{y}-{c}<0, {x + 10}-{y}-{c}={d + 10}")
        else:
            y, c = rng.randint(2, 9), rng.randint(0, 8)
            lines.append(f"{x}*{y}+{c}={x * y + c}")
    return "\n".join(lines)


def sample_example(rng: random.Random) -> Example:
    if rng.random() < 0.18:
        return Example(None, True, [(drill_text(rng), True)], "drill")
    p = sample_problem(rng, held_out=False)
    r = rng.random()
    if r < 0.52:  # default thinking, sometimes with an explicit /think
        msgs = _with_flag(rng, p, "/think") if rng.random() < 0.25 else _maybe_system(rng) + [_user(p, None)]
        return Example(msgs, True, [(think_completion(p), True)], "think")
    if r < 0.61:  # hard switch: the template prefills the empty block
        msgs = _maybe_system(rng) + [_user(p, None)]
        return Example(msgs, False, [(p.answer, True)], "no_think_switch")
    if r < 0.70:  # soft flag: the model writes the empty block itself
        return Example(_with_flag(rng, p, "/no_think"), True, [(no_think_completion(p), True)], "no_think_flag")
    if r < 0.85:  # thinking cut by a budget: answer from what is there
        cut = rng.randint(0, max(0, len(p.thinking) - 1))
        partial = p.thinking[:cut]
        return Example(
            _maybe_system(rng) + [_user(p, None)],
            True,
            [(f"<think>\n{partial}", True), (budget_end_str(), False), (f"\n\n{p.answer}", True)],
            "budget_cut",
        )
    # two turns: history keeps only the answer; the latest flag decides
    first = sample_problem(rng, held_out=False)
    flag = rng.choice(["/think", "/no_think", None])
    sys_flag = rng.choice(["/think", "/no_think", None]) if rng.random() < 0.5 else None
    msgs = ([{"role": "system", "content": f"{SYSTEM_PROMPTS[0]} {sys_flag}"}] if sys_flag else []) + [
        _user(first, rng.choice(["/think", "/no_think", None])),
        {"role": "assistant", "content": first.answer},
        _user(p, flag),
    ]
    latest = flag or sys_flag or "/think"
    text = no_think_completion(p) if latest == "/no_think" else think_completion(p)
    return Example(msgs, True, [(text, True)], "multi_turn")


def encode(tokenizer, ex: Example) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 where not trained) for one example.

    Each segment is tokenized on its own, as the engine assembles a budget-cut
    sample: the model's tokens, then the forced end string's own tokenization.
    """
    if ex.messages is None:  # drill: plain text, all trained
        ids = tokenizer.encode(ex.segments[0][0] + "<|endoftext|>", add_special_tokens=False)
        return ids, list(ids)
    prompt = tokenizer.apply_chat_template(
        ex.messages, tokenize=False, add_generation_prompt=True, enable_thinking=ex.enable_thinking
    )
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    labels = [-100] * len(ids)
    segments = ex.segments[:-1] + [(ex.segments[-1][0] + "<|im_end|>", ex.segments[-1][1])]
    for text, trained in segments:
        seg = tokenizer.encode(text, add_special_tokens=False)
        ids += seg
        labels += seg if trained else [-100] * len(seg)
    return ids, labels
