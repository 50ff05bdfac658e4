"""Filter quality on the two labeled development sets: per-filter precision and recall, the share
of good samples accepted and of bad samples rejected, with the default filters and settings.

- ``real``: real teachers' outputs, ``../shared/real_outputs/real_outputs.jsonl`` beside the
  project (verbatim responses of ~60 models from public repositories, labeled by careful reading;
  its README says how). Read from there, never copied into the project; a clone without
  ``../shared`` has no real set (``--real PATH`` points elsewhere).
- ``imitation``: ``tests/filter_devset/``, written here in the styles of real teachers. It passed
  at 1.00 while real outputs did not: it guards against regressions, it does not prove the filters.

Usage:
    python -m jobs.filter_quality [--set real|imitation|both] [--errors]   # the tables (and every miss)

``make bench`` writes both tables into ``docs/bench.md``.

How the real set is scored (its README): a sample is **bad** when it is unfinished, loops, mixes
languages, answers in another language than the prompt's, has a think/answer mismatch, or is wrong
against an ``answer`` reference; **good** when none of these holds. A sample wrong against a
``rubric`` reference is left out (only a judge model can see that). Each label belongs to one
filter: ``finished: false`` to ``format``, ``loop`` to ``repetition``, ``mixing`` and
``answer_lang_mismatch`` to ``language_mixing``, ``mismatch`` to ``think_answer_mismatch``, wrong
against an answer reference to ``wrong_answer``. A filter's precision is the share of its
rejections that carry its label; its recall the share of its label's samples it rejects, where an
unfinished sample counts for ``wrong_answer`` and ``think_answer_mismatch`` only if it has an
answer to judge (a sample cut off before its answer is ``format``'s alone). ``guesswork`` has no
label in the real set: its rejections are counted, and each one of a good sample is a false reject.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT / "tests" / "filter_devset"
REAL = ROOT.parent / "shared" / "real_outputs" / "real_outputs.jsonl"
#: the filters the sets are labeled for, in the default order
JUDGED = ("format", "wrong_answer", "repetition", "language_mixing", "think_answer_mismatch", "guesswork")
_EMPTY_THINK = "<think>\n\n</think>\n\n"


def load(devset: Path = DEVSET) -> list[dict]:
    """The imitation set: one row per sample, ``bad`` listing the filters that must reject it."""
    rows = []
    for path in sorted(devset.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def real_labels(row: dict) -> list[str] | None:
    """The filters that must reject a real-set row (``[]``: a good sample), or None for a row left
    out (wrong against a rubric: no mechanical filter can see it)."""
    lab = row["labels"]
    kind = lab.get("reference_kind")
    bad = []
    if lab.get("finished") is False:
        bad.append("format")
    if lab.get("correct") is False and kind == "answer":
        bad.append("wrong_answer")
    if lab.get("loop"):
        bad.append("repetition")
    if lab.get("mixing") or lab.get("answer_lang_mismatch"):
        bad.append("language_mixing")
    if lab.get("mismatch") is True:
        bad.append("think_answer_mismatch")
    if not bad and lab.get("correct") is False and kind == "rubric":
        return None
    return bad


def load_real(path: Path = REAL) -> list[dict]:
    """The real set in the imitation set's shape (``completion``, ``thinking_expected``, ``bad``).
    A no-think response without a think block gets the empty block thinkmill stores before the
    answer (the set's README: judge those as no-think samples)."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            bad = real_labels(r)
            if bad is None:
                continue
            think = r["mode"] == "think"
            completion = r["response"]
            if not think and not completion.lstrip().startswith("<think>"):
                completion = _EMPTY_THINK + completion
            rows.append(
                {
                    "id": r["id"],
                    "prompt": r["prompt"],
                    "reference": r.get("reference"),
                    "thinking_expected": think,
                    "completion": completion,
                    "finish_reason": None,
                    "bad": bad,
                    "has_answer": "</think>" in completion or not think,
                }
            )
    return rows


def sample_of(row: dict):
    from filters import Sample

    return Sample(
        row["completion"],
        row["thinking_expected"],
        prompt=row["prompt"],
        reference=row.get("reference"),
        source=row.get("source"),
        finish_reason=row.get("finish_reason"),
    )


def evaluate(rows: list[dict], overrides: dict | None = None) -> dict:
    """Judge every row with the default filters -> counts per filter, good accepted, bad
    rejected, the misses."""
    from filters import FiltersConfig, Judge

    judge = Judge(FiltersConfig.model_validate(overrides or {}))
    per = {f: {"tp": 0, "fp": 0, "fn": 0} for f in JUDGED}
    good = accepted = bad = rejected = 0
    misses = []
    for row in rows:
        verdicts, reason = judge(sample_of(row))
        rejected_by = {v.filter for v in verdicts if v.passed is False}
        labeled = set(row["bad"])
        for f in JUDGED:
            hit, want = f in rejected_by, f in labeled
            # a sample cut off before its answer is the format filter's alone
            if want and not hit and f in ("wrong_answer", "think_answer_mismatch") and not row.get("has_answer", True):
                continue
            per[f]["tp"] += hit and want
            per[f]["fp"] += hit and not want
            per[f]["fn"] += want and not hit
            if hit != want:
                v = next((v for v in verdicts if v.filter == f), None)
                misses.append(
                    {
                        "id": row["id"],
                        "filter": f,
                        "kind": "false_reject" if hit else "missed",
                        "reason": v.reason if v else None,
                        "detail": (v.detail or "")[:200] if v else None,
                        "rejected": reason,
                    }
                )
        if labeled:
            bad += 1
            rejected += reason is not None
        else:
            good += 1
            accepted += reason is None
    for c in per.values():
        c["precision"] = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
        c["recall"] = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
    return {
        "samples": len(rows),
        "good": good,
        "good_accepted": accepted / good if good else None,
        "bad": bad,
        "bad_rejected": rejected / bad if bad else None,
        "filters": per,
        "misses": misses,
    }


def table(r: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{x:.2f}"

    lines = ["| filter | labeled bad | rejected | precision | recall |", "|---|---:|---:|---:|---:|"]
    for f, c in r["filters"].items():
        lines.append(
            f"| `{f}` | {c['tp'] + c['fn']} | {c['tp'] + c['fp']} | {pct(c['precision'])} | {pct(c['recall'])} |"
        )
    lines.append(
        f"\n{r['samples']} samples: **{pct(r['good_accepted'])} of {r['good']} good samples accepted** (no "
        f"filter rejects them), **{pct(r['bad_rejected'])} of {r['bad']} bad samples rejected**."
    )
    return "\n".join(lines) + "\n"


def sets(which: str, real: Path = REAL, devset: Path = DEVSET) -> dict[str, list[dict]]:
    """The labeled sets to score by name; the real one only where it exists (it lives in ``../shared``)."""
    out = {}
    if which in ("real", "both"):
        if real.exists():
            out["real"] = load_real(real)
        elif which == "real":
            raise FileNotFoundError(
                f"--real: no real-output set at {real} (it is read from ../shared beside the project)"
            )
    if which in ("imitation", "both"):
        out["imitation"] = load(devset)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("real", "imitation", "both"), default="both")
    ap.add_argument("--real", type=Path, default=REAL, help="the real-output set (a JSONL file)")
    ap.add_argument("--devset", type=Path, default=DEVSET, help="the imitation set (a folder of JSONL files)")
    ap.add_argument("--errors", action="store_true", help="also print every false reject and every miss")
    args = ap.parse_args(argv)
    for name, rows in sets(args.set, args.real, args.devset).items():
        r = evaluate(rows)
        print(f"## {name} set\n\n{table(r)}")
        if args.errors:
            for m in r["misses"]:
                print(f"{m['id']:24} {m['filter']:22} {m['kind']:13} {m['reason']}: {m['detail']}")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
