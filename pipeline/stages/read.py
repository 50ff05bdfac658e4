"""Read stage: prompts from JSONL / Parquet / saved ``datasets`` folders, local or fsspec.

The reader does not interpret rows. Every input row becomes ``{_path, _row, _raw}``: where it
came from (file and line / row number) and the row itself as JSON text. Interpreting it
(column mapping, validation) happens in the prepare stage, where a bad row becomes an error
row instead of failing the read: a JSONL line that is not JSON, or a column whose type changes
between rows, would make Arrow's JSON reader fail the whole file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

READ_SCHEMA = pa.schema([("_path", pa.string()), ("_row", pa.int64()), ("_raw", pa.string())])
_ROWS_PER_BLOCK = 1024

_EXTENSIONS = {
    "jsonl": (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst"),
    "parquet": (".parquet",),
    "hf_saved": (".arrow",),
}


class InputError(ValueError):
    """The configured input cannot be read at all (nothing matches, mixed formats)."""


@dataclass(frozen=True)
class InputFiles:
    format: str          # jsonl / parquet / hf_saved
    paths: list[str]     # as the filesystem names them
    filesystem: object   # fsspec filesystem
    protocol: str        # "file" for local paths


def _format_of(path: str) -> str | None:
    low = path.lower()
    for fmt, exts in _EXTENSIONS.items():
        if low.endswith(exts):
            return fmt
    return None


def resolve_input(path: str, fmt: str = "auto") -> InputFiles:
    """Expand ``input.path`` (file, folder, glob, URL, saved dataset) to a sorted file list.

    Raises ``InputError`` naming the path when nothing readable matches.
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if any(c in root for c in "*?["):
        files = sorted(p for p in fs.glob(root) if fs.isfile(p))
    elif fs.isdir(root):
        state = f"{root.rstrip('/')}/state.json"
        if fs.exists(state):  # a folder written by datasets.Dataset.save_to_disk
            with fs.open(state, "r") as fh:
                names = [d["filename"] for d in json.load(fh)["_data_files"]]
            files = [f"{root.rstrip('/')}/{n}" for n in names]
            fmt = "hf_saved" if fmt == "auto" else fmt
        else:
            files = sorted(p for p in fs.find(root) if _format_of(p))
    elif fs.exists(root):
        files = [root]
    else:
        raise InputError(f"input.path: nothing at {path!r}")
    if not files:
        raise InputError(f"input.path: no JSONL, Parquet or saved-dataset files match {path!r}")
    if fmt == "auto":
        found = {_format_of(p) for p in files}
        if None in found:
            bad = next(p for p in files if _format_of(p) is None)
            raise InputError(f"input.path: cannot tell the format of {bad!r} (expected .jsonl, .json, "
                             f".parquet or .arrow); set input.format")
        if len(found) > 1:
            raise InputError(f"input.path: {path!r} matches files of several formats {sorted(found)}; "
                             f"point it at one format or set input.format")
        fmt = found.pop()
    return InputFiles(fmt, files, fs, protocol)


def _rows_to_block(path: str, rows: list[tuple[int, str]]) -> pa.Table:
    return pa.table({"_path": [path] * len(rows), "_row": [r for r, _ in rows], "_raw": [t for _, t in rows]},
                    schema=READ_SCHEMA)


def _json_default(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _table_rows(batches, path: str) -> Iterator[pa.Table]:
    """Record batches (Parquet, Arrow IPC) -> blocks of raw JSON rows, numbered from 0."""
    n = 0
    for batch in batches:
        rows = []
        for rec in batch.to_pylist():
            rows.append((n, json.dumps(rec, ensure_ascii=False, default=_json_default)))
            n += 1
        if rows:
            yield _rows_to_block(path, rows)


def make_datasource(files: InputFiles):
    """A Ray Data datasource over ``files`` producing ``READ_SCHEMA`` blocks."""
    from ray.data.datasource import FileBasedDatasource

    class RawRows(FileBasedDatasource):
        _FORMAT = files.format

        def _open_input_source(self, filesystem, path, **open_args):
            if self._FORMAT == "jsonl":  # streams, with transparent decompression by extension
                return super()._open_input_source(filesystem, path, **open_args)
            return filesystem.open_input_file(path)  # Parquet needs random access

        def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
            if self._FORMAT == "parquet":
                import pyarrow.parquet as pq

                yield from _table_rows(pq.ParquetFile(f).iter_batches(batch_size=_ROWS_PER_BLOCK), path)
            elif self._FORMAT == "hf_saved":
                yield from _table_rows(pa.ipc.open_stream(f), path)
            else:
                yield from _jsonl_blocks(f, path)

    return RawRows(files.paths, filesystem=_arrow_fs(files))


def _jsonl_blocks(f, path: str) -> Iterator[pa.Table]:
    rows: list[tuple[int, str]] = []
    buf = b""
    line_no = 0

    def lines():
        nonlocal buf
        while chunk := f.read(1 << 20):
            buf += chunk
            *complete, buf = buf.split(b"\n")
            yield from complete
        if buf:
            yield buf

    for raw in lines():
        line_no += 1
        if not raw.strip():
            continue  # blank lines (a trailing newline) are not rows
        rows.append((line_no, raw.decode("utf-8", errors="replace")))
        if len(rows) >= _ROWS_PER_BLOCK:
            yield _rows_to_block(path, rows)
            rows = []
    if rows:
        yield _rows_to_block(path, rows)


def _arrow_fs(files: InputFiles):
    if files.protocol in ("file", "local"):
        return None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(files.filesystem))


def read_input(files: InputFiles, limit: int | None = None):
    """The read stage as a Ray dataset of raw rows (``READ_SCHEMA``)."""
    import ray.data

    ds = ray.data.read_datasource(make_datasource(files))
    return ds.limit(limit) if limit else ds
