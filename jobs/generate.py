"""Generate a distillation SFT dataset: prompts -> vLLM teacher replicas -> Parquet.

Usage:
    python -m jobs.generate --config configs/local.yaml [--set key.path=value ...] [--dry-run] [--verbose]

Reads the prompts, renders them for each configured mode (thinking / non-thinking, flags,
thinking budget), generates with a pool of vLLM teacher replicas on Ray, and writes
``<output.path>/<output.run_id>/{accepted,rejected,errors}/*.parquet`` plus ``summary.json``.
Every input row ends in exactly one of the three folders per sample; the summary checks it.

``--dry-run`` validates the config and the input, prints the resolved config and the plan
(stages, replicas, resources, expected samples) and starts nothing. While it runs the job prints
one progress line (samples done, accepted share, tokens/s, ETA); ``--verbose`` shows Ray's
progress and the workers' (vLLM's) logs instead, which otherwise go only to Ray's log files.

Locally an embedded Ray is started; on a cluster run the same command under
``ray job submit -- python -m jobs.generate --config ...``.

Exit codes: 0 done and every sample accounted for; 2 bad config, input or output location;
3 the run finished but samples are missing from the accounting; 4 more error rows than
``output.max_error_rate`` allows (the run is written all the same); 5 ``ray.deadline_s`` was
reached before the run was complete (what it made is kept; the same command resumes); 6 fewer
than ``teacher.min_replicas`` engines came up (their errors are printed; what was made is kept).
"""

from __future__ import annotations

import json
import sys

import yaml

from jobs.cli import fail, overrides, parser, user_errors


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    args = ap.parse_args(argv)

    from pipeline.loading import load_config
    from pipeline.report.console import format_summary
    from pipeline.runs.generate import run
    from pipeline.runs.plan import describe, make_plan
    from pipeline.stages.generate.starts import ReplicasDown
    from pipeline.storage import masked

    try:
        cfg = load_config(args.config, overrides(args))
        plan = make_plan(cfg)
    except user_errors() as e:
        return fail(e)
    if args.dry_run:
        print("plan (dry run: nothing started)")
        print(describe(cfg, plan))
        print("\nresolved config")
        resolved = json.loads(cfg.model_dump_json())
        resolved["storage_options"] = masked(resolved["storage_options"])
        print(yaml.safe_dump(resolved, sort_keys=False).rstrip())
        return 0
    try:
        summary = run(cfg, plan)
    except user_errors() as e:
        return fail(e)
    except ReplicasDown as e:  # teacher.min_replicas engines did not come up: what they said is in e
        return fail(e, 6)
    if summary.get("already_complete"):
        print(f"run {summary['run_id']} at {summary['output']} is already complete (summary.json); nothing to do")
        return 0
    print(format_summary(summary))
    if summary.get("deadline_reached"):
        left = summary["missing"] + summary["errors"]["by_reason"].get("deadline_reached", 0)
        done = summary["expected_samples"] - left
        print(
            f"ray.deadline_s ({cfg.ray.deadline_s} s) reached: {done} of {summary['expected_samples']} "
            f"samples made; run the same command again to resume",
            file=sys.stderr,
        )
        return 5
    if not summary["accounted"]:
        return 3
    return 4 if summary["error_rate_exceeded"] else 0


if __name__ == "__main__":
    sys.exit(main())
