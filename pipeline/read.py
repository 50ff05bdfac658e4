"""Read stage: prompts from JSONL / Parquet / saved ``datasets`` folders, local or fsspec.

The reader does not interpret rows. Every input row becomes ``{_path, _row, _raw, _error}``:
where it came from (file and line / row number), the row itself as JSON text, and why it could
not be read as text (``_error``: invalid UTF-8, with the offending bytes kept as ``\\x..``
escapes in ``_raw``), so that prepare writes it to ``errors/`` instead of silently replacing
characters. A UTF-8 byte-order mark at the start of a file is dropped; a ``.json`` file holding
one JSON array is read as one row per element. Interpreting it
(column mapping, validation) happens in the prepare stage, where a bad row becomes an error
row instead of failing the read: a JSONL line that is not JSON, or a column whose type changes
between rows, would make Arrow's JSON reader fail the whole file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

READ_SCHEMA = pa.schema([("_path", pa.string()), ("_row", pa.int64()), ("_raw", pa.string()), ("_error", pa.string())])
_BOM = b"\xef\xbb\xbf"
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
    format: str  # jsonl / parquet / hf_saved
    paths: list[str]  # as the filesystem names them
    filesystem: object  # fsspec filesystem
    protocol: str  # "file" for local paths


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
            raise InputError(
                f"input.path: cannot tell the format of {bad!r} (expected .jsonl, .json, "
                f".parquet or .arrow); set input.format"
            )
        if len(found) > 1:
            raise InputError(
                f"input.path: {path!r} matches files of several formats {sorted(found)}; "
                f"point it at one format or set input.format"
            )
        fmt = found.pop()
    return InputFiles(fmt, files, fs, protocol)


def _rows_to_block(path: str, rows: list[tuple]) -> pa.Table:
    return pa.table(
        {
            "_path": [path] * len(rows),
            "_row": [r[0] for r in rows],
            "_raw": [r[1] for r in rows],
            "_error": [r[2] for r in rows],
        },
        schema=READ_SCHEMA,
    )


def _decode(raw: bytes) -> tuple[str, str | None]:
    """Bytes -> (text, None), or (the text with bad bytes as ``\\x..`` escapes, why) for invalid UTF-8."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return raw.decode(
            "utf-8", errors="backslashreplace"
        ), f"not valid UTF-8: byte {raw[e.start]:#04x} at offset {e.start} ({e.reason})"


class _NotUtf8(ValueError):
    pass


def _json_default(value):
    if isinstance(value, bytes):  # a binary column: text only if it is valid UTF-8
        text, error = _decode(value)
        if error:
            raise _NotUtf8(error)
        return text
    return str(value)


def _record(batch: pa.RecordBatch, i: int, n: int) -> tuple:
    """Row ``i`` of a batch as (row number, JSON text, error)."""
    try:
        rec = batch.slice(i, 1).to_pylist()[0]
        return n, json.dumps(rec, ensure_ascii=False, default=_json_default), None
    except (UnicodeDecodeError, _NotUtf8) as e:
        # keep what can be kept: every column as bytes with the bad ones escaped
        cast = {
            f.name: (batch.column(f.name).cast(pa.binary())[i].as_py() if pa.types.is_string(f.type) else None)
            for f in batch.schema
        }
        raw = {k: _decode(v)[0] for k, v in cast.items() if isinstance(v, bytes)}
        bad = next((k for k, v in cast.items() if isinstance(v, bytes) and _decode(v)[1]), None)
        where = f"column {bad!r} is " if bad else ""
        return n, json.dumps(raw, ensure_ascii=False), f"{where}{e}"


def _table_rows(batches, path: str) -> Iterator[pa.Table]:
    """Record batches (Parquet, Arrow IPC) -> blocks of raw JSON rows, numbered from 0."""
    n = 0
    for batch in batches:
        rows = []
        try:
            recs = batch.to_pylist()
            texts = [json.dumps(rec, ensure_ascii=False, default=_json_default) for rec in recs]
            rows = [(n + i, t, None) for i, t in enumerate(texts)]
        except (UnicodeDecodeError, _NotUtf8):  # a bad string somewhere: row by row, so only it is an error
            rows = [_record(batch, i, n + i) for i in range(batch.num_rows)]
        n += batch.num_rows
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
                yield from jsonl_blocks(f, path)

    return RawRows(files.paths, filesystem=_arrow_fs(files))


def jsonl_blocks(f, path: str) -> Iterator[pa.Table]:
    head = f.read(1 << 20)
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    if path.lower().endswith((".json", ".json.gz", ".json.zst")) and head.lstrip()[:1] == b"[":
        yield from _json_array_blocks(head + f.read(), path)
        return
    rows: list[tuple] = []
    buf = head
    line_no = 0

    def lines():
        nonlocal buf
        while True:
            *complete, buf = buf.split(b"\n")
            yield from complete
            chunk = f.read(1 << 20)
            if not chunk:
                break
            buf += chunk
        if buf:
            yield buf

    for raw in lines():
        line_no += 1
        if not raw.strip():
            continue  # blank lines (a trailing newline) are not rows
        rows.append((line_no, *_decode(raw)))
        if len(rows) >= _ROWS_PER_BLOCK:
            yield _rows_to_block(path, rows)
            rows = []
    if rows:
        yield _rows_to_block(path, rows)


def _json_array_blocks(data: bytes, path: str) -> Iterator[pa.Table]:
    """A ``.json`` file holding one array: each element is a row (numbered from 0)."""
    text, error = _decode(data)
    try:
        items = None if error else json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        items, error = None, f"not a valid JSON array: {e}"
    if not isinstance(items, list):  # the whole file is one bad row: say why, keep its text
        yield _rows_to_block(path, [(0, text, error or "a .json file starting with '[' must hold one JSON array")])
        return
    for start in range(0, len(items), _ROWS_PER_BLOCK):
        chunk = items[start : start + _ROWS_PER_BLOCK]
        yield _rows_to_block(path, [(start + i, _dumps(item), None) for i, item in enumerate(chunk)])


def _dumps(item) -> str:
    text = json.dumps(item, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \\ud800 escape: keep it escaped, prepare says why
        text = json.dumps(item)
    return text


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
