"""Duplicate prompt ids across a whole run: the first row to claim an id owns it.

Every prepare worker asks the ledger about the prompt ids of its batch. The ledger is sharded:
an id goes to shard ``hash(id) % shards``, one small Ray actor per shard (``IdShard``), about
2 million prompts per shard, so no actor holds every id. A shard keeps 16 bytes per prompt: the
id's 8-byte hash and its owner, the row that claimed it first, packed as (input file index, row
number); so a claim can say which row owns the id (``Locations.unpack``) and a retried batch
re-claims its own rows. Two different ids share a hash with probability about n^2 / 2^65
(3e-6 for 10 million prompts): the later one would be reported as a duplicate, in ``errors/``.

Across a resume the owners stay the same: the run seeds the shards with the owners of every
prompt already committed (``committed.Scan.owners``), and a row committed earlier as a duplicate
does not claim again, so a duplicate's error row and its owner's samples always agree.
"""

from __future__ import annotations

import numpy as np

from .committed import NO_OWNER as NONE
from .committed import key_hash
from .pinned import on_driver_node

_ROW_BITS = 40  # rows per input file < 2^40; file index in the upper 24 bits


class Locations:
    """Packs an input row's location (``file:line`` / ``file#rowN``) into one uint64 and back.

    >>> loc = Locations(["/d/a.jsonl", "/d/b.parquet"])
    >>> [loc.unpack(loc.pack(p)) for p in ("/d/a.jsonl:7", "/d/b.parquet#row3", "/elsewhere:1")]
    ['/d/a.jsonl:7', '/d/b.parquet#row3', None]
    """

    def __init__(self, paths: list[str]):
        self.paths = list(paths)
        self._index = {p: i for i, p in enumerate(self.paths)}

    def pack_row(self, path: str, row: int) -> np.uint64:
        i = self._index.get(path)
        return NONE if i is None or row >= 2**_ROW_BITS else np.uint64((i << _ROW_BITS) | row)

    def pack(self, loc: str | None) -> np.uint64:
        if not loc:
            return NONE
        path, sep, row = loc.rpartition("#row") if loc.rpartition("#row")[1] else loc.rpartition(":")
        return self.pack_row(path, int(row)) if sep and row.isdigit() else NONE

    def pack_all(self, locs: list[str | None]) -> np.ndarray:
        return np.array([self.pack(loc) for loc in locs], dtype=np.uint64)

    def unpack(self, v) -> str | None:
        if np.uint64(v) == NONE:
            return None
        i, row = int(v) >> _ROW_BITS, int(v) & (2**_ROW_BITS - 1)
        path = self.paths[i]
        return f"{path}#row{row}" if path.endswith((".parquet", ".arrow")) else f"{path}:{row}"


class IdShard:
    """Ray actor: the owners of the ids that hash to this shard.

    Owners live in two sorted arrays (16 bytes per id); new claims gather in a dict that is
    merged into the arrays every ``merge_every`` claims, so a claim is a binary search."""

    def __init__(self, merge_every: int = 65536):
        self.keys = np.zeros(0, np.uint64)
        self.owners = np.zeros(0, np.uint64)
        self.recent: dict[int, int] = {}
        self.merge_every = merge_every

    def seed(self, keys: np.ndarray, owners: np.ndarray) -> int:
        """Owners known before the run starts (a resumed run's committed prompts)."""
        for k, o in zip(keys.tolist(), owners.tolist()):
            self.recent.setdefault(k, o)
        self._merge()
        return len(self)

    def claim(self, keys: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """For each (key, would-be owner): the owner of the key (the would-be owner if it is new)."""
        out = owners.copy()
        if len(self.keys):
            i = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
            hit = self.keys[i] == keys
            out[hit] = self.owners[i[hit]]
        else:
            hit = np.zeros(len(keys), bool)
        for j in np.flatnonzero(~hit).tolist():
            out[j] = self.recent.setdefault(int(keys[j]), int(owners[j]))
        if len(self.recent) >= self.merge_every:
            self._merge()
        return out

    def _merge(self) -> None:
        if not self.recent:
            return
        keys = np.concatenate([self.keys, np.fromiter(self.recent.keys(), np.uint64, len(self.recent))])
        owners = np.concatenate([self.owners, np.fromiter(self.recent.values(), np.uint64, len(self.recent))])
        order = np.argsort(keys, kind="stable")
        self.keys, self.owners, self.recent = keys[order], owners[order], {}

    def __len__(self) -> int:
        return len(self.keys) + len(self.recent)


class IdLedger:
    """The shards and how to reach them; picklable, so it travels to the prepare workers.

    ``shards`` holds Ray actor handles, or plain ``IdShard`` objects (one process, tests)."""

    PROMPTS_PER_SHARD = 2_000_000

    def __init__(self, shards: list, locations: Locations):
        self.shards, self.locations = shards, locations

    @classmethod
    def start(cls, paths: list[str], prompts: int, seed: tuple[np.ndarray, np.ndarray] | None = None) -> IdLedger:
        """Start ``ceil(prompts / PROMPTS_PER_SHARD)`` shard actors (at most 64), seeded."""
        import ray

        n = min(64, max(1, -(-prompts // cls.PROMPTS_PER_SHARD)))
        ledger = cls([ray.remote(IdShard).options(**on_driver_node()).remote() for _ in range(n)], Locations(paths))
        if seed is not None and len(seed[0]):
            keys, owners = seed
            which = keys % np.uint64(n)
            ray.get([s.seed.remote(keys[which == i], owners[which == i]) for i, s in enumerate(ledger.shards)])
        return ledger

    def claim(self, items: list[tuple[str, str, int]]) -> list[str | None]:
        """For each ``(prompt_id, path, row)``: None if that row owns the id, else the owner's location."""
        if not items:
            return []
        keys = key_hash([pid for pid, _, _ in items])
        mine = np.array([self.locations.pack_row(path, row) for _, path, row in items], dtype=np.uint64)
        which = keys % np.uint64(len(self.shards))
        owners = np.empty(len(items), np.uint64)
        parts = [(np.flatnonzero(which == i), s) for i, s in enumerate(self.shards)]
        parts = [(at, s) for at, s in parts if len(at)]
        if parts and hasattr(parts[0][1].claim, "remote"):
            import ray

            results = ray.get([s.claim.remote(keys[at], mine[at]) for at, s in parts])
        else:
            results = [s.claim(keys[at], mine[at]) for at, s in parts]
        for (at, _), got in zip(parts, results):
            owners[at] = got
        return [
            None if o == m else (self.locations.unpack(o) or "an earlier row")
            for o, m in zip(owners.tolist(), mine.tolist())
        ]
