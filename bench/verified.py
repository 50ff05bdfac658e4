"""Sample until verified against fixed n (``--only verified``): the real job on the tiny teacher,
think mode, the same prompts three times in one run of the bench: fixed n = 2, fixed n = 8, and
``accepted_per_prompt`` k = 2 with n = 8. Each job runs as a user runs it (``python -m
jobs.generate``, embedded Ray, a fresh process each); the figures come from their summaries and
data."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

K, N_SMALL, N = 2, 2, 8
THINK = "[{name: think, thinking: true, sampling: {temperature: 0.6, top_p: 0.95, top_k: 20, max_tokens: 400}}]"


def _run(config: str, prompts: int, out: Path, run_id: str, *sets: str) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "jobs.generate",
        "--config",
        config,
        "--set",
        f"input.limit={prompts}",
        "--set",
        f"output.path={out}",
        "--set",
        f"output.run_id={run_id}",
        "--set",
        f"generation.modes={THINK}",
        *(x for s in sets for x in ("--set", s)),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{run_id} failed: {r.stderr[-3000:]}")
    return json.loads((out / run_id / "summary.json").read_text())


def _reached(out: Path, run_id: str) -> int:
    """Prompts with at least K accepted samples."""
    import pyarrow.parquet as pq

    per = Counter()
    for p in (out / run_id / "accepted").glob("*.parquet"):
        per.update(pq.read_table(p, columns=["prompt_id"])["prompt_id"].to_pylist())
    return sum(n >= K for n in per.values())


def bench_verified(config: str = "configs/local.yaml", prompts: int = 128) -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="verified-") as tmp:
        out = Path(tmp)
        for label, run_id, sets in (
            (f"fixed n = {N_SMALL}", "n2", [f"generation.samples_per_prompt={N_SMALL}"]),
            (f"fixed n = {N}", "n8", [f"generation.samples_per_prompt={N}"]),
            (f"k = {K}, n = {N}", "k2", [f"generation.samples_per_prompt={N}", f"generation.accepted_per_prompt={K}"]),
        ):
            s = _run(config, prompts, out, run_id, *sets)
            c, made, reached = s["cost"], s["accepted"] + s["rejected"]["total"], _reached(out, run_id)
            v = s.get("verified")
            rows.append(
                f"| {label} | {reached} of {prompts} | {made:,} | {s['accepted']:,} | "
                f"{s['tokens']['completion']:,} | {s['tokens']['completion'] / max(reached, 1):,.0f} | "
                f"{c['tokens_per_accepted']:.0f} | {c['engine_s_per_accepted']} | {s['wall_s']:.0f} | "
                f"{v['passes'] if v else 1} |"
            )
    return (
        f"| {prompts} prompts, think mode | prompts with >= {K} accepted | samples made | accepted | generated "
        f"tokens | tokens per prompt with >= {K} | tokens / accepted | engine-s / accepted | wall s | passes |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        f"A k-run makes samples 0-{K - 1} of every prompt, then 2-3 and 4-7 of the prompts still short of "
        f"{K} accepted: a subset of the fixed n = {N} run (same ids, texts). Each round is one pass of the "
        "stream, and the replicas' engines start again for it: on the tiny teacher, whose samples take "
        "a fraction of a second, those starts (~30 s each) dominate the wall time; on a real teacher "
        "the generation does, and the wall time follows the samples made."
    )
