"""The tiny harmony teacher: the tiny teacher taught gpt-oss's harmony format and reasoning effort.

gpt-oss reasons on the ``analysis`` channel and answers on ``final``; ``Reasoning: low | medium |
high`` in the system message sets how long. This teacher is the Qwen3-style tiny teacher
(``tests/tiny_teacher/model``) fine-tuned on the same synthetic problems rendered by a harmony
chat template (``harmony_template.jinja``), with the analysis written at three lengths:

- ``high``: the full worked solution (each column step with its running result);
- ``medium``: the first half of the steps, then the answer sentence (the rest of the answer
  straight from the question);
- ``low``: no working, only the answer sentence (the answer straight from the question).

So higher effort is a longer analysis and, measurably, a more accurate one (the card's table).
Two earlier variants of medium (the steps without their running results; the same without the
concluding sentence) came out as accurate as high: this model puts the answer together from the
bare steps as well as with the running results.
Also taught: answering after a thinking budget closes the analysis (the pipeline forces
``<|end|><|start|>assistant<|channel|>final<|message|>``), developer instructions, two turns
whose history keeps only the final channel.

Usage (deterministic from the seed and the base teacher, about 15 minutes on 2 cores):
    python -m tests.tiny_teacher.harmony --out tests/tiny_teacher/harmony_model   (make teacher-harmony)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from pipeline.dialects import get_dialect

from .tasks import Problem, sample_problem

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "harmony_template.jinja"
#: The harmony format's special tokens (gpt-oss's ``o200k_harmony`` names them the same).
HARMONY_TOKENS = ("<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>", "<|constrain|>")
EFFORTS = ("low", "medium", "high")
#: The analysis channel's opening, and what closes it and opens the answer (a budget forces it):
#: the gpt-oss dialect's tags
ANALYSIS, TO_FINAL = get_dialect("gpt-oss").think_start, get_dialect("gpt-oss").think_end
RETURN = "<|return|>"


def analysis(p: Problem, effort: str) -> str:
    """The analysis channel's text of ``p`` at ``effort``.

    >>> from .tasks import make_problem
    >>> p = make_problem("add", (57, 740), "en")
    >>> print(analysis(p, "medium"))
    057+740: 7+0+0=7, write 7 carry 0, so far 7.
    05+74: 5+4+0=9, write 9 carry 0, so far 97.
    So the answer is 797.
    >>> analysis(p, "low")
    'So the answer is 797.'
    """
    lines = p.thinking.splitlines()
    if effort == "high":
        return p.thinking
    if effort == "medium":  # the first half of the steps, then the conclusion
        steps = lines[:-1]
        return "\n".join(steps[: (len(steps) + 1) // 2] + lines[-1:])
    return lines[-1]


def completion(p: Problem, effort: str) -> str:
    return f"{ANALYSIS}{analysis(p, effort)}{TO_FINAL}{p.answer}{RETURN}"


def _system(rng: random.Random) -> list[dict]:
    from .data import SYSTEM_PROMPTS

    return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.2 else []


def sample_example(rng: random.Random) -> tuple[list[dict], str, list[tuple[str, bool]]]:
    """(conversation before the trained turn, effort, segments of the completion: (text, trained?))."""
    p = sample_problem(rng, held_out=False)
    effort = rng.choice(EFFORTS)
    user = {"role": "user", "content": p.prompt}
    r = rng.random()
    if r < 0.72:
        return _system(rng) + [user], effort, [(completion(p, effort), True)]
    if r < 0.88:  # a budget closed the analysis: answer from what is there (the forced text not trained)
        text = analysis(p, rng.choice(("medium", "high")))
        partial = text[: rng.randint(0, max(0, len(text) - 1))]
        return (
            _system(rng) + [user],
            effort,
            [(f"{ANALYSIS}{partial}", True), (TO_FINAL, False), (f"{p.answer}{RETURN}", True)],
        )
    first = sample_problem(rng, held_out=False)  # two turns: the history keeps only the final channel
    msgs = _system(rng) + [
        {"role": "user", "content": first.prompt},
        {"role": "assistant", "content": first.answer},
        user,
    ]
    return msgs, effort, [(completion(p, effort), True)]


def encode(tokenizer, example) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 where not trained): the prompt as the engine sees it, then each
    completion segment tokenized on its own (as the pipeline assembles a budget-cut sample)."""
    messages, effort, segments = example
    prompt = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, reasoning_effort=effort
    )
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    labels = [-100] * len(ids)
    for text, trained in segments:
        seg = tokenizer.encode(text, add_special_tokens=False)
        ids += seg
        labels += seg if trained else [-100] * len(seg)
    return ids, labels


def build_tokenizer(base: Path, out: Path):
    """The base teacher's tokenizer with the harmony tokens added (special, as in gpt-oss) and the
    harmony template; ``<|return|>`` ends a turn."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    tok.add_special_tokens({"additional_special_tokens": list(HARMONY_TOKENS)})
    tok.eos_token = RETURN
    tok.chat_template = TEMPLATE.read_text()
    tok.save_pretrained(str(out))
    return tok


def main(argv: list[str] | None = None) -> int:
    from .train import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--base", type=Path, default=HERE / "model", help="the Qwen3-style tiny teacher to start from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--measure-only", action="store_true")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cfg = replace(TrainConfig(), seed=args.seed, steps=args.steps, lr=2e-3, warmup_steps=30)
    if not args.measure_only:
        from transformers import GenerationConfig, Qwen3ForCausalLM

        from .train import train

        tok = build_tokenizer(args.base, out)
        model = Qwen3ForCausalLM.from_pretrained(str(args.base))
        model.resize_token_embeddings(len(tok), mean_resizing=True)
        ret, call, end = (tok.convert_tokens_to_ids(t) for t in (RETURN, "<|call|>", "<|endoftext|>"))
        model.config.eos_token_id = ret
        info = train(
            cfg,
            tok,
            out,
            log=lambda s: print(s, flush=True),
            model=model,
            example=lambda rng: encode(tok, sample_example(rng)),
        )
        GenerationConfig(eos_token_id=[ret, call, end], pad_token_id=tok.pad_token_id).save_pretrained(str(out))
        (out / "train_info.json").write_text(json.dumps({**info, "base": "tests/tiny_teacher/model"}, indent=1))
    from .harmony_eval import measure_and_card

    m = measure_and_card(out, cfg, json.loads((out / "train_info.json").read_text()))
    print(json.dumps(m, indent=1))
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"done in {time.time() - t0:.0f}s", flush=True)
    sys.exit(rc)
