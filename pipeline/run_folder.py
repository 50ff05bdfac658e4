"""The run folder ``<output.path>/<run_id>/``: the only code that touches it.

Layout: ``accepted/``, ``rejected/``, ``errors/`` (Parquet parts), ``summary.json`` (written
last, atomically: its existence means the run completed), and beside it ``unsolved.jsonl``
(adaptive runs) and ``budget_report.png`` (budget sweeps). Parts are written under ``_tmp/`` and
moved to their final name, so a reader never sees a partial file under a final name (on object
stores a put is atomic anyway; the move keeps local disks honest). Local paths and fsspec URLs
alike.
"""

from __future__ import annotations

import json

import pyarrow as pa

#: Output folder per written status.
FOLDERS = {"accepted": "accepted", "rejected": "rejected", "error": "errors"}


class OutputError(ValueError):
    """The output location cannot be used (a previous run is there and overwrite is off)."""


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
        """Make sure the run can write here: refuse a used folder, or empty it with ``overwrite``."""
        fs, root = self._fs
        if fs.exists(root) and fs.ls(root):
            if not overwrite:
                raise OutputError(f"output: {self.url} already holds a run; choose another output.run_id "
                                  f"or set output.overwrite=true")
            fs.rm(root, recursive=True)

    def make_folders(self) -> None:
        fs, root = self._fs
        for folder in FOLDERS.values():
            fs.makedirs(f"{root}/{folder}", exist_ok=True)

    def write_part(self, folder: str, name: str, table: pa.Table) -> None:
        """One Parquet part, written aside and moved into ``folder``."""
        import pyarrow.parquet as pq

        fs, root = self._fs
        tmp = f"{root}/_tmp/{folder}-{name}"
        fs.makedirs(f"{root}/_tmp", exist_ok=True)
        with fs.open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
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

    def finish(self, summary: dict) -> None:
        """Drop the scratch folder and write ``summary.json`` last, atomically."""
        fs, root = self._fs
        if fs.exists(f"{root}/_tmp"):
            fs.rm(f"{root}/_tmp", recursive=True)
        with fs.open(f"{root}/.summary.json.tmp", "w") as f:
            json.dump(summary, f, indent=2)
        fs.mv(f"{root}/.summary.json.tmp", f"{root}/summary.json")
