"""Show what a teacher does in each mode: think, no-think, a /no_think flag, a thinking budget.

Usage:
    python -m tests.tiny_teacher.try_it [--model DIR] [--prompts FILE.jsonl] [-n 3] [--budget 8]

Serves the model with the real vLLM engine and prints each completion, so you can see
the think block, the answer and the forced early-stop before configuring a run.
Defaults to the committed tiny teacher and its held-out prompt set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.tiny_teacher import ARTIFACT_DIR, PROMPTS_PATH


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ARTIFACT_DIR)
    ap.add_argument("--prompts", type=Path, default=PROMPTS_PATH)
    ap.add_argument("-n", type=int, default=3, help="how many prompts to show")
    ap.add_argument("--budget", type=int, default=8, help="thinking budget in tokens for the budget row")
    args = ap.parse_args(argv)

    rows = [json.loads(line) for line in args.prompts.read_text(encoding="utf-8").splitlines()[: args.n]]
    from tests.tiny_teacher.evaluate import close_llm, generate, load_llm

    llm = load_llm(args.model, max_num_seqs=16)
    refs = [r["reference"] for r in rows]
    plain = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    flagged = [[{"role": "user", "content": r["prompt"] + " /no_think"}] for r in rows]
    runs = {
        "think": generate(llm, plain, refs),
        "no_think (enable_thinking=False)": generate(llm, plain, refs, enable_thinking=False),
        "/no_think flag": generate(llm, flagged, refs),
        f"think, budget {args.budget} tokens": generate(llm, plain, refs, thinking_token_budget=args.budget),
    }
    for i, row in enumerate(rows):
        print(f"\n=== {row['id']}  {row['prompt']}  (reference {row['reference']})")
        for name, outs in runs.items():
            o = outs[i]
            print(f"--- {name}: {'correct' if o.correct else 'WRONG'}, {o.thinking_tokens} thinking tokens")
            print(o.text)
    print()
    for name, outs in runs.items():
        print(f"{name:36s} accuracy {sum(o.correct for o in outs)}/{len(outs)}")
    close_llm(llm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
