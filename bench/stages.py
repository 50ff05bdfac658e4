"""The CPU stages' rows/s per core (``make bench``, ``--only stages``): how many CPU cores a GPU
replica needs beside it.

The generation chain's CPU stages run here in one process, one after another, on the same rows,
without Ray (its per-task cost is not theirs): prepare (validate, render the chat template,
tokenize) over the config's prompts; then a LABELLED STAND-IN for the engine gives every request a
long synthetic reasoning trace (``bench.filters.synthetic_traces``: ~8k tokens, English and Chinese,
boxed answers, the trace's own reference; think-mode requests get the whole trace, no-think ones
its answer; its tokenization is not timed); then parse, filter (the config's filter order) and the
Parquet write (the run's sink, to a local temporary folder). Each stage's CPU time is this
process's, except the filter stage's: it compares answers in a math-verify child process, so its
wall time is counted.
"""

from __future__ import annotations

import os
import tempfile
import time

#: what one replica generates, for the table of cores it needs: (label, samples/s). Assumed, not
#: measured here (no GPU): e.g. a 32B teacher on 2 GPUs decoding 2,000-20,000 tokens/s in all at
#: 4,000 tokens per sample is 0.5-5 samples/s.
REPLICA_RATES = (("0.5 samples/s", 0.5), ("5 samples/s", 5.0), ("50 samples/s", 50.0))


def _timed(fn, wall: bool = False):
    started = time.perf_counter() if wall else time.process_time()
    out = fn()
    return out, (time.perf_counter() if wall else time.process_time()) - started


def _stand_in_engine(rows: list[dict], tokenizer, traces: list) -> list[dict]:
    """What the generate stage leaves in each row, with a synthetic trace as the engine's output
    (NOT a model: the text is ``synthetic_traces``', cycled)."""
    out = []
    for i, r in enumerate(rows):
        trace = traces[i % len(traces)]
        text = trace.completion
        if r["prefill"].rstrip().endswith("</think>"):  # no-think: the template wrote the empty block
            text = text.split("</think>", 1)[1].lstrip("\n")
        now = time.time()
        out.append(
            {
                **r,
                "generated": text,
                "completion_token_ids": tokenizer.encode(text, add_special_tokens=False),
                "finish_reason": "stop",
                "prompt_token_ids": None,
                "t_submit": now,
                "t_done": now,
                "replica": "stand-in",
                "reference": trace.reference,
            }
        )
    return out


def bench_stages(config: str = "configs/local.yaml", prompts: int = 256) -> str:
    import pyarrow as pa
    from transformers import AutoTokenizer

    from bench.filters import synthetic_traces
    from pipeline.loading import load_config
    from pipeline.read import jsonl_blocks, resolve_input
    from pipeline.run_folder import RunFolder
    from pipeline.schema import to_table
    from pipeline.sink import SplitParquetSink
    from pipeline.stages.filter import FilterStage
    from pipeline.stages.parse import Parse
    from pipeline.stages.prepare import Prepare

    tmp = tempfile.mkdtemp(prefix="thinkmill-stages-")
    cfg = load_config(config, [f"input.limit={prompts}", f"output.path={tmp}", "output.run_id=stages"])
    files = resolve_input(cfg.input.path, cfg.input.format)
    with open(files.paths[0], "rb") as f:
        raws = pa.concat_tables(list(jsonl_blocks(f, files.paths[0]))).slice(0, prompts)
    tokenizer = AutoTokenizer.from_pretrained(cfg.teacher.model)
    traces = synthetic_traces(64)

    from pipeline.stages import Context

    ctx = Context(cfg)
    prepare = Prepare(**Prepare.settings(ctx))
    prepared, t_prepare = _timed(lambda: prepare(raws))
    pending = [r for r in prepared.to_pylist() if r["status"] == "pending"]
    generated = to_table(_stand_in_engine(pending, tokenizer, traces), stage="generate")
    parse = Parse(**Parse.settings(ctx))
    parsed, t_parse = _timed(lambda: parse(generated))
    filt = FilterStage(**FilterStage.settings(ctx))
    filt(parsed.slice(0, 2))  # warm-up: math-verify's child process starts here
    judged, t_filter = _timed(lambda: filt(parsed), wall=True)
    folder = RunFolder(os.path.join(tmp, "stages"))
    sink = SplitParquetSink(folder, cfg.output.rows_per_file)
    sink.on_write_start()
    tally, t_write = _timed(lambda: sink.write([judged], None))

    n = judged.num_rows
    chars = sum(len(t) for t in generated["generated"].to_pylist()) / n
    stages = [
        ("prepare", t_prepare, f"{raws.num_rows} prompts -> {prepared.num_rows} requests"),
        ("parse", t_parse, ""),
        ("filter", t_filter, ", ".join(cfg.filters.order) + " (wall time)"),
        ("write", t_write, f"{dict(tally.status)}"),
    ]
    per_sample = sum(t for _, t, _ in stages) / n
    lines = ["| stage | samples/s (1 core) | ms / sample | |", "|---|---:|---:|---|"]
    lines += [f"| {name} | {n / t:,.0f} | {1000 * t / n:.2f} | {note} |" for name, t, note in stages]
    lines += [
        f"| **all CPU stages** | **{1 / per_sample:,.0f}** | **{1000 * per_sample:.2f}** | |",
        "",
        f"{n} samples (mean {chars:,.0f} characters generated), the config's modes; "
        f"{prompts} prompts of `{cfg.input.path}`.",
        "",
        "CPU cores a replica needs for these stages to keep up (samples/s x ms per sample; the replica "
        "rates are assumed, not measured: there is no GPU here):",
        "",
        "| one replica generates | cores for the CPU stages |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {rate * per_sample:.3f} |" for label, rate in REPLICA_RATES]
    return "\n".join(lines)


if __name__ == "__main__":
    print(bench_stages())
