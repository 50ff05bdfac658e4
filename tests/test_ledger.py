"""The duplicate-id ledger: sharded, 16 bytes per id, and the same owners across a resume."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from pipeline.committed import DoneSet, key_hash
from pipeline.ledger import IdLedger, IdShard, Locations

PATHS = ["/in/a.jsonl", "/in/b.parquet"]


def local(shards: int = 3, merge_every: int = 4) -> IdLedger:
    return IdLedger([IdShard(merge_every) for _ in range(shards)], Locations(PATHS))


def test_first_claim_owns_later_ones_are_told_the_owner_across_shards_and_merges():
    ledger = local()
    first = ledger.claim([(f"p{i}", "/in/a.jsonl", i) for i in range(40)])
    assert first == [None] * 40
    again = ledger.claim([(f"p{i}", "/in/b.parquet", 100 + i) for i in range(0, 40, 3)])
    assert again == [f"/in/a.jsonl:{i}" for i in range(0, 40, 3)]
    # a retried batch re-claims its own rows; duplicates inside one batch: the first owns
    assert ledger.claim([("p5", "/in/a.jsonl", 5), ("new", "/in/b.parquet", 1), ("new", "/in/b.parquet", 2)]) == [
        None,
        None,
        "/in/b.parquet#row1",
    ]
    sizes = [len(s) for s in ledger.shards]
    assert sum(sizes) == 41 and all(n > 0 for n in sizes)  # spread over the shards
    assert all(len(s.recent) < 4 for s in ledger.shards)  # merged into the sorted arrays
    assert all(np.all(np.diff(s.keys.astype(np.float64)) > 0) for s in ledger.shards)


def test_a_shard_costs_16_bytes_per_id():
    shard = IdShard(merge_every=10_000)
    keys = key_hash([f"id-{i}" for i in range(100_000)])
    shard.claim(keys, np.arange(100_000, dtype=np.uint64))
    shard._merge()
    assert shard.keys.nbytes + shard.owners.nbytes == 16 * 100_000 and not shard.recent


def test_seeded_owners_stay_owners():
    ledger = local()
    seed_keys = key_hash(["x"])
    owner = np.array([Locations(PATHS).pack("/in/a.jsonl:9")], np.uint64)
    for i, s in enumerate(ledger.shards):
        at = seed_keys % np.uint64(3) == i
        s.seed(seed_keys[at], owner[at])
    assert ledger.claim([("x", "/in/b.parquet", 0), ("x", "/in/a.jsonl", 9)]) == ["/in/a.jsonl:9", None]


def test_shards_run_as_ray_actors(ray_session, monkeypatch):
    monkeypatch.setattr(IdLedger, "PROMPTS_PER_SHARD", 2)
    keys = key_hash(["seeded"])
    owners = np.array([Locations(PATHS).pack_row("/in/a.jsonl", 1)], np.uint64)
    ledger = IdLedger.start(PATHS, prompts=5, seed=(keys, owners))
    assert len(ledger.shards) == 3
    assert ledger.claim([("a", "/in/a.jsonl", 2), ("seeded", "/in/a.jsonl", 3), ("a", "/in/a.jsonl", 4)]) == [
        None,
        "/in/a.jsonl:1",
        "/in/a.jsonl:2",
    ]


def _prepare(done, ledger):
    from pipeline.loading import load_config
    from pipeline.stages.prepare import Prepare, PrepareSettings
    from tests.tiny_teacher import ARTIFACT_DIR

    cfg = load_config(
        data={
            "input": {"path": "p"},
            "teacher": {"model": str(ARTIFACT_DIR)},
            "generation": {"modes": [{"name": "think"}]},
        }
    )
    return Prepare(PrepareSettings.of(cfg), ledger=ledger, done=done)


ROWS = [
    {"_path": "/in/a.jsonl", "_row": row, "_raw": json.dumps({"id": "X", "prompt": "What is 2+2?"}), "_error": None}
    for row in (5, 1)
]  # the later row comes first: on resume the claim order may change


def test_resume_keeps_a_committed_duplicate_and_lets_its_owner_generate(tiny_tokenizer):
    # attempt 1: row 1 owned X, row 5's duplicate error was committed, row 1's sample was not
    stage = _prepare(DoneSet.of(["@/in/a.jsonl:5"]), local())
    rows = stage(pa.Table.from_pylist(ROWS)).to_pylist()
    assert [(r["location"], r["status"]) for r in rows] == [("/in/a.jsonl:1", "pending")]


def test_resume_keeps_a_committed_owner_and_reports_the_duplicate_against_it(tiny_tokenizer):
    # attempt 1: row 1's samples were committed (X done, owner row 1), row 5's error was not
    ledger = local()
    keys = key_hash(["X"])
    for i, s in enumerate(ledger.shards):
        at = keys % np.uint64(3) == i
        s.seed(keys[at], np.array([Locations(PATHS).pack("/in/a.jsonl:1")], np.uint64)[at])
    rows = _prepare(DoneSet.of(["X"]), ledger)(pa.Table.from_pylist(ROWS)).to_pylist()
    assert [(r["location"], r["status"], r["error"]) for r in rows] == [("/in/a.jsonl:5", "error", "duplicate_id")]
    assert "already came from /in/a.jsonl:1" in rows[0]["detail"]
