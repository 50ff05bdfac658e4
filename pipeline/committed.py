"""What a run folder holds: the committed rows, and making it exactly what a run should leave.

A run is resumed per *prompt* (per input row): a prompt is done when all of its
``samples_per_input`` rows are in the folder, none of them a transient failure (an engine error,
which a new attempt may not repeat). At the start of a resume, ``reconcile`` makes the folder
hold done prompts only: it drops exact duplicates (a write task Ray retried under another file
name) and the rows of prompts that were half written when the run died, rewriting the few files
they are in. Then the prepare stage skips the done prompts (``DoneSet``) and the run makes the
rest, so the finished folder holds every sample exactly once.

The unit is the prompt, not the sample, because a prompt's samples are judged together (the
adaptive choice needs all of them). Ray Data's ``ray.data.checkpoint`` keys on an id present at
read time, so a prompt fanned out to N samples could be marked done half written: not used.

Keys: a row's prompt key is its ``prompt_id``, or ``@<location>`` for an input row that never
became a prompt (invalid JSON, a duplicate id); a row's own key is its ``sample_id``, or
``@<location>#<sample_index>``, or ``~<prompt_id>`` for an ``earlier/`` row (a prompt an earlier
run generated, ``pipeline.catalog``), which stands for all of its prompt's samples. ``DoneSet``
holds 8-byte hashes of the done prompt keys in a sorted numpy array: 10 million prompts cost
80 MB, and membership is a binary search.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

#: Error reasons a new attempt may not repeat: their prompts are redone on resume.
TRANSIENT = frozenset(
    {"engine_error", "engine_no_output", "request_timeout", "engine_died", "unfinished", "deadline_reached"}
)
KEY_COLUMNS = {
    "sample": ["sample_id", "prompt_id", "location", "sample_index"],
    "error": ["sample_id", "prompt_id", "location", "sample_index", "error"],
    "earlier": ["prompt_id", "location"],
}
NO_OWNER = np.uint64(2**64 - 1)


def key_hash(keys: list[str]) -> np.ndarray:
    """8-byte hashes of keys (blake2b), as uint64."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(k.encode("utf-8", "backslashreplace"), digest_size=8).digest(), "little")
            for k in keys
        ],
        dtype=np.uint64,
    )


class DoneSet:
    """The prompts a resumed run skips. Picklable (it travels to the prepare workers).

    >>> d = DoneSet.of(["p1", "@in.jsonl:3"])
    >>> d.has("p1"), d.has("p2"), len(d)
    (True, False, 2)
    """

    def __init__(self, hashes: np.ndarray):
        self.hashes = np.unique(hashes.astype(np.uint64))

    @classmethod
    def of(cls, keys: list[str]) -> DoneSet:
        return cls(key_hash(list(keys)))

    def has(self, key: str) -> bool:
        if not len(self.hashes):
            return False
        h = key_hash([key])[0]
        i = int(np.searchsorted(self.hashes, h))
        return bool(i < len(self.hashes) and self.hashes[i] == h)

    def __len__(self) -> int:
        return len(self.hashes)


def prompt_keys(t: pa.Table) -> list[str]:
    pid = t["prompt_id"].to_pylist()
    loc = t["location"].to_pylist() if "location" in t.column_names else [None] * t.num_rows
    return [p if p is not None else f"@{where}" for p, where in zip(pid, loc)]


def row_keys(t: pa.Table) -> list[str]:
    if "sample_id" not in t.column_names:  # an earlier/ part: one row per prompt
        return [f"~{k}" for k in prompt_keys(t)]
    sid = t["sample_id"].to_pylist()
    if "location" not in t.column_names:
        return sid
    loc, idx = t["location"].to_pylist(), t["sample_index"].to_pylist()
    return [s if s is not None else f"@{where}#{i}" for s, where, i in zip(sid, loc, idx)]


