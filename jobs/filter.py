"""Re-judge an existing dataset with the rejection filters, without regenerating.

Usage:
    python -m jobs.filter --config C --input PATH_OR_GLOB --output DIR [--set key.path=value ...] [--overwrite]

Input: JSONL or Parquet rows with ``messages`` (the last message is the assistant's, its content
holding the think block as the teacher wrote it), optional ``reference``, optional ``mode``
(``think`` / ``no_think``; inferred from the think block when absent), optional ``id``. Rows
written by ``jobs.generate`` work as they are.

Output: ``DIR/accepted/`` and ``DIR/rejected/`` (Parquet, the data contract's columns with
``verdicts`` and ``reject_reason``), ``DIR/errors/`` (rows that could not be read, with the reason)
and ``DIR/summary.json`` (per-filter and per-reason counts), written last.

The config is either a generation job config (its ``filters`` section and ``teacher.dialect``
are used) or a filter config with ``filters``, ``dialect`` and ``ray`` sections.
Exit codes: 0 done, 2 bad config / input / output, 3 rows missing from the accounting.
"""

from __future__ import annotations

import argparse
import sys
import time

import yaml

from pipeline.config import ConfigError, apply_overrides, load_config


def load_filter_config(path: str, overrides: list[str]):
    from pydantic import ValidationError

    from pipeline.config import _format_errors
    from pipeline.rejudge import FilterJobConfig

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    if "teacher" in data or "input" in data:  # a generation job config: take what filtering needs
        cfg = load_config(path, overrides)
        return FilterJobConfig(filters=cfg.filters, dialect=cfg.teacher.dialect, ray=cfg.ray,
                               rows_per_file=cfg.output.rows_per_file)
    try:
        return FilterJobConfig.model_validate(apply_overrides(data, overrides))
    except ValidationError as e:
        raise ConfigError(f"invalid config {path}:\n{_format_errors(e)}") from None


def run(cfg, input_path: str, output: str, overwrite: bool = False) -> dict:
    from pipeline.job import (_finish_output, check_filter_files, count_rows, count_summary, cpu_stage_args,
                              embedded_ray_cpus, init_ray, prepare_output)
    from pipeline.judge import FilterStage
    from pipeline.read import read_input, resolve_input
    from pipeline.rejudge import LoadSamples
    from pipeline.write import SplitParquetSink

    check_filter_files(cfg.filters)
    files = resolve_input(input_path)
    inputs = count_rows(files)
    prepare_output(output, overwrite)
    init_ray(cfg.ray.address, embedded_ray_cpus(cfg.ray))
    stage = cpu_stage_args(cfg.ray)
    ds = read_input(files)
    ds = ds.map_batches(LoadSamples, fn_constructor_kwargs={"dialect": cfg.dialect}, **stage)
    ds = ds.map_batches(FilterStage, fn_constructor_kwargs={"filters": cfg.filters, "dialect": cfg.dialect}, **stage)
    sink = SplitParquetSink(output, cfg.rows_per_file)
    started = time.time()
    ds.write_datasink(sink)
    wall = time.time() - started
    summary = {"input": input_path, "output": output,
               **count_summary(sink.tally, inputs, 1, cfg.filters.order), "wall_s": round(wall, 2)}
    _finish_output(output, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True, help="JSONL / Parquet file, folder, glob or fsspec URL")
    ap.add_argument("--output", required=True, help="output folder (local or fsspec URL)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    args = ap.parse_args(argv)

    from pipeline.job import OutputError
    from pipeline.read import InputError

    try:
        cfg = load_filter_config(args.config, args.overrides)
        summary = run(cfg, args.input, args.output, args.overwrite)
    except (ConfigError, InputError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"judged {summary['inputs']} rows -> accepted {summary['accepted']}, rejected "
          f"{summary['rejected']['total']} {summary['rejected']['by_reason']}, errors {summary['errors']['total']} "
          f"{summary['errors']['by_reason']}; accounted: {summary['accounted']}; {summary['wall_s']} s")
    for name, f in summary["filters"].items():
        print(f"  {name}: passed {f['passed']}, failed {f['failed']}, skipped {f['skipped']} {f['reasons'] or ''}")
    return 0 if summary["accounted"] else 3


if __name__ == "__main__":
    sys.exit(main())
