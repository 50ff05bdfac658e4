"""Teacher-score existing (prompt, completion) rows: the teacher's top-k log-probabilities over
each completion, in the sidecar format of ``output.logprobs`` (``pipeline.logprobs``), e.g. a
student's own samples for on-policy distillation.

Usage:
    python -m jobs.score --config C --input PATH --output DIR [--top-k 20] [--set key.path=value ...]

Input, one of:
- a thinkmill run folder (``summary.json`` and ``logprobs/`` or ``accepted/``): its rows'
  exact token ids are scored again (the sidecar's prompt and completion ids), so the scores can be
  compared with the ones stored while generating;
- JSONL or Parquet rows with TRL's conversational ``prompt`` and ``completion`` (message lists)
  and an optional ``id``: the prompt is rendered by the teacher's chat template with the
  generation prompt, the completion is what the template renders after it (its end-of-turn
  token included), both tokenized as the template renders them.

Output: ``DIR/logprobs/part-00000.parquet`` (one row per input row; ``sample_id`` is the row's
id, or its row number) and ``DIR/score.json`` (rows, tokens, bytes), written last. The teacher
(``teacher.model``, its engine settings) is the config's; one engine in this process (vLLM's
prompt log-probabilities, which are the raw ones), not a Ray job.
Exit codes: 0 done, 2 bad config / input / output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def exact_rows(run_dir: str) -> list[dict]:
    """(sample_id, prompt ids, completion ids, forced) of a run's sidecar rows."""
    from pipeline.distill import rows

    return [{k: r[k] for k in ("sample_id", "prompt_token_ids", "token_ids", "forced")} for r in rows(run_dir)]


def rendered_rows(path: str, tokenizer) -> list[dict]:
    """Rows with TRL ``prompt`` / ``completion`` messages, as the teacher's template renders them."""
    import datasets

    kind = "parquet" if path.endswith(".parquet") else "json"
    out = []
    for i, r in enumerate(datasets.load_dataset(kind, data_files=path, split="train")):
        prompt = tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
        if not full.startswith(prompt):
            raise ValueError(f"row {i}: the template does not render the completion after the prompt")
        p = tokenizer.encode(prompt, add_special_tokens=False)
        c = tokenizer.encode(full[len(prompt) :], add_special_tokens=False)
        out.append(
            {"sample_id": str(r.get("id") or i), "prompt_token_ids": p, "token_ids": c, "forced": [False] * len(c)}
        )
    return out


def score(llm, items: list[dict], k: int):
    """The teacher's logprobs over each item's completion (vLLM prompt logprobs)."""
    import vllm
    from vllm.inputs import TokensPrompt

    from pipeline.logprobs import TokenLogprobs, row_columns

    params = vllm.SamplingParams(max_tokens=1, prompt_logprobs=k, temperature=0.0)
    outs = llm.generate(
        [TokensPrompt(prompt_token_ids=it["prompt_token_ids"] + it["token_ids"]) for it in items],
        params,
        use_tqdm=False,
    )
    scored = []
    for it, o in zip(items, outs):
        p = len(it["prompt_token_ids"])
        lp = TokenLogprobs.of_vllm(o.prompt_logprobs[p:], it["token_ids"], k)
        lp.forced = list(it["forced"])  # forced tokens keep their mark; their scores are the teacher's view
        scored.append(
            {
                "sample_id": it["sample_id"],
                "status": "accepted",
                **row_columns(it["prompt_token_ids"], it["token_ids"], lp),
            }
        )
    return scored


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True, help="a thinkmill run folder, or a JSONL / Parquet file")
    ap.add_argument("--output", required=True, help="output folder")
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    args = ap.parse_args(argv)

    from pipeline.loading import ConfigError, load_config

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if os.path.exists(os.path.join(args.output, "score.json")):
        print(f"error: {args.output} already holds a score; choose another --output", file=sys.stderr)
        return 2
    import pyarrow as pa

    from pipeline.engine import offline_llm
    from pipeline.logprobs import FOLDER, sidecar, tokenizer_meta
    from pipeline.schema import STREAM
    from pipeline.stages.generate import engine_kwargs

    started = time.time()
    kw = engine_kwargs(cfg.teacher, cfg.generation.modes)
    kw["max_logprobs"] = max(20, args.top_k)
    llm = offline_llm(kw)
    tok = llm.get_tokenizer()
    try:
        run_folder = os.path.exists(os.path.join(args.input, "summary.json"))
        items = exact_rows(args.input) if run_folder else rendered_rows(args.input, tok)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: --input {args.input}: {e}", file=sys.stderr)
        return 2
    rows = score(llm, items, args.top_k)
    table = pa.Table.from_pylist([{c: r.get(c) for c in STREAM.names} for r in rows], schema=STREAM)
    side = sidecar(table, args.top_k, tokenizer_meta(tok))
    os.makedirs(os.path.join(args.output, FOLDER), exist_ok=True)
    import pyarrow.parquet as pq

    part = os.path.join(args.output, FOLDER, "part-00000.parquet")
    if side is not None:  # no rows in: no part
        pq.write_table(side, part, compression="zstd")
    tokens = sum(len(it["token_ids"]) for it in items)
    summary = {
        "rows": len(items),
        "tokens": tokens,
        "bytes": os.path.getsize(part) if side is not None else 0,
        "top_k": args.top_k,
        "input": args.input,
        "exact_ids": run_folder,
        "wall_s": round(time.time() - started, 2),
    }
    with open(os.path.join(args.output, "score.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"scored {len(items)} rows, {tokens} tokens -> {part}")
    import contextlib

    with contextlib.suppress(Exception):  # the engine's processes now, not at interpreter exit
        llm.llm_engine.engine_core.shutdown()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # everything is written: skip the interpreter's teardown, where vLLM's threads can abort the
    # process ("terminate called without an active exception", seen in CI after a complete score)
    os._exit(code)
