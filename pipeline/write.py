"""Write stage: one Ray Data sink that splits the stream into accepted/, rejected/, errors/.

Each write task writes its rows as (up to) three Parquet files, one per folder, and returns
the counts of what it wrote; the driver adds them up into the run summary. A file is written
under ``_tmp/`` and then moved to its final name, so a reader never sees a partial file under a
final name (on object stores a put is atomic anyway; the move keeps local disks honest).
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from ray.data import Datasink
from ray.data.block import BlockAccessor

from .schema import ERROR, SAMPLE, STREAM

FOLDERS = {"accepted": ("accepted", SAMPLE), "rejected": ("rejected", SAMPLE), "error": ("errors", ERROR)}
TOKEN_COLUMNS = ("prompt_tokens", "thinking_tokens", "answer_tokens", "completion_tokens")


def tally(table: pa.Table) -> dict:
    """What a table of ``STREAM`` rows holds: counts by status, reason, mode, source; token sums."""
    rows = table.select(["status", "reject_reason", "error", "mode", "source", "budget_hit", "verdicts",
                         "thinking_budget", "replica", "t_submit", "t_done", "flag", "flag_turn", "turns",
                         *TOKEN_COLUMNS]).to_pylist()
    t = _empty()
    t["rows"] = len(rows)
    # the engines' busy window: first request in to last token out (min/max, not sums)
    t["t_first"] = pc.min(table["t_submit"]).as_py()
    t["t_last"] = pc.max(table["t_done"]).as_py()
    for r in rows:
        if r["replica"] is not None and r["t_submit"] is not None:
            # per replica: its own busy window and tokens (replicas start at different times)
            w = t["replicas"].setdefault(r["replica"], [r["t_submit"], r["t_done"], 0])
            w[0], w[1], w[2] = min(w[0], r["t_submit"]), max(w[1], r["t_done"]), w[2] + (r["completion_tokens"] or 0)
        status = r["status"] if r["status"] in FOLDERS else "error"
        t["status"][status] += 1
        if status == "rejected":
            t["rejected"][r["reject_reason"]] += 1
        elif status == "error":
            t["errors"][r["error"] or "unfinished"] += 1
        if status != "error":
            t["by_mode"][f"{r['mode']}/{status}"] += 1
            t["by_source"][f"{r['source']}/{status}"] += 1
            t["budget_hit"] += bool(r["budget_hit"])
            # the fusion mix: which mode and which flag (where) each written sample carries
            t["flags"][f"{r['mode']}|{r['flag'] or 'none'}|{r['flag_turn'] or '-'}|{status}"] += 1
            for turn in r["turns"] or []:
                t["turns"][f"{turn['flag'] or 'none'} {_FOLLOWED[turn['followed']]}"] += 1
            for c in TOKEN_COLUMNS:
                t["tokens"][c] += r[c] or 0
            # per mode and budget, for the budget report: samples, thinking, hits, verified accuracy
            key = f"{r['mode']}/{r['thinking_budget']}"
            t["budgets"][f"{key}/samples"] += 1
            t["budgets"][f"{key}/thinking"] += r["thinking_tokens"] or 0
            t["budgets"][f"{key}/hit"] += bool(r["budget_hit"])
            for v in r["verdicts"] or []:
                if v["filter"] == "wrong_answer" and v["passed"] is not None:
                    t["budgets"][f"{key}/judged"] += 1
                    t["budgets"][f"{key}/correct"] += bool(v["passed"])
                outcome = {True: "passed", False: "failed", None: "skipped"}[v["passed"]]
                t["filters"][f"{v['filter']}/{outcome}"] += 1
                if v["reason"]:
                    t["filters"][f"{v['filter']}/reason/{v['reason']}"] += 1
    return t


_FOLLOWED = {True: "followed", False: "not_followed", None: "no_flag"}


def _empty() -> dict:
    return {"rows": 0, "status": Counter(), "rejected": Counter(), "errors": Counter(), "by_mode": Counter(),
            "by_source": Counter(), "budget_hit": 0, "tokens": Counter(), "files": 0, "t_first": None, "t_last": None,
            "filters": Counter(), "budgets": Counter(), "replicas": {}, "flags": Counter(), "turns": Counter()}


def merge_tallies(tallies: Iterable[dict]) -> dict:
    total = _empty()
    for t in tallies:
        for k, v in t.items():
            if k == "replicas":
                for name, (a, b, n) in v.items():
                    w = total["replicas"].setdefault(name, [a, b, 0])
                    w[0], w[1], w[2] = min(w[0], a), max(w[1], b), w[2] + n
            elif k in ("t_first", "t_last"):
                pick = min if k == "t_first" else max
                total[k] = v if total[k] is None else (total[k] if v is None else pick(total[k], v))
            elif isinstance(v, dict):
                total[k].update(v)
            else:
                total[k] += v
    return total


class SplitParquetSink(Datasink):
    """Writes ``STREAM`` rows to ``<run_url>/{accepted,rejected,errors}/part-*.parquet``.

    After the write, ``self.tally`` (on the driver) holds the merged counts of all tasks.
    """

    def __init__(self, run_url: str, rows_per_file: int):
        self.run_url = run_url.rstrip("/")
        self._rows_per_file = rows_per_file
        self.tally: dict | None = None

    @property
    def min_rows_per_write(self):
        return self._rows_per_file

    def on_write_start(self, schema=None):
        fs, root = _fs(self.run_url)
        for folder, _ in FOLDERS.values():
            fs.makedirs(f"{root}/{folder}", exist_ok=True)

    def write(self, blocks, ctx) -> dict:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t.select(STREAM.names).cast(STREAM) for t in tables if t.num_rows]
        if not tables:
            return merge_tallies([])
        table = pa.concat_tables(tables)
        # A row still pending here means a stage lost track of it: write it as an error.
        unfinished = pc.invert(pc.is_in(table["status"], pa.array(list(FOLDERS))))
        if pc.any(unfinished).as_py():
            table = _mark_unfinished(table, unfinished)
        fs, root = _fs(self.run_url)
        name = f"part-{ctx.task_idx:05d}-{uuid.uuid4().hex[:8]}.parquet"
        files = 0
        for status, (folder, schema) in FOLDERS.items():
            part = table.filter(pc.equal(table["status"], status))
            if part.num_rows:
                _write_atomic(fs, root, folder, name, part.select(schema.names).cast(schema))
                files += 1
        t = tally(table)
        t["files"] = files
        return t

    def on_write_complete(self, write_result):
        self.tally = merge_tallies(write_result.write_returns)


def _mark_unfinished(table: pa.Table, mask) -> pa.Table:
    cols = {n: table[n] for n in table.column_names}
    cols["status"] = pc.if_else(mask, "error", table["status"])
    cols["stage"] = pc.if_else(mask, "write", table["stage"])
    cols["error"] = pc.if_else(mask, "unfinished", table["error"])
    cols["detail"] = pc.if_else(mask, "the row reached the writer without being generated or parsed",
                                table["detail"])
    return pa.table(cols, schema=table.schema)


def _fs(url: str):
    import fsspec

    return fsspec.core.url_to_fs(url)


def _write_atomic(fs, root: str, folder: str, name: str, table: pa.Table) -> None:
    import pyarrow.parquet as pq

    tmp = f"{root}/_tmp/{folder}-{name}"
    fs.makedirs(f"{root}/_tmp", exist_ok=True)
    with fs.open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd")
    fs.mv(tmp, f"{root}/{folder}/{name}")
