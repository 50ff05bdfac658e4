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
``@<location>#<sample_index>``. ``DoneSet`` holds 8-byte hashes of the done prompt keys in a
sorted numpy array: 10 million prompts cost 80 MB, and membership is a binary search.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

#: Error reasons a new attempt may not repeat: their prompts are redone on resume.
TRANSIENT = frozenset({"engine_error", "engine_no_output", "request_timeout", "engine_died", "unfinished"})
KEY_COLUMNS = {"sample": ["sample_id", "prompt_id"], "error": ["sample_id", "prompt_id", "location", "sample_index",
                                                                "error"]}


def key_hash(keys: list[str]) -> np.ndarray:
    """8-byte hashes of keys (blake2b), as uint64."""
    return np.array([int.from_bytes(hashlib.blake2b(k.encode("utf-8", "backslashreplace"), digest_size=8).digest(),
                                    "little") for k in keys], dtype=np.uint64)


class DoneSet:
    """The prompts a resumed run skips. Picklable (it travels to the prepare workers).

    >>> d = DoneSet.of(["p1", "@in.jsonl:3"])
    >>> d.has("p1"), d.has("p2"), len(d)
    (True, False, 2)
    """

    def __init__(self, hashes: np.ndarray):
        self.hashes = np.unique(hashes.astype(np.uint64))

    @classmethod
    def of(cls, keys: list[str]) -> "DoneSet":
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
    return [p if p is not None else f"@{l}" for p, l in zip(pid, loc)]


def row_keys(t: pa.Table) -> list[str]:
    sid = t["sample_id"].to_pylist()
    if "location" not in t.column_names:
        return sid
    loc, idx = t["location"].to_pylist(), t["sample_index"].to_pylist()
    return [s if s is not None else f"@{l}#{i}" for s, l, i in zip(sid, loc, idx)]


@dataclass
class Scan:
    """Every part file's keys: what ``reconcile`` decides on."""

    files: dict[str, pa.Table] = field(default_factory=dict)   # path -> its key columns
    rows: Counter = field(default_factory=Counter)             # prompt key -> rows committed
    transient: set = field(default_factory=set)                # prompt keys with a transient error

    def done(self, per_input: int) -> list[str]:
        return [k for k, n in self.rows.items() if n == per_input and k not in self.transient]


def scan(fs, root: str, folders: dict[str, str]) -> Scan:
    """Read the key columns of every part file under the run folder (never whole rows)."""
    import pyarrow.parquet as pq

    s = Scan()
    seen: set[str] = set()
    for status, folder in folders.items():
        cols = KEY_COLUMNS["error" if status == "error" else "sample"]
        for path in sorted(fs.glob(f"{root}/{folder}/*.parquet")):
            with fs.open(path, "rb") as f:
                t = pq.read_table(f, columns=cols)
            s.files[path] = t
            keys = row_keys(t)
            fresh = [k not in seen for k in keys]  # an exact duplicate counts once
            seen.update(keys)
            for pk, new in zip(prompt_keys(t), fresh):
                s.rows[pk] += new
            if status == "error":
                for pk, err in zip(prompt_keys(t), t["error"].to_pylist()):
                    if err in TRANSIENT:
                        s.transient.add(pk)
    return s


def reconcile(fs, s: Scan, per_input: int, write) -> tuple[DoneSet, int]:
    """Leave only done prompts' rows, each once: rewrite (``write(path, table)``) or delete the
    files that hold anything else. Returns the done set and how many rows were dropped."""
    import pyarrow.parquet as pq

    done = set(s.done(per_input))
    seen: set[str] = set()
    dropped = 0
    for path, t in s.files.items():
        keys = row_keys(t)
        keep = []
        for k, pk in zip(keys, prompt_keys(t)):
            keep.append(pk in done and k not in seen)
            seen.add(k)
        if all(keep):
            continue
        dropped += keep.count(False)
        if not any(keep):
            fs.rm(path)
            continue
        with fs.open(path, "rb") as f:
            full = pq.read_table(f)
        write(path, full.filter(pa.array(keep)))
    return DoneSet.of(sorted(done)), dropped


def file_name(table: pa.Table) -> str:
    """A part's name from the rows it holds: a retried write of the same rows overwrites its own
    file instead of adding a copy beside it."""
    keys = sorted(row_keys(table))
    digest = hashlib.blake2b("\n".join(k or "" for k in keys).encode("utf-8", "backslashreplace"), digest_size=10)
    return f"part-{digest.hexdigest()}.parquet"
