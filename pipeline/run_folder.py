"""The run folder ``<output.path>/<run_id>/``: the only code that touches it.

Layout: ``run.json`` (what the run is: its config and input, written first), ``accepted/``,
``rejected/``, ``errors/`` (Parquet parts, named by the rows they hold), ``earlier/`` (an
incremental run's prompts that earlier runs generated, ``pipeline.catalog``), ``summary.json``
(written last, atomically: its existence means the run completed), and beside it
``report.html`` (the run report, ``pipeline.report``), ``unsolved.jsonl`` (adaptive runs) and
``budget_report.png`` (budget sweeps); ``_lock`` while a job writes it.

``open`` decides what a job does with the folder: start a new run, resume an unfinished one with
the same config and input, do nothing for a completed one, or refuse (another config or input,
another job holding the lock, a folder that is not a thinkmill run). Parts are written under ``_tmp/`` and
moved to their final name, so a reader never sees a partial file under a final name (on object
stores a put is atomic anyway; the move keeps local disks honest). Local paths and fsspec URLs
alike.
"""

from __future__ import annotations

import json
import time

import pyarrow as pa

from .folder_lock import FolderLock, OutputError

#: Output folder per written status.
FOLDERS = {"accepted": "accepted", "rejected": "rejected", "error": "errors", "earlier": "earlier"}
#: The statuses of generated (or failed) samples; ``earlier`` rows stand for samples held elsewhere.
SAMPLES = ("accepted", "rejected", "error")


