"""The output root ``<output.path>/``: the runs it holds, what they generated, ``manifest.json``.

A nightly job writes one run folder per night under one output path. This module looks across
them (``pipeline.run_folder`` looks inside one):

- ``fingerprint``: the settings a run's samples depend on (teacher, dialect, the engine's
  numerics, the generation section, how prompts are read). Runs with the same fingerprint make
  the same samples of a prompt: the same sample ids and seeds. Speed settings, the input's
  location, the output section and the filters are not in it (the filters judge samples; to
  re-judge, run ``jobs.filter``).
- ``runs``: the runs an output root holds that no job is writing now: every completed run and
  every unfinished one (stopped at its deadline, failed for good, killed or abandoned) whose lock
  is gone or stale (``pipeline.run_folder``). A run whose lock is held and fresh is still running
  and is not counted.
- ``earlier_prompts``: the prompts those runs with a fingerprint generated, and which run holds
  each (the oldest). An incremental run (``output.incremental``) skips them, each with one
  ``earlier/`` row. A prompt counts as generated when a run holds any of its committed samples
  other than transient errors (an engine error, a timeout); a prompt whose samples were all
  transient errors is generated again. So no sample id is in two runs' ``accepted/``: a night
  that did not finish is neither redone by the next night nor lost, and when it is resumed later
  it skips, in turn, what the nights after it generated (a resume recomputes ``earlier``).
- ``write_manifest``: ``manifest.json``, rebuilt from the runs' folders each time (so it can never
  drift from them), written atomically: every run (an unfinished one marked ``"unfinished":
  true``), its counts and its accepted files, and ``accepted``, every accepted file to date, for
  one ``datasets.load_dataset("parquet", data_files=manifest["accepted"])``.

Two runs finishing at once under one path both rebuild the manifest; each lists the runs again
after writing and writes once more if the list changed, so the last writer's manifest holds
both. ``python -m jobs.manifest PATH`` rebuilds it by hand.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from .committed import TRANSIENT, key_hash
from .identity import sample_settings
from .ids import fingerprint as digest
from .modes import FORCING_FIELDS

MANIFEST = "manifest.json"


def fingerprint(config: dict) -> str:
    """The generation fingerprint of a run's config (as dumped in ``run.json``'s identity).

    >>> c = {"teacher": {"model": "m", "dialect": "qwen3", "replicas": 2, "engine": {"dtype": "auto"}},
    ...      "generation": {"seed": 0}, "input": {"path": "a.jsonl", "columns": {}}}
    >>> fingerprint(c) == fingerprint({**c, "input": {"path": "b.jsonl", "columns": {}}})
    True
    >>> fingerprint(c) == fingerprint({**c, "generation": {"seed": 1}})
    False
    """
    settings = sample_settings(config)  # the settings marked SAMPLES in pipeline/config.py
    settings["generation"] = _without_unused_forcing(settings["generation"])
    return digest(settings)


def _without_unused_forcing(generation: dict | None) -> dict | None:
    """A mode's s1 forcing settings count only where the forcing is on, its reasoning effort and
    ``accepted_per_prompt`` only where set: earlier nights, made before they existed, keep their
    fingerprint.

    >>> g = {"modes": [{"name": "a", "min_thinking_tokens": None, "continuation": "Wait"}]}
    >>> forced = {"modes": [{"min_thinking_tokens": 8}]}
    >>> _without_unused_forcing(g)["modes"], len(_without_unused_forcing(forced)["modes"][0])
    ([{'name': 'a'}], 1)
    """
    if not generation or "modes" not in generation:
        return generation
    modes = [
        m
        if m.get("min_thinking_tokens") not in (None, [None])
        else {k: v for k, v in m.items() if k not in FORCING_FIELDS}
        for m in generation["modes"]
    ]
    modes = [
        m if m.get("reasoning_effort") is not None else {k: v for k, v in m.items() if k != "reasoning_effort"}
        for m in modes
    ]
    rest = {k: v for k, v in generation.items() if k != "accepted_per_prompt" or v is not None}
    return {**rest, "modes": modes}


@dataclass(frozen=True)
class RunEntry:
    """A run under the output root that no job is writing now."""

    run_id: str
    url: str  # the run folder
    fingerprint: str
    created: float
    summary: dict  # ``summary.json``; an unfinished run's ``summary.partial.json`` if it wrote one, else {}
    finished: bool = True


def _fs(url: str):
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/")


def _url(fs, path: str) -> str:
    """A path as a reader outside this process names it: local paths stay paths, others get
    their protocol back (``s3://bucket/...``)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else fs.unstrip_protocol(path)


def runs(root_url: str, unfinished: bool = True) -> list[RunEntry]:
    """Every thinkmill generation run directly under ``root_url`` that no job is writing now,
    oldest first: the completed ones and (``unfinished``) those that stopped before completing
    and whose lock is gone or stale."""
    from .run_folder import RunFolder

    fs, root = _fs(root_url)
    if not fs.exists(root):
        return []
    out = []
    for path in fs.glob(f"{root}/*/run.json"):
        folder = path.rsplit("/", 1)[0]
        try:
            with fs.open(path, "r") as f:
                run = json.load(f)
            finished = fs.exists(f"{folder}/summary.json")
            if not finished and not unfinished:
                continue
            summary = {}
            name = f"{folder}/summary.json" if finished else f"{folder}/summary.partial.json"
            if fs.exists(name):
                with fs.open(name, "r") as f:
                    summary = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            continue  # not a thinkmill run, or one being replaced
        if not run.get("thinkmill_run") or "config" not in run.get("identity", {}):
            continue  # not a generation run (the filter job's folders have no config identity)
        if not finished and RunFolder(_url(fs, folder)).running():
            continue  # still being written: what it holds is not settled
        out.append(
            RunEntry(
                folder.rsplit("/", 1)[-1],
                _url(fs, folder),
                fingerprint(run["identity"]["config"]),
                run.get("created", 0.0),
                summary,
                finished,
            )
        )
    return sorted(out, key=lambda r: (r.created, r.run_id))


class Earlier:
    """The prompts earlier runs generated: 8-byte hashes of their prompt ids (sorted) and, per
    hash, which run holds it. Picklable (it travels to the prepare workers); 10 bytes a prompt.

    >>> e = Earlier.of({"night-1": ["p1", "p2"], "night-2": ["p2", "p3"]})
    >>> e.run_of("p2"), e.run_of("p3"), e.run_of("p4"), len(e)
    ('night-1', 'night-2', None, 3)
    """

    def __init__(self, hashes: np.ndarray, runs: np.ndarray, names: list[str]):
        self.hashes, self.runs, self.names = hashes, runs, names

    @classmethod
    def of(cls, by_run: dict[str, list[str]]) -> Earlier:
        """From prompt ids per run, oldest run first (the oldest holding a prompt is named)."""
        return cls.merge([(name, key_hash(ids)) for name, ids in by_run.items()])

    @classmethod
    def merge(cls, per_run: list[tuple[str, np.ndarray]]) -> Earlier:
        if not per_run:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.int16), [])
        hashes = np.concatenate([h for _, h in per_run]).astype(np.uint64)
        runs = np.concatenate([np.full(len(h), i, np.int16) for i, (_, h) in enumerate(per_run)])
        keys, first = np.unique(hashes, return_index=True)  # first occurrence: the oldest run
        return cls(keys, runs[first], [name for name, _ in per_run])

    def run_of(self, prompt_id: str) -> str | None:
        if not len(self.hashes):
            return None
        h = key_hash([prompt_id])[0]
        i = int(np.searchsorted(self.hashes, h))
        return self.names[int(self.runs[i])] if i < len(self.hashes) and self.hashes[i] == h else None

    def __len__(self) -> int:
        return len(self.hashes)


