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

import sys

from jobs.cli import fail, overrides, parser, user_errors


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__, "generation or filter config (YAML)")
    ap.add_argument("--input", required=True, help="JSONL / Parquet file, folder, glob or fsspec URL")
    ap.add_argument("--output", required=True, help="output folder (local or fsspec URL)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    args = ap.parse_args(argv)

    from pipeline.loading import load_filter_config
    from pipeline.runs.filter import run

    try:
        cfg = load_filter_config(args.config, overrides(args))
        summary = run(cfg, args.input, args.output, args.overwrite)
    except user_errors() as e:
        return fail(e)
    print(
        f"judged {summary['inputs']} rows -> accepted {summary['accepted']}, rejected "
        f"{summary['rejected']['total']} {summary['rejected']['by_reason']}, errors {summary['errors']['total']} "
        f"{summary['errors']['by_reason']}; accounted: {summary['accounted']}; {summary['wall_s']} s"
    )
    for name, f in summary["filters"].items():
        print(f"  {name}: passed {f['passed']}, failed {f['failed']}, skipped {f['skipped']} {f['reasons'] or ''}")
    return 0 if summary["accounted"] else 3


if __name__ == "__main__":
    sys.exit(main())
