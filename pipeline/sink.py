"""The write stage: one Ray Data sink that splits the stream into accepted/, rejected/, errors/
(and earlier/, the prompts an incremental run skipped).

Each write task writes its rows as (up to) three Parquet files, one per folder, through the
``RunFolder``, and returns the ``Tally`` of what it wrote; the driver adds them up
(``sink.tally``) into the run summary. Each part carries the engine timings of its own rows in
its Parquet metadata, stamped with this attempt (``Tally.timing_meta``): a resumed run counts the
engine time of every attempt that committed rows, and the engine deaths and replica restarts each
had seen by its last commit. A row still pending here (a stage lost track
of it) is written as an error, so nothing disappears.
"""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc
from ray.data import Datasink
from ray.data.block import BlockAccessor

from .committed import file_name
from .logprobs import FOLDER as LOGPROBS
from .logprobs import sidecar
from .run_folder import FOLDERS, RunFolder
from .schema import EARLIER, ERROR, SAMPLE, STREAM, conversation_split, with_pandas_ints
from .tally import TIMING_KEY, Tally

SCHEMAS = {"accepted": SAMPLE, "rejected": SAMPLE, "error": ERROR, "earlier": EARLIER}
# as written: integer columns stay integers in pandas (``with_pandas_ints``)
_WRITTEN = {status: with_pandas_ints(schema) for status, schema in SCHEMAS.items()}


class SplitParquetSink(Datasink):
    """Writes ``STREAM`` rows to ``<run>/{accepted,rejected,errors}/part-*.parquet``.

    After the write, ``self.tally`` (on the driver) holds the total of all tasks.
    """

    def __init__(
        self,
        folder: RunFolder,
        rows_per_file: int,
        attempt: float | None = None,
        logprobs: tuple[int, dict] | None = None,
    ):
        self.folder = folder
        self.logprobs = logprobs  # output.logprobs: (top_k, tokenizer hashes) for the logprobs/ sidecar
        self._rows_per_file = rows_per_file
        self.attempt = time.time() if attempt is None else attempt  # this attempt: its driver's start
        self.deaths = None  # the replicas' ``suspects.DeathBook``, once the generate stage has made it
        self.before = (0, 0)  # engine deaths and replica restarts of this attempt's earlier passes (a k-run's rounds)
        self.tally: Tally = Tally()

    @property
    def min_rows_per_write(self):
        return self._rows_per_file

    def on_write_start(self, schema=None):
        self.folder.make_folders()

    def write(self, blocks, ctx) -> Tally:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t.select(STREAM.names).cast(STREAM) for t in tables if t.num_rows]
        if not tables:
            return Tally()
        table = pa.concat_tables(tables)
        unfinished = pc.invert(pc.is_in(table["status"], pa.array(list(FOLDERS))))
        if pc.any(unfinished).as_py():
            table = _mark_unfinished(table, unfinished)
        total, seen = Tally(), self._deaths_seen()
        for status, folder in FOLDERS.items():
            part = table.filter(pc.equal(table["status"], status))
            if part.num_rows:
                tally = Tally.of(part).stamped(self.attempt)
                if seen is not None and tally.attempts:
                    tally.attempt_deaths = {self.attempt: seen}
                total.add(tally)
                total.files += 1
                schema = SCHEMAS[status]
                if schema is SAMPLE:  # TRL's prompt-completion view of the conversation
                    for name, column in zip(("prompt", "completion"), conversation_split(part["messages"])):
                        part = part.set_column(part.schema.get_field_index(name), name, column)
                side = sidecar(part, *self.logprobs) if self.logprobs and status == "accepted" else None
                part = part.select(schema.names).cast(_WRITTEN[status])
                timing = tally.timing_meta()
                if timing is not None:
                    part = part.replace_schema_metadata({**part.schema.metadata, TIMING_KEY: timing})
                if side is not None:  # first: an accepted part is never committed without its logprobs
                    self.folder.write_part(LOGPROBS, file_name(part), side)
                # named by its rows: a retried task rewrites its own file, never adds a copy
                self.folder.write_part(folder, file_name(part), part)
        return total

    def _deaths_seen(self) -> list[int] | None:
        """[engine deaths, replica restarts] in this attempt so far (None: no book, or it did not answer:
        the summary then counts this attempt's from the book at the end)."""
        if self.deaths is None:
            return None
        import ray

        try:
            stats = ray.get(self.deaths.stats.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - a count is not worth a part
            return None
        return [stats["engine_deaths"] + self.before[0], stats["replica_restarts"] + self.before[1]]

    def on_write_complete(self, write_result):
        self.tally = Tally.total(write_result.write_returns)


def _mark_unfinished(table: pa.Table, mask) -> pa.Table:
    cols = {n: table[n] for n in table.column_names}
    cols["status"] = pc.if_else(mask, "error", table["status"])
    cols["stage"] = pc.if_else(mask, "write", table["stage"])
    cols["error"] = pc.if_else(mask, "unfinished", table["error"])
    cols["detail"] = pc.if_else(mask, "the row reached the writer without being generated or parsed", table["detail"])
    return pa.table(cols, schema=table.schema)