def generated_prompts(run_url: str) -> np.ndarray:
    """Hashes of the prompt ids a run folder holds samples of, transient errors aside."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .run_folder import SAMPLES, RunFolder

    hashes = []
    for _, t in RunFolder(run_url).tables(["prompt_id", "error"], SAMPLES):
        if "error" in t.column_names:
            t = t.filter(pc.invert(pc.fill_null(pc.is_in(t["error"], pa.array(sorted(TRANSIENT))), False)))
        # once per prompt, not per sample: hashing is most of the cost
        hashes.append(key_hash(pc.unique(t["prompt_id"].drop_null()).to_pylist()))
    return np.unique(np.concatenate(hashes)) if hashes else np.zeros(0, np.uint64)


def earlier_prompts(root_url: str, fp: str, this_run: str) -> tuple[Earlier, list[str]]:
    """The prompts the runs under ``root_url`` with fingerprint ``fp`` (other than ``this_run``;
    completed, or unfinished and not running) generated, and those runs' ids (oldest first)."""
    found = [r for r in runs(root_url) if r.fingerprint == fp and r.run_id != this_run]
    return Earlier.merge([(r.run_id, generated_prompts(r.url)) for r in found]), [r.run_id for r in found]


def _rows(fs, paths: list[str]) -> int:
    import pyarrow.parquet as pq

    total = 0
    for p in paths:
        with fs.open(p, "rb") as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def build_manifest(root_url: str) -> dict:
    fs, root = _fs(root_url)
    entries, accepted = [], []
    for r in runs(root_url):
        files = sorted(fs.glob(f"{root}/{r.run_id}/accepted/*.parquet"))
        s = r.summary
        entry = {
            "run_id": r.run_id,
            "fingerprint": r.fingerprint,
            "teacher": s.get("teacher"),
            "created": r.created,
            "accepted": s.get("accepted"),
            "rejected": (s.get("rejected") or {}).get("total"),
            "errors": (s.get("errors") or {}).get("total"),
            "earlier_prompts": (s.get("earlier") or {}).get("prompts", 0),
            "files": [p[len(root) + 1 :] for p in files],  # relative to the root
        }
        if not r.finished:  # its committed samples, counted from the files (a partial summary may be older)
            entry.update(unfinished=True, accepted=_rows(fs, files))
        entries.append(entry)
        accepted += [_url(fs, p) for p in files]
    return {"thinkmill_manifest": 1, "path": _url(fs, root), "runs": entries, "accepted": accepted}


def write_manifest(root_url: str, rounds: int = 5) -> dict:
    """Rebuild ``manifest.json`` from the completed runs and write it atomically; again while
    the list of runs changed under it (another run finished meanwhile)."""
    fs, root = _fs(root_url)
    manifest = build_manifest(root_url)
    for _ in range(rounds):
        body = {**manifest, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = f"{root}/.{MANIFEST}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        with fs.open(tmp, "w") as f:
            json.dump(body, f, indent=1)
        fs.mv(tmp, f"{root}/{MANIFEST}")  # a rename on a local disk; copy + delete on object stores
        again = build_manifest(root_url)
        if again == manifest:
            return body
        manifest = again
    return body


def read_manifest(root_url: str, storage_options: dict | None = None) -> dict:
    """``manifest.json`` of an output root."""
    import fsspec

    with fsspec.open(f"{root_url.rstrip('/')}/{MANIFEST}", "r", **(storage_options or {})) as f:
        return json.load(f)