@dataclass
class Scan:
    """Every part file's key hashes (never whole rows): what ``reconcile`` decides on. At 10
    million rows this is about 250 MB of numpy arrays (``make bench``, docs/bench.md)."""

    paths: list[str] = field(default_factory=list)
    row_hashes: list[np.ndarray] = field(default_factory=list)  # per file: its rows' own keys
    prompt_hashes: list[np.ndarray] = field(default_factory=list)  # per file: its rows' prompt keys
    transient: list[np.ndarray] = field(default_factory=list)  # per file: the row is a transient error
    markers: list[bool] = field(default_factory=list)  # per file: earlier/ (a row is a whole prompt)
    orphans: list[np.ndarray] = field(default_factory=list)  # per file: the row has no prompt id
    owners: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # per file: (prompt, input row)
    _first: np.ndarray | None = field(default=None, repr=False)

    def first_copies(self) -> np.ndarray:
        """Over all files in order: whether each row is the first copy of its key."""
        if self._first is None:
            self._first = self._first_copies()
        return self._first

    def _first_copies(self) -> np.ndarray:
        rows = np.concatenate(self.row_hashes) if self.row_hashes else np.zeros(0, np.uint64)
        ordered = np.sort(rows)
        copied = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])  # keys held twice: rare
        del ordered
        first = np.ones(len(rows), bool)
        if len(copied):  # only those rows need a closer look (no index array over all rows)
            at = np.flatnonzero(np.isin(rows, copied))
            first[at] = False
            first[at[np.unique(rows[at], return_index=True)[1]]] = True
        return first

    def done(self, per_input: int) -> np.ndarray:
        """Hashes of the prompts with all ``per_input`` rows committed and no transient error."""
        if not self.paths:
            return np.zeros(0, np.uint64)
        prompts, first = np.concatenate(self.prompt_hashes), self.first_copies()
        bad = np.unique(prompts[np.concatenate(self.transient)])
        # an earlier/ row stands for all of its prompt's samples
        weights = np.concatenate(
            [np.full(len(h), per_input if m else 1, np.int64) for h, m in zip(self.prompt_hashes, self.markers)]
        )
        if not first.all():
            prompts, weights = prompts[first], weights[first]
        keys, at = np.unique(prompts, return_inverse=True)
        counts = np.bincount(at, weights=weights, minlength=len(keys))
        del prompts, weights, at
        return keys[(counts == per_input) & ~np.isin(keys, bad)]

    def owners_of(self, done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The input row (packed, ``ledger.Locations``) that owns each done prompt id: what a
        resumed run seeds the duplicate-id ledger with."""
        if not self.owners:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        prompts = np.concatenate([k for k, _ in self.owners])
        owners = np.concatenate([o for _, o in self.owners])
        keep = member(np.sort(done), prompts)
        keys, at = np.unique(prompts[keep], return_index=True)
        return keys, owners[keep][at]


def member(sorted_keys: np.ndarray, values: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Whether each of ``values`` is in ``sorted_keys``, a chunk at a time (no index array
    the size of ``values``).

    >>> member(np.array([2, 5, 9], np.uint64), np.array([5, 1, 9, 10], np.uint64)).tolist()
    [True, False, True, False]
    """
    out = np.zeros(len(values), bool)
    if not len(sorted_keys):
        return out
    for at in range(0, len(values), chunk):
        v = values[at : at + chunk]
        i = np.minimum(np.searchsorted(sorted_keys, v), len(sorted_keys) - 1)
        out[at : at + chunk] = sorted_keys[i] == v
    return out


def scan(fs, root: str, folders: dict[str, str], pack=None) -> Scan:
    """Read the key columns of every part file under the run folder. ``pack``: input locations
    -> uint64 owners (``ledger.Locations.pack_all``), for the rows of a real prompt id."""
    import pyarrow.parquet as pq

    s = Scan()
    for status, folder in folders.items():
        cols = KEY_COLUMNS[status if status in ("error", "earlier") else "sample"]
        for path in sorted(fs.glob(f"{root}/{folder}/*.parquet")):
            with fs.open(path, "rb") as f:
                pf = pq.ParquetFile(f)
                t = pf.read(columns=[c for c in cols if c in pf.schema_arrow.names])
            s.paths.append(path)
            s.markers.append(status == "earlier")
            s.row_hashes.append(key_hash(row_keys(t)))
            s.prompt_hashes.append(key_hash(prompt_keys(t)))
            s.orphans.append(np.array([p is None for p in t["prompt_id"].to_pylist()], bool))
            s.transient.append(
                np.array([e in TRANSIENT for e in t["error"].to_pylist()], bool)
                if status == "error"
                else np.zeros(t.num_rows, bool)
            )
            if pack is not None and "location" in t.column_names:  # one entry per prompt of the file
                keys, at = np.unique(s.prompt_hashes[-1], return_index=True)
                pids, locs = t["prompt_id"].take(at).to_pylist(), t["location"].take(at).to_pylist()
                owners = pack([loc if pid is not None else None for pid, loc in zip(pids, locs)])
                owned = owners != NO_OWNER
                s.owners.append((keys[owned], owners[owned]))
    return s


def reconcile(fs, s: Scan, per_input: int | None, write) -> tuple[DoneSet, int, tuple[np.ndarray, np.ndarray]]:
    """Leave only done prompts' rows, each once: rewrite (``write(path, table)``) or delete the
    files that hold anything else. Returns the done set, how many rows were dropped and the done
    prompts' owners (``Scan.owners_of``).
    ``per_input=None``: keep every prompt, drop only second copies (at the end of a run)."""
    done = s.done(per_input) if per_input is not None else np.unique(np.concatenate(s.prompt_hashes or [[]]))
    first = s.first_copies()
    keep = [member(done, p) for p in s.prompt_hashes]
    dropped = _keep_only(
        fs, s, [k & f for k, f in zip(keep, np.split(first, np.cumsum([len(k) for k in keep])[:-1]))], write
    )
    return DoneSet(done), dropped, s.owners_of(done)


def reconcile_samples(fs, s: Scan, write) -> tuple[DoneSet, DoneSet, int, tuple[np.ndarray, np.ndarray]]:
    """A run that samples until verified (``pipeline.rounds``) resumes per *sample*: which of a
    prompt's samples exist depends on the verdicts of its earlier ones, so every committed row is
    kept, once, less the transient errors (redone). Returns the prompt-level done set (rows that
    never became a prompt, prompts an earlier run generated), the committed sample ids, how many
    rows were dropped, and the owners of every prompt that keeps a row."""
    first = np.split(s.first_copies(), np.cumsum([len(p) for p in s.prompt_hashes])[:-1]) if s.paths else []
    keep = [f & ~t for f, t in zip(first, s.transient)]
    dropped = _keep_only(fs, s, keep, write)
    whole = [p[k & (o | m)] for p, k, o, m in zip(s.prompt_hashes, keep, s.orphans, s.markers)]
    samples = [r[k & ~o] for r, k, o, m in zip(s.row_hashes, keep, s.orphans, s.markers) if not m]
    prompts = np.unique(np.concatenate([p[k] for p, k in zip(s.prompt_hashes, keep)] or [np.zeros(0, np.uint64)]))
    join = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.uint64)  # noqa: E731 - two uses
    return DoneSet(join(whole)), DoneSet(join(samples)), dropped, s.owners_of(prompts)


def _keep_only(fs, s: Scan, keep: list[np.ndarray], write) -> int:
    """Rewrite (``write(path, table)``) or delete the files with rows not to keep; rows dropped."""
    import pyarrow.parquet as pq

    dropped = 0
    for path, k in zip(s.paths, keep):
        if k.all():
            continue
        dropped += int((~k).sum())
        if not k.any():
            fs.rm(path)
            continue
        with fs.open(path, "rb") as f:
            full = pq.read_table(f)
        write(path, full.filter(pa.array(k)))
    return dropped


def file_name(table: pa.Table) -> str:
    """A part's name from the rows it holds: a retried write of the same rows overwrites its own
    file instead of adding a copy beside it."""
    keys = sorted(row_keys(table))
    digest = hashlib.blake2b("\n".join(k or "" for k in keys).encode("utf-8", "backslashreplace"), digest_size=10)
    return f"part-{digest.hexdigest()}.parquet"
