"""Measure the tiny teacher through the real vLLM engine (not transformers).

Used by the builder to write the model card and by the tests. vLLM is imported
inside functions so importing this module stays cheap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from filters.lib.text import last_boxed, split_thinking
from pipeline.dialects import EARLY_STOP

from .data import budget_end_str
from .tasks import Problem, sample_problem


def load_llm(
    model_dir: str | Path, *, seed: int = 0, max_num_seqs: int = 64, kv_cache_gib: float = 1.0, **engine_kwargs
):
    """A vLLM engine over the tiny teacher with the engine-native thinking budget on.

    The budget end string is Qwen3's early-stop sentence followed by ``</think>``,
    the same text the teacher was trained to answer after. The KV cache size is
    explicit: without it vLLM's CPU backend reserves ``gpu_memory_utilization``
    (0.92) of the memory node and refuses to start beside another engine.
    """
    from vllm import LLM
    from vllm.config import ReasoningConfig

    return LLM(
        model=str(model_dir),
        dtype="float32",
        max_model_len=1024,
        max_num_seqs=max_num_seqs,
        seed=seed,
        reasoning_parser="qwen3",
        reasoning_config=ReasoningConfig(reasoning_end_str=budget_end_str()),
        enforce_eager=True,
        kv_cache_memory_bytes=int(kv_cache_gib * 2**30),
        **engine_kwargs,
    )


def close_llm(llm) -> None:
    """Stop the engine's processes now (not at interpreter exit, when logging is closed)."""
    llm.llm_engine.engine_core.shutdown()


def held_out_problems(n: int, seed: int) -> list[Problem]:
    rng = random.Random(seed)
    return [sample_problem(rng, held_out=True) for _ in range(n)]


@dataclass
class Outcome:
    text: str
    thinking: str
    answer: str
    closed: bool
    correct: bool
    thinking_tokens: int
    finish_reason: str | None
    token_ids: list[int]


def generate(
    llm,
    conversations: list[list[dict]],
    references: list[str],
    *,
    enable_thinking: bool = True,
    thinking_token_budget: int | None = None,
    temperature: float = 0.0,
    max_tokens: int = 400,
) -> list[Outcome]:
    from vllm import SamplingParams

    params = SamplingParams(
        temperature=temperature, max_tokens=max_tokens, seed=0, thinking_token_budget=thinking_token_budget
    )
    outs = llm.chat(conversations, params, use_tqdm=False, chat_template_kwargs={"enable_thinking": enable_thinking})
    tok = llm.get_tokenizer()
    start_id, end_id = tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")
    results = []
    for out, ref in zip(outs, references):
        c = out.outputs[0]
        split = split_thinking(c.text)
        ids = list(c.token_ids)
        # tokens between <think> and </think> in the output (forced budget text included);
        # 0 when the output has no think block (no-think: the prompt prefilled it)
        thinking_tokens = 0
        if start_id in ids:
            first = ids.index(start_id) + 1
            thinking_tokens = (ids.index(end_id) if end_id in ids else len(ids)) - first
        results.append(
            Outcome(
                c.text,
                split.thinking,
                split.answer,
                split.closed,
                last_boxed(split.answer) == ref,
                thinking_tokens,
                c.finish_reason,
                ids,
            )
        )
    return results


def measure(llm, n: int = 300, seed: int = 12345, budgets: tuple[int, ...] = (16, 48, 80)) -> dict:
    """Accuracy per mode and budget, and flag following, on ``n`` held-out problems (greedy)."""
    problems = held_out_problems(n, seed)
    refs = [p.reference for p in problems]
    plain = [[{"role": "user", "content": p.prompt}] for p in problems]

    def acc(outcomes):
        return round(sum(o.correct for o in outcomes) / len(outcomes), 4)

    think = generate(llm, plain, refs, enable_thinking=True)
    no_think = generate(llm, plain, refs, enable_thinking=False)
    report = {
        "problems": n,
        "think_accuracy": acc(think),
        "no_think_accuracy": acc(no_think),
        "think_mean_thinking_tokens": round(sum(o.thinking_tokens for o in think) / n, 1),
        "by_kind": {},
        "budgets": {},
    }
    for kind in sorted({p.kind for p in problems}):
        idx = [i for i, p in enumerate(problems) if p.kind == kind]
        report["by_kind"][kind] = {
            "n": len(idx),
            "think": round(sum(think[i].correct for i in idx) / len(idx), 4),
            "no_think": round(sum(no_think[i].correct for i in idx) / len(idx), 4),
        }
    for b in budgets:
        outs = generate(llm, plain, refs, enable_thinking=True, thinking_token_budget=b)
        report["budgets"][str(b)] = {
            "accuracy": acc(outs),
            "answered": round(sum(bool(last_boxed(o.answer)) for o in outs) / n, 4),
            "budget_hit": round(sum(EARLY_STOP in o.thinking for o in outs) / n, 4),
        }

    # Flags: /no_think must give an empty think block, /think a non-empty one, in the user
    # or the system turn; with a conflict the latest turn wins.
    flag_cases = []
    for i, p in enumerate(problems):
        flag = "/no_think" if i % 2 else "/think"
        where = i % 3
        if where == 0:
            msgs = [{"role": "user", "content": f"{p.prompt} {flag}"}]
        elif where == 1:
            msgs = [
                {"role": "system", "content": f"You are a helpful assistant. {flag}"},
                {"role": "user", "content": p.prompt},
            ]
        else:
            other = "/think" if flag == "/no_think" else "/no_think"
            msgs = [
                {"role": "system", "content": f"You are a helpful assistant. {other}"},
                {"role": "user", "content": f"{p.prompt} {flag}"},
            ]
        flag_cases.append((flag, msgs))
    outs = generate(llm, [m for _, m in flag_cases], refs)
    followed = [(o.closed and (o.thinking == "") == (flag == "/no_think")) for (flag, _), o in zip(flag_cases, outs)]
    report["flags_followed"] = round(sum(followed) / n, 4)
    report["flag_accuracy"] = acc(outs)
    return report
