"""Filter quality on the labeled development set (``tests/filter_devset/``): per-filter precision
and recall, and the share of good samples accepted, with the default filters and settings.

Usage:
    python -m jobs.filter_quality [--devset DIR] [--errors]     # print the table (and each miss)

``make bench`` writes the table into ``docs/bench.md``. The set is written by hand in the
styles of real teachers (see its README); it is development data: the sets kept aside, not
this one, say whether the filters hold.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEVSET = Path(__file__).resolve().parents[1] / "tests" / "filter_devset"
#: the filters the set is labeled for, in the default order
JUDGED = ("format", "wrong_answer", "repetition", "language_mixing", "think_answer_mismatch", "guesswork")


def load(devset: Path = DEVSET) -> list[dict]:
    rows = []
    for path in sorted(devset.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def sample_of(row: dict):
    from filters import Sample

    return Sample(row["completion"], row["thinking_expected"], prompt=row["prompt"], reference=row.get("reference"),
                  source=row.get("source"), finish_reason=row.get("finish_reason"))


def evaluate(rows: list[dict], overrides: dict | None = None) -> dict:
    """Judge every row with the default filters -> counts per filter, good share, the misses."""
    from filters import FiltersConfig, Judge

    judge = Judge(FiltersConfig.model_validate(overrides or {}))
    per = {f: {"tp": 0, "fp": 0, "fn": 0} for f in JUDGED}
    good = accepted = 0
    misses = []
    for row in rows:
        verdicts, reason = judge(sample_of(row))
        rejected_by = {v.filter for v in verdicts if v.passed is False}
        labeled = set(row["bad"])
        for f in JUDGED:
            hit, want = f in rejected_by, f in labeled
            per[f]["tp"] += hit and want
            per[f]["fp"] += hit and not want
            per[f]["fn"] += want and not hit
            if hit != want:
                v = next((v for v in verdicts if v.filter == f), None)
                misses.append({"id": row["id"], "filter": f, "kind": "false_reject" if hit else "missed",
                               "reason": v.reason if v else None, "detail": (v.detail or "")[:160] if v else None})
        if not labeled:
            good += 1
            accepted += reason is None
    for c in per.values():
        c["precision"] = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
        c["recall"] = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
    return {"samples": len(rows), "good": good, "good_accepted": accepted / good if good else None,
            "filters": per, "misses": misses}


def table(r: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{x:.2f}"

    lines = ["| filter | labeled bad | rejected | precision | recall |", "|---|---:|---:|---:|---:|"]
    for f, c in r["filters"].items():
        lines.append(f"| `{f}` | {c['tp'] + c['fn']} | {c['tp'] + c['fp']} | {pct(c['precision'])} | {pct(c['recall'])} |")
    lines.append(f"\n{r['samples']} samples, {r['good']} good: **{r['good_accepted']:.1%} of the good samples accepted** "
                 f"(no filter rejects them).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--errors", action="store_true", help="also print every false reject and every miss")
    args = ap.parse_args(argv)
    r = evaluate(load(args.devset))
    print(table(r))
    if args.errors:
        for m in r["misses"]:
            print(f"{m['id']:10} {m['filter']:22} {m['kind']:13} {m['reason']}: {m['detail']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
