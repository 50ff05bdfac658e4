"""Measure the tiny harmony teacher through the real vLLM engine and write its card.

Per reasoning effort, greedy on held-out problems: accuracy, mean analysis tokens, and whether
every output has the harmony shape (analysis, then final). A budget closes the analysis the way
the pipeline's two-stage budget does: analysis up to the budget, then ``TO_FINAL`` is appended
and the answer is its own request.
"""

from __future__ import annotations

import json
from pathlib import Path

from filters.lib.text import last_boxed
from pipeline.dialects import get_dialect

from .evaluate import held_out_problems
from .harmony import EFFORTS, TO_FINAL


def load(model_dir: Path, max_num_seqs: int = 64):
    from vllm import LLM

    return LLM(
        model=str(model_dir),
        dtype="float32",
        max_model_len=1024,
        max_num_seqs=max_num_seqs,
        seed=0,
        enforce_eager=True,
        kv_cache_memory_bytes=2**30,
    )


def _split(text: str) -> tuple[str | None, str | None]:
    """(analysis, final) of a harmony completion (the dialect's split); None where either channel is missing."""
    s = get_dialect("gpt-oss").split(text)
    return (s.thinking, s.answer) if s.opened and s.closed else (None, None)


def measure(llm, n: int = 300, seed: int = 12345, budgets: tuple[int, ...] = (8, 24)) -> dict:
    from vllm import SamplingParams

    tok = llm.get_tokenizer()
    problems = held_out_problems(n, seed)
    params = SamplingParams(temperature=0.0, max_tokens=400, skip_special_tokens=False)
    report: dict = {"problems": n, "efforts": {}, "budgets": {}}
    for effort in EFFORTS:
        prompts = [
            tok.apply_chat_template(
                [{"role": "user", "content": p.prompt}],
                tokenize=False,
                add_generation_prompt=True,
                reasoning_effort=effort,
            )
            for p in problems
        ]
        outs = llm.generate(prompts, params, use_tqdm=False)
        shaped = correct = tokens = 0
        for p, o in zip(problems, outs):
            thinking, answer = _split(o.outputs[0].text)
            if thinking is None:
                continue
            shaped += 1
            correct += last_boxed(answer) == p.reference
            tokens += len(tok.encode(thinking, add_special_tokens=False))
        report["efforts"][effort] = {
            "accuracy": round(correct / n, 4),
            "harmony_shaped": round(shaped / n, 4),
            "mean_analysis_tokens": round(tokens / max(1, shaped), 1),
        }
    high = [
        tok.apply_chat_template(
            [{"role": "user", "content": p.prompt}], tokenize=False, add_generation_prompt=True, reasoning_effort="high"
        )
        for p in problems
    ]
    for b in budgets:  # analysis opener (3 tokens) + b tokens of analysis, then the answer on its own
        first = llm.generate(
            high, SamplingParams(temperature=0.0, max_tokens=b + 3, skip_special_tokens=False), use_tqdm=False
        )
        texts = [o.outputs[0].text for o in first]
        go_on = [i for i, o in enumerate(first) if o.outputs[0].finish_reason != "stop"]
        cont = [high[i] + texts[i] + ("" if TO_FINAL in texts[i] else TO_FINAL) for i in go_on]
        for i, o in zip(go_on, llm.generate(cont, params, use_tqdm=False)):
            texts[i] += ("" if TO_FINAL in texts[i] else TO_FINAL) + o.outputs[0].text
        answered = [t.split(TO_FINAL, 1)[-1] for t in texts]
        report["budgets"][str(b)] = {
            "accuracy": round(sum(last_boxed(a) == p.reference for a, p in zip(answered, problems)) / n, 4),
            "answered": round(sum(bool(last_boxed(a)) for a in answered) / n, 4),
        }
    return report


def measure_and_card(out: Path, cfg, info: dict) -> dict:
    import vllm

    llm = load(out)
    m = measure(llm)
    llm.llm_engine.engine_core.shutdown()
    m["vllm_version"] = vllm.__version__
    (out / "measurements.json").write_text(json.dumps(m, indent=1))
    efforts = "\n".join(
        f"| {e} | {v['accuracy']:.1%} | {v['mean_analysis_tokens']} | {v['harmony_shaped']:.1%} |"
        for e, v in m["efforts"].items()
    )
    budgets = "\n".join(f"| {b} | {v['accuracy']:.1%} | {v['answered']:.1%} |" for b, v in m["budgets"].items())
    (out / "README.md").write_text(
        f"""# thinkmill tiny harmony teacher

The tiny teacher (`tests/tiny_teacher/model`, a {info["parameters"] / 1e6:.2f}M-parameter `Qwen3ForCausalLM`)
fine-tuned to speak gpt-oss's harmony format: `Reasoning: low|medium|high` in the system message,
its working on the `analysis` channel, its answer on `final`, `<|return|>` at the end. Higher effort
writes a longer analysis (high: every column step with its running result; medium: the first
half of the steps; low: none; each then the answer sentence). Not gpt-oss: its architecture is the
base's; only the format and the effort behaviour are gpt-oss's. See `tests/tiny_teacher/harmony.py`.

Rebuild (deterministic from the seed and the base): `python -m tests.tiny_teacher.harmony --out <dir>`.
Fine-tuned {cfg.steps} steps of batch {cfg.batch_size} in {info["train_seconds"]:.0f} s on 2 CPU cores
(final loss {info["final_loss"]}).

## Measured through vLLM

Greedy decoding on {m["problems"]} held-out problems, vLLM {m["vllm_version"]} (CPU build).

| reasoning effort | accuracy | mean analysis tokens | analysis + final shape |
|---|---|---|---|
{efforts}

At high effort, the analysis closed after a budget of tokens (`<|end|><|start|>assistant<|channel|>final<|message|>`
appended, then the answer generated):

| budget (tokens) | accuracy | answered |
|---|---|---|
{budgets}
""",
        encoding="utf-8",
    )
    return m
