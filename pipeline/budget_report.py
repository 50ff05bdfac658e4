"""Budget report: per mode and thinking budget, verified accuracy, mean thinking tokens and the
budget-hit rate - Qwen3's budget-vs-score figure, for whatever teacher the job ran.

Accuracy is the share of samples whose ``wrong_answer`` verdict passed, among those it could
judge (samples without a reference are not counted). Written into ``summary.json``
(``budget_report``), printed as a table, and plotted to ``budget_report.png`` beside the data
when a mode sweeps budgets.
"""

from __future__ import annotations

import io


def budget_rows(counter) -> list[dict]:
    """Tally counts ``(mode, budget, field)`` -> one row per mode and budget, budgets ascending."""
    cells: dict[tuple, dict] = {}
    for (mode, budget, name), n in counter.items():
        cells.setdefault((mode, budget), {})[name] = n
    rows = []
    for (mode, budget), c in cells.items():
        samples = c.get("samples", 0)
        judged = c.get("judged", 0)
        rows.append({
            "mode": mode, "budget": budget, "samples": samples,
            "accuracy": round(c.get("correct", 0) / judged, 4) if judged else None,
            "judged": judged,
            "mean_thinking_tokens": round(c.get("thinking", 0) / samples, 1) if samples else None,
            "budget_hit_rate": round(c.get("hit", 0) / samples, 4) if samples else None,
        })
    return sorted(rows, key=lambda r: (r["mode"], r["budget"] is None, r["budget"] or 0))


def format_table(rows: list[dict]) -> str:
    lines = ["  mode            budget   samples  accuracy  thinking  budget hit"]
    for r in rows:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
        hit = "-" if r["budget_hit_rate"] is None else f"{r['budget_hit_rate']:.1%}"
        budget = "none" if r["budget"] is None else str(r["budget"])
        lines.append(f"  {r['mode']:<15} {budget:>6} {r['samples']:>9} {acc:>9} {r['mean_thinking_tokens']:>9} {hit:>11}")
    return "\n".join(lines)


def plot_png(rows: list[dict], title: str) -> bytes:
    """Accuracy and mean thinking tokens against the budget, one line per mode (unbounded at the right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = [r["budget"] for r in rows if r["budget"] is not None]
    unbounded_at = max(finite) * 1.3 if finite else 1
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in sorted({r["mode"] for r in rows}):
        pts = [r for r in rows if r["mode"] == mode]
        xs = [r["budget"] if r["budget"] is not None else unbounded_at for r in pts]
        ax1.plot(xs, [100 * (r["accuracy"] or 0) for r in pts], marker="o", label=mode)
        ax2.plot(xs, [r["mean_thinking_tokens"] or 0 for r in pts], marker="o", label=mode)
    for ax, label in ((ax1, "accuracy (%, wrong_answer verdict)"), (ax2, "mean thinking tokens")):
        ax.set_xlabel("thinking budget (tokens; rightmost = unbounded)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
