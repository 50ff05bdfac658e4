"""The filter job: re-judge an existing dataset with the rejection filters (read -> load -> filter -> write)."""

from __future__ import annotations

import time

from .. import progress, report
from ..cluster import embedded_ray_cpus, init_ray
from ..config import FilterJobConfig
from ..read import read_input, resolve_input
from ..report.summary import count_summary
from ..run_folder import RunFolder
from ..stages import FILTER_JOB, Context, chain
from .plan import check_filter_files, count_rows


def run(cfg: FilterJobConfig, input_path: str, output: str, overwrite: bool = False) -> dict:
    """Judge every row of ``input_path`` into ``output``; returns the summary (also ``summary.json``)."""
    from ..sink import SplitParquetSink
    from ..storage import apply

    apply(cfg.storage_options)
    check_filter_files(cfg.filters)
    files = resolve_input(input_path)
    inputs = count_rows(files)
    folder = RunFolder(output)
    folder.claim(overwrite)
    init_ray(cfg.ray.address, embedded_ray_cpus(cfg.ray), cfg.storage_options, cfg.ray.verbose)
    sink = SplitParquetSink(folder, cfg.rows_per_file)
    started = time.time()
    ctx = Context(cfg)
    with progress.shown(ctx, inputs):
        chain(read_input(files), FILTER_JOB, ctx).write_datasink(sink)
    wall_s = round(time.time() - started, 2)

    def summarised(report_url: str | None) -> dict:  # the whole summary, built once it is known
        return {
            "input": input_path,
            "output": output,
            **count_summary(sink.tally, inputs, 1, cfg.filters.order),
            "wall_s": wall_s,
            "report": report_url,
        }

    summary = summarised(f"{folder.url}/{report.REPORT}")
    if report.write(folder, summary, report.resolved_config(cfg)) is None:  # not made: the summary says so
        summary = summarised(None)
    folder.finish(summary)
    return summary
