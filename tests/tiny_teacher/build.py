"""Build the tiny teacher deterministically from a seed, measure it through vLLM, write its card.

Usage:
    python -m tests.tiny_teacher.build --out tests/tiny_teacher/model [--seed 0] [--steps 1500]
    python -m tests.tiny_teacher.build --out DIR --measure-only     # re-measure an existing build

Writes to DIR: tokenizer (tokenizer.json, tokenizer_config.json with the chat template),
config.json, generation_config.json, model.safetensors, README.md (the model card with the
measured figures) and measurements.json; and the held-out prompt set (--prompts).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from tests.tiny_teacher import EARLY_STOP, PROMPTS_PATH
from tests.tiny_teacher.data import SYSTEM_PROMPTS, budget_end_str
from tests.tiny_teacher.tasks import sample_problem
from tests.tiny_teacher.train import TrainConfig

TEMPLATE = Path(__file__).resolve().parent / "chat_template.jinja"


def tokenizer_corpus(seed: int):
    """Texts the BPE learns its merges from: training problems and rendered turns."""
    rng = random.Random(seed)
    for _ in range(20000):
        p = sample_problem(rng, held_out=False)
        yield p.prompt
        yield p.thinking
        yield p.answer
    for _ in range(200):
        yield from SYSTEM_PROMPTS
        yield EARLY_STOP
        yield "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n /think /no_think"


def write_prompts(path: Path, n: int, seed: int) -> None:
    """The demo / test prompt set: held-out problems with ids, references and sources."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            p = sample_problem(rng, held_out=True)
            row = {
                "id": f"tiny-{i:05d}",
                "prompt": p.prompt,
                "reference": p.reference,
                "source": f"tiny/{p.kind}",
                "language": p.language,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_card(out: Path, cfg: TrainConfig, train_info: dict, m: dict) -> None:
    budgets = "\n".join(
        f"| {b} | {v['accuracy']:.1%} | {v['budget_hit']:.1%} | {v['answered']:.1%} |" for b, v in m["budgets"].items()
    )
    kinds = "\n".join(f"| {k} | {v['n']} | {v['think']:.1%} | {v['no_think']:.1%} |" for k, v in m["by_kind"].items())
    (out / "README.md").write_text(
        f"""# thinkmill tiny teacher

A {train_info["parameters"] / 1e6:.2f}M-parameter `Qwen3ForCausalLM` trained in this repository on synthetic
arithmetic (multi-digit addition and subtraction, multiplication by a digit, comparisons, two-step
word problems; a quarter of them in Chinese). It behaves like a Qwen3 hybrid reasoning model in
miniature: step-by-step work in `<think>`, then `\\boxed{{answer}}`; an empty think block in
non-thinking mode; follows `/think` and `/no_think`; answers after Qwen3's early-stop sentence.

Rebuild (deterministic from the seed): `python -m tests.tiny_teacher.build --out <dir> --seed {cfg.seed}`.
Trained {cfg.steps} steps of batch {cfg.batch_size} in {train_info["train_seconds"]:.0f} s on 2 CPU cores
(final loss {train_info["final_loss"]}).

## Measured through vLLM

Greedy decoding on {m["problems"]} held-out problems (never seen in training: split by a hash of the
problem), vLLM {m["vllm_version"]} (CPU build), engine-native thinking budget with end string
`{budget_end_str()!r}`.

| mode | accuracy |
|---|---|
| think | {m["think_accuracy"]:.1%} |
| no-think (`enable_thinking=False`) | {m["no_think_accuracy"]:.1%} |
| flags (`/think`, `/no_think` in user or system turn, latest wins): followed | {m["flags_followed"]:.1%} |

Mean thinking length in think mode: {m["think_mean_thinking_tokens"]} tokens.

| thinking budget (tokens) | accuracy | budget hit | answered |
|---|---|---|---|
{budgets}

| kind | n | think | no-think |
|---|---|---|---|
{kinds}

## Architecture

{json.dumps(asdict(cfg), indent=1)}
""",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="artifact directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--prompts", type=Path, default=PROMPTS_PATH, help="where to write the prompt set")
    ap.add_argument("--num-prompts", type=int, default=3000)
    ap.add_argument("--measure-only", action="store_true", help="skip training; re-measure --out")
    args = ap.parse_args(argv)

    cfg = replace(TrainConfig(), seed=args.seed, steps=args.steps)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not args.measure_only:
        from transformers import GenerationConfig

        from tests.tiny_teacher.tokenizer import build_tokenizer
        from tests.tiny_teacher.train import train

        t0 = time.time()
        tok = build_tokenizer(tokenizer_corpus(cfg.seed), cfg.vocab_size, TEMPLATE.read_text(), out)
        print(f"tokenizer: {len(tok)} tokens ({time.time() - t0:.1f}s)", flush=True)
        info = train(cfg, tok, out, log=lambda s: print(s, flush=True))
        eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
        GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id).save_pretrained(str(out))
        (out / "train_info.json").write_text(json.dumps(info, indent=1))
        write_prompts(args.prompts, args.num_prompts, seed=cfg.seed + 1000)
        print(f"prompts: {args.num_prompts} -> {args.prompts}", flush=True)
    info = json.loads((out / "train_info.json").read_text())

    import vllm

    from tests.tiny_teacher.evaluate import close_llm, load_llm, measure

    llm = load_llm(out)
    m = measure(llm)
    close_llm(llm)
    m["vllm_version"] = vllm.__version__
    (out / "measurements.json").write_text(json.dumps(m, indent=1))
    write_card(out, cfg, info, m)
    print(json.dumps(m, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
