"""The state benchmarks of ``make bench``: what a resumed run holds in memory for a run folder of
10 million committed rows, and one duplicate-id ledger shard at its full share (``--only resume``);
what an incremental run reads at its start from earlier nights' folders (``--only incremental``).
Each runs in a fresh process, its peak memory read from the kernel."""

from __future__ import annotations

import multiprocessing as mp
import time


def _resume_state(n_rows: int, per_input: int, results) -> None:
    """In a fresh process: the resume state of a run folder holding ``n_rows`` committed rows."""
    import numpy as np

    from pipeline.committed import DoneSet, Scan, key_hash

    base = _peak_reset()
    t0 = time.perf_counter()
    s, chunk = Scan(), 100_000  # as from files of 100k rows each; keys shaped like the real ones
    for start in range(0, n_rows, chunk):
        idx = range(start, min(start + chunk, n_rows))
        s.paths.append(f"part-{start}")
        s.row_hashes.append(key_hash([f"{i:024x}" for i in idx]))
        s.prompt_hashes.append(key_hash([f"p-{i // per_input:021x}" for i in idx]))
        s.transient.append(np.zeros(len(idx), bool))
        keys, at = np.unique(s.prompt_hashes[-1], return_index=True)  # as scan keeps them: one per prompt
        s.owners.append((keys, (np.uint64(start) + at.astype(np.uint64)) // np.uint64(per_input)))
    t1 = time.perf_counter()
    done = DoneSet(s.done(per_input))
    seed = s.owners_of(done.hashes)  # what the duplicate-id ledger is seeded with
    t2 = time.perf_counter()
    hits = sum(done.has(f"p-{i:021x}") for i in range(10_000))
    t3 = time.perf_counter()
    peak = _status_kb("VmHWM")
    results.put(
        {
            "rows": n_rows,
            "prompts": len(done),
            "scan_s": t1 - t0,
            "decide_s": t2 - t1,
            "lookup_us": (t3 - t2) / 10_000 * 1e6,
            "hits": hits,
            "peak_mb": (peak - base) / 1024,
            "seeded": len(seed[0]),
            "done_mb": done.hashes.nbytes / 2**20,
        }
    )


def _peak_reset() -> int:
    """Reset this process's peak RSS (Linux ``clear_refs``: ``ru_maxrss`` survives the exec of a
    spawned child, so it would report the parent's peak) and return the current RSS in kB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kb("VmRSS")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _ledger_shard(n_ids: int, batch: int, results) -> None:
    """In a fresh process: one duplicate-id shard taking ``n_ids`` claims (its full share)."""
    import numpy as np

    from pipeline.committed import key_hash
    from pipeline.ledger import IdShard

    base = _peak_reset()
    shard, t0 = IdShard(), time.perf_counter()
    for start in range(0, n_ids, batch):
        keys = key_hash([f"prompt-{i:016x}" for i in range(start, min(start + batch, n_ids))])
        shard.claim(keys, np.arange(start, start + len(keys), dtype=np.uint64))
    shard._merge()
    t1 = time.perf_counter()
    peak = _status_kb("VmHWM")
    results.put(
        {
            "ids": len(shard),
            "claim_us": (t1 - t0) / n_ids * 1e6,
            "peak_mb": (peak - base) / 1024,
            "bytes_per_id": (shard.keys.nbytes + shard.owners.nbytes) / len(shard),
        }
    )


def _in_fresh_process(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, results))
    proc.start()
    r = results.get()
    proc.join()
    return r


def bench_resume(n_rows: int = 10_000_000, per_input: int = 4) -> str:
    from pipeline.ledger import IdLedger

    r = _in_fresh_process(_resume_state, n_rows, per_input)
    per_shard = IdLedger.PROMPTS_PER_SHARD
    led = _in_fresh_process(_ledger_shard, per_shard, 256)
    shards = -(-n_rows // per_input // per_shard)
    return (
        f"| committed rows | prompts done | hashing the keys | deciding (+ ledger seed) | lookup in prepare | "
        f"peak memory added | done set shipped to prepare |\n|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {r['rows']:,} | {r['prompts']:,} | {r['scan_s']:.1f} s | {r['decide_s']:.1f} s | "
        f"{r['lookup_us']:.1f} us | {r['peak_mb']:.0f} MB | {r['done_mb']:.0f} MB |\n\n"
        f"Duplicate-id ledger: one shard (a Ray actor) holds up to {per_shard:,} prompt ids; 10 million prompts "
        f"are {-(-10_000_000 // per_shard)} shards ({shards} for the {r['prompts']:,} prompts above).\n\n"
        f"| ids in one shard | claim, per id (batches of 256, hashing included) | bytes per id | "
        f"peak memory of the shard |\n|---:|---:|---:|---:|\n"
        f"| {led['ids']:,} | {led['claim_us']:.1f} us | {led['bytes_per_id']:.0f} B | {led['peak_mb']:.0f} MB |\n"
    )


def _write_nights(root: str, nights: int, prompts: int, per_input: int) -> str:
    """``nights`` completed run folders of ``prompts`` prompts x ``per_input`` rows each, as
    Parquet parts of 100k rows holding the key columns (the rest of a sample's columns are not
    read); returns their generation fingerprint."""
    import json
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import catalog
    from pipeline.loading import load_config

    cfg = json.loads(load_config("configs/local.yaml").model_dump_json())
    for night in range(nights):
        run = f"{root}/night-{night}"
        os.makedirs(f"{run}/accepted")
        with open(f"{run}/run.json", "w") as f:
            json.dump({"thinkmill_run": 1, "identity": {"config": cfg, "input": {}}, "created": night}, f)
        rows = prompts * per_input
        for start in range(0, rows, 100_000):
            idx = range(start, min(start + 100_000, rows))
            pids = [f"night{night}-{i // per_input:09d}" for i in idx]
            pq.write_table(
                pa.table({"sample_id": [f"{i:024x}" for i in idx], "prompt_id": pids}),
                f"{run}/accepted/part-{start:09d}.parquet",
                compression="zstd",
            )
        with open(f"{run}/summary.json", "w") as f:
            json.dump({"accepted": rows}, f)
    return catalog.fingerprint(cfg)


def _incremental_state(root: str, fp: str, results) -> None:
    """In a fresh process: the earlier set an incremental run builds from the folders under ``root``."""
    import fsspec  # noqa: F401 - imported before the peak is reset: a driver has them loaded anyway
    import pyarrow.compute  # noqa: F401 - as above
    import pyarrow.parquet  # noqa: F401 - as above

    from pipeline import catalog

    base = _peak_reset()
    t0 = time.perf_counter()
    earlier, runs = catalog.earlier_prompts(root, fp, this_run="tonight")
    t1 = time.perf_counter()
    hits = sum(earlier.run_of(f"night0-{i:09d}") is not None for i in range(10_000))
    t2 = time.perf_counter()
    catalog.write_manifest(root)
    t4 = time.perf_counter()
    results.put(
        {
            "runs": len(runs),
            "prompts": len(earlier),
            "build_s": t1 - t0,
            "lookup_us": (t2 - t1) / 10_000 * 1e6,
            "hits": hits,
            "peak_mb": (_status_kb("VmHWM") - base) / 1024,
            "shipped_mb": (earlier.hashes.nbytes + earlier.runs.nbytes) / 2**20,
            "manifest_s": t4 - t2,
        }
    )


def bench_incremental(nights: int = 5, prompts: int = 1_000_000, per_input: int = 2) -> str:
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="thinkmill-bench-nights-")
    try:
        t0 = time.perf_counter()
        fp = _write_nights(root, nights, prompts, per_input)
        written = time.perf_counter() - t0
        r = _in_fresh_process(_incremental_state, root, fp)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return (
        f"| earlier nights | prompts they made (rows) | reading them into the earlier set | lookup in prepare | "
        f"peak memory added | shipped to prepare | manifest rebuilt |\n|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {r['runs']} | {r['prompts']:,} ({r['prompts'] * per_input:,}) | {r['build_s']:.1f} s | "
        f"{r['lookup_us']:.1f} us | {r['peak_mb']:.0f} MB | {r['shipped_mb']:.0f} MB "
        f"| {r['manifest_s']:.2f} s |\n\n"
        f"(Writing the {nights} folders took {written:.0f} s and is not counted.)\n"
    )
