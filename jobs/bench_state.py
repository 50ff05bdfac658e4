"""The resume-state benchmarks of ``make bench`` (``--only resume``): what a resumed run holds in
memory for a run folder of 10 million committed rows, and one duplicate-id ledger shard at its
full share. Each runs in a fresh process, its peak memory read from the kernel."""

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
    results.put({"rows": n_rows, "prompts": len(done), "scan_s": t1 - t0, "decide_s": t2 - t1,
                 "lookup_us": (t3 - t2) / 10_000 * 1e6, "hits": hits, "peak_mb": (peak - base) / 1024,
                 "seeded": len(seed[0]),
                 "done_mb": done.hashes.nbytes / 2**20})


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
    results.put({"ids": len(shard), "claim_us": (t1 - t0) / n_ids * 1e6, "peak_mb": (peak - base) / 1024,
                 "bytes_per_id": (shard.keys.nbytes + shard.owners.nbytes) / len(shard)})


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
    return (f"| committed rows | prompts done | hashing the keys | deciding (+ ledger seed) | lookup in prepare | "
            f"peak memory added | done set shipped to prepare |\n|---:|---:|---:|---:|---:|---:|---:|\n"
            f"| {r['rows']:,} | {r['prompts']:,} | {r['scan_s']:.1f} s | {r['decide_s']:.1f} s | "
            f"{r['lookup_us']:.1f} us | {r['peak_mb']:.0f} MB | {r['done_mb']:.0f} MB |\n\n"
            f"Duplicate-id ledger: one shard (a Ray actor) holds up to {per_shard:,} prompt ids; 10 million prompts "
            f"are {-(-10_000_000 // per_shard)} shards ({shards} for the {r['prompts']:,} prompts above).\n\n"
            f"| ids in one shard | claim, per id (batches of 256, hashing included) | bytes per id | "
            f"peak memory of the shard |\n|---:|---:|---:|---:|\n"
            f"| {led['ids']:,} | {led['claim_us']:.1f} us | {led['bytes_per_id']:.0f} B | {led['peak_mb']:.0f} MB |\n")
