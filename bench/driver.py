"""What the driver holds at the end of a run, by run size (``make bench``, ``--only driver``): the
run's count of what its folder holds (``Tally.of_committed``, part by part, engine timings from the
parts' metadata) and the summary built from it, for folders of 10k, 100k and 1M committed rows,
each counted in a fresh process, its peak memory read from the kernel.

The folders are written by the run's own sink (``SplitParquetSink``: parts of 20,000 rows with
their timing metadata), rows shaped like the demo's (2 modes, 4 filters' verdicts, short texts,
eight replicas, one attempt); the stream itself (Ray Data's executor, bounded by its backpressure
whatever the input's size) and the replicas are not part of this benchmark.
"""

from __future__ import annotations

import tempfile
import time

from .state import _in_fresh_process, _peak_reset, _status_kb

PART_ROWS = 20_000


def _rows(start: int, n: int) -> list[dict]:
    verdict = [
        {"filter": f, "passed": True, "reason": None, "score": None, "detail": None}
        for f in ("format", "wrong_answer", "repetition", "language_mixing")
    ]
    out = []
    for i in range(start, start + n):
        mode = "think" if i % 2 else "no_think"
        t = 1_700_000_000.0 + i * 0.01
        out.append(
            {
                "sample_id": f"{i:024x}",
                "prompt_id": f"p-{i // 2:021x}",
                "run_id": "bench",
                "source": "s",
                "location": f"in.jsonl:{i // 2}",
                "status": "accepted" if i % 3 else "rejected",
                "reject_reason": None if i % 3 else "wrong_answer",
                "mode": mode,
                "verdicts": verdict,
                "messages": [
                    {"role": "user", "content": f"What is {i} + 1?"},
                    {"role": "assistant", "content": f"<think>\nadd one\n</think>\n\n\\boxed{{{i + 1}}}"},
                ],
                "thinking": "add one",
                "answer": f"\\boxed{{{i + 1}}}",
                "thinking_tokens": 3 if i % 2 else 0,
                "answer_tokens": 6,
                "completion_tokens": 12,
                "prompt_tokens": 20,
                "sample_index": 0,
                "seed": i,
                "budget_hit": False,
                "finish_reason": "stop",
                "teacher": "t",
                "replica": f"host:{i % 8}",
                "t_submit": t,
                "t_done": t + 2.0,
            }
        )
    return out


def _write(root: str, n_rows: int) -> str:
    import pyarrow as pa

    from pipeline.run_folder import RunFolder
    from pipeline.schema import STREAM
    from pipeline.sink import SplitParquetSink

    folder = RunFolder(f"{root}/run-{n_rows}")
    folder.open({"config": {}, "input": {}}, overwrite=False)
    sink = SplitParquetSink(folder, PART_ROWS, attempt=1_700_000_000.0)
    sink.on_write_start()
    for start in range(0, n_rows, PART_ROWS):
        rows = _rows(start, min(PART_ROWS, n_rows - start))
        sink.write([pa.Table.from_pylist([{k: r.get(k) for k in STREAM.names} for r in rows], schema=STREAM)], None)
    return folder.url


def _count(url: str, results) -> None:
    """In a fresh process: the end of a run's counting over the folder at ``url``."""
    from pipeline.loading import load_config
    from pipeline.report import summary as summaries
    from pipeline.run_folder import RunFolder
    from pipeline.tally import Tally

    cfg = load_config("configs/local.yaml")
    base = _peak_reset()
    t0 = time.perf_counter()
    t = Tally.of_committed(RunFolder(url))
    s = summaries.build(cfg, t.rows // 2, 2, url, t, summaries.RunFacts(1.0))
    results.put(
        {
            "rows": t.rows,
            "count_s": time.perf_counter() - t0,
            "peak_mb": (_status_kb("VmHWM") - base) / 1024,
            "replicas": len(s["replica_work"]),
            "buckets": sum(len(v) for v in s["throughput"]["by_replica"].values()),
        }
    )


def bench_driver(sizes=(10_000, 100_000, 1_000_000)) -> str:
    root = tempfile.mkdtemp(prefix="thinkmill-driver-")
    lines = [
        "| committed rows | counting the folder (1 core) | peak memory added | replicas / throughput buckets |",
        "|---:|---:|---:|---:|",
    ]
    for n in sizes:
        r = _in_fresh_process(_count, _write(root, n))
        lines.append(
            f"| {r['rows']:,} | {r['count_s']:.1f} s | {r['peak_mb']:.0f} MB | {r['replicas']} / {r['buckets']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(bench_driver())
