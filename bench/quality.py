"""Filter quality on the labeled sets (``jobs.filter_quality`` scores them): the section
``make bench`` writes into docs/bench.md."""

from __future__ import annotations


def bench_quality() -> str:
    from jobs.filter_quality import REAL, evaluate, sets, table

    parts = []
    found = sets("both")
    if "real" not in found:
        parts.append(f"**Real set: not found at `{REAL}`** (it is read from `../shared` beside the project).\n")
    for name, rows in found.items():
        about = (
            "Real teachers' outputs (`../shared/real_outputs/`, verbatim, labeled by careful reading; the "
            "filters are tuned on it)"
            if name == "real"
            else "The imitation set (`tests/filter_devset/`, written here in real teachers' styles; a regression guard)"
        )
        parts.append(f"### {name} set\n\n{about}:\n\n{table(evaluate(rows))}")
    return "\n".join(parts)