def differences(old, new, path: str = "") -> list[str]:
    """Key paths where two JSON-like values differ.

    >>> differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 0})
    ['b.c', 'd']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += differences(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        return out
    return [] if old == new else [path or "<root>"]


class RunFolder:
    """One run's folder. Picklable (it holds the URL; the filesystem is made where it is used),
    so write tasks on any node use it too."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    @property
    def _fs(self):
        import fsspec

        return fsspec.core.url_to_fs(self.url)

    def claim(self, overwrite: bool) -> None:
        """A folder for a run without identity (the filter job): refuse a used folder; with
        ``overwrite`` start over one that holds a thinkmill run (its ``run.json``), and refuse any
        other non-empty folder, naming it: a job deletes only what thinkmill wrote. The folder is
        then marked as this job's run (``run.json``), so a later ``--overwrite`` may start it over."""
        fs, root = self._fs
        if fs.exists(root) and fs.ls(root):
            if not overwrite:
                raise OutputError(
                    f"output: {self.url} already holds files; choose another output folder, or "
                    f"--overwrite to start over a thinkmill run there"
                )
            if not fs.exists(f"{root}/run.json"):
                raise OutputError(
                    f"output: {self.url} holds files but no run.json: it is not a thinkmill run "
                    f"folder, so --overwrite does not delete it; choose another output folder"
                )
            self._check_lock()
            fs.rm(root, recursive=True)
        self._start({"job": "filter"})

    def open(self, identity: dict, overwrite: bool) -> str:
        """What this job does here: ``new``, ``resume`` or ``complete``; or ``OutputError``.

        ``identity`` is what makes the run this run (config and input, ``runs/generate.identity``).
        With ``overwrite`` a thinkmill run folder (or an empty one) is started over."""
        fs, root = self._fs
        if not (fs.exists(root) and fs.ls(root)):
            self._start(identity)
            return "new"
        try:
            with fs.open(f"{root}/run.json", "r") as f:
                old = json.load(f)
        except FileNotFoundError:
            raise OutputError(
                f"output: {self.url} holds files but no run.json: it is not a thinkmill run "
                f"folder, so it is neither resumed nor deleted; choose another output.run_id"
            ) from None
        self._check_lock()
        if overwrite:
            fs.rm(root, recursive=True)
            self._start(identity)
            return "new"
        changed = differences(old.get("identity"), identity)
        if changed:
            raise OutputError(
                f"output: {self.url} holds a run with another config or input ({', '.join(changed)} "
                f"differ); choose another output.run_id, or set output.overwrite=true to start over"
            )
        return "complete" if fs.exists(f"{root}/summary.json") else "resume"

    def _start(self, identity: dict) -> None:
        fs, root = self._fs
        try:
            fs.makedirs(root, exist_ok=True)
            self._put_json("run.json", {"thinkmill_run": 1, "identity": identity, "created": time.time()})
        except OSError as e:
            raise OutputError(f"output.path: cannot write the run folder {self.url}: {e}") from None

    def _put_json(self, name: str, obj) -> None:
        fs, root = self._fs
        with fs.open(f"{root}/.{name}.tmp", "w") as f:
            json.dump(obj, f, indent=2)
        fs.mv(f"{root}/.{name}.tmp", f"{root}/{name}")

    def read_summary(self) -> dict:
        fs, root = self._fs
        with fs.open(f"{root}/summary.json", "r") as f:
            return json.load(f)

    # -- the lock: one job writes a run folder at a time (``folder_lock``)
    def running(self) -> bool:
        """Whether a live job holds this folder's lock."""
        return FolderLock(*self._fs, self.url).held() is not None

    def _check_lock(self) -> None:
        FolderLock(*self._fs, self.url).check()

    def lock(self):
        """Hold ``_lock`` while the job writes (``FolderLock.hold``)."""
        return FolderLock(*self._fs, self.url).hold()

    def make_folders(self) -> None:
        fs, root = self._fs
        for status in SAMPLES:  # earlier/ only when a run has such rows
            fs.makedirs(f"{root}/{FOLDERS[status]}", exist_ok=True)

    def write_part(self, folder: str, name: str, table: pa.Table) -> None:
        """One Parquet part, written aside and moved into ``folder``."""
        import pyarrow.parquet as pq

        fs, root = self._fs
        tmp = f"{root}/_tmp/{folder}-{name}"
        fs.makedirs(f"{root}/_tmp", exist_ok=True)
        with fs.open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
        fs.makedirs(f"{root}/{folder}", exist_ok=True)
        fs.mv(tmp, f"{root}/{folder}/{name}")

    def write_bytes(self, name: str, data: bytes) -> str:
        fs, root = self._fs
        with fs.open(f"{root}/{name}", "wb") as f:
            f.write(data)
        return f"{self.url}/{name}"

    def write_jsonl(self, name: str, items: list[dict]) -> str:
        fs, root = self._fs
        with fs.open(f"{root}/{name}", "w") as f:
            for item in items:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
        return f"{self.url}/{name}"

    def settle(self, quiet_s: float = 5.0, most_s: float = 60.0) -> None:
        """Wait until no part is being written (no part or scratch file new or growing for
        ``quiet_s``), at most ``most_s``: a stopped pass's last write tasks finish before the
        folder is read. (Scratch a cancelled task left is ``clean_scratch``'s.)"""
        fs, root = self._fs
        last, since, start = None, time.time(), time.time()
        while time.time() - start < most_s:
            fs.invalidate_cache()
            now = sorted(
                (path, info.get("size"))
                for pattern in (f"{root}/*/*.parquet", f"{root}/_tmp/*")
                for path, info in fs.glob(pattern, detail=True).items()
            )
            if now != last:
                last, since = now, time.time()
            elif time.time() - since >= quiet_s:
                return
            time.sleep(0.5)

    def clean_scratch(self) -> None:
        """Drop what a crashed job left half written (``_tmp/``)."""
        fs, root = self._fs
        if fs.exists(f"{root}/_tmp"):
            fs.rm(f"{root}/_tmp", recursive=True)

    def reconcile(self, per_input: int | None, pack=None):
        """Before a resume: keep done prompts only, each row once (``pipeline.committed``);
        ``per_input=None`` at the end of a run: drop second copies a retried write left.
        -> (done set, rows dropped, owners of the done prompts, packed by ``pack``)."""
        from .committed import reconcile, scan

        self.clean_scratch()
        fs, root = self._fs

        kept = reconcile(fs, scan(fs, root, FOLDERS, pack), per_input, self._rewrite)
        self.clean_scratch()
        return kept

    def reconcile_samples(self, pack=None):
        """Before resuming a run that samples until verified: keep every committed sample once
        (``committed.reconcile_samples``) -> (done prompts, done samples, rows dropped, owners)."""
        from .committed import reconcile_samples, scan

        self.clean_scratch()
        fs, root = self._fs
        kept = reconcile_samples(fs, scan(fs, root, FOLDERS, pack), self._rewrite)
        self.clean_scratch()
        return kept

    def _rewrite(self, path: str, table: pa.Table) -> None:
        folder, name = path.rsplit("/", 2)[-2:]
        self.write_part(folder, name, table)

    def restamp(self, statuses, fn) -> None:
        """Rewrite every committed part of ``statuses`` as ``fn(table)`` (same name, metadata kept)."""
        import pyarrow.parquet as pq

        fs, root = self._fs
        for status in statuses:
            for path in sorted(fs.glob(f"{root}/{FOLDERS[status]}/*.parquet")):
                with fs.open(path, "rb") as f:
                    t = pq.read_table(f)
                self._rewrite(path, fn(t))

    def tables(self, columns: list[str], statuses=tuple(FOLDERS)):
        """Every committed part, one at a time, as ``(status, table)`` with those of ``columns`` it has."""
        import pyarrow.parquet as pq

        fs, root = self._fs
        for status in statuses:
            for path in sorted(fs.glob(f"{root}/{FOLDERS[status]}/*.parquet")):
                with fs.open(path, "rb") as f:
                    pf = pq.ParquetFile(f)
                    yield status, pf.read(columns=[c for c in columns if c in pf.schema_arrow.names])

    def part_names(self, folder: str) -> list[str]:
        """The committed parts of one folder (``accepted``, ...), by name: named by their rows, so
        the names say what the folder holds."""
        fs, root = self._fs
        return sorted(p.rsplit("/", 1)[-1] for p in fs.glob(f"{root}/{folder}/*.parquet"))

    def read_bytes(self, name: str) -> bytes | None:
        """A file of the folder (``run.json``, ``budget_report.png``), or None where it has none."""
        fs, root = self._fs
        try:
            with fs.open(f"{root}/{name}", "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def examples(
        self, status: str, key: str, want, per_key: int, columns: list[str], distinct: str | None = None
    ) -> dict[str, list[dict]]:
        """Up to ``per_key`` rows of ``status`` per value of column ``key`` in ``want`` (the report's
        examples per reason), first parts first, at most one per value of ``distinct`` (an error
        row's input ``location``: its samples fail alike): ``key`` is read of each part until every
        value has its rows, the other ``columns`` only of the parts that give one, so a run of any
        size costs a few parts' reads."""
        import pyarrow.parquet as pq

        fs, root = self._fs
        need = {k: per_key for k in want}
        out: dict[str, list[dict]] = {k: [] for k in want}
        seen: set = set()
        for path in sorted(fs.glob(f"{root}/{FOLDERS[status]}/*.parquet")):
            if not any(need.values()):
                break
            with fs.open(path, "rb") as f:
                pf = pq.ParquetFile(f)
                if key not in pf.schema_arrow.names:
                    continue
                take = []
                picked = pf.read(columns=[c for c in (key, distinct) if c in pf.schema_arrow.names])
                for i, (k, d) in enumerate(
                    zip(
                        picked[key].to_pylist(),
                        picked[distinct].to_pylist() if distinct in picked.column_names else [None] * picked.num_rows,
                    )
                ):
                    if need.get(k) and (d is None or (k, d) not in seen):
                        need[k] -= 1
                        take.append(i)
                        seen.add((k, d))
                if take:
                    names = list(dict.fromkeys([key] + [c for c in columns if c in pf.schema_arrow.names]))
                    for row in pf.read(columns=names).take(take).to_pylist():
                        out[row[key]].append(row)
        return out

    def finish(self, summary: dict) -> None:
        """Drop the scratch folder and write ``summary.json`` last, atomically."""
        self.clean_scratch()
        self._put_json("summary.json", summary)
