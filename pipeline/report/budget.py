"""Budget report: per mode and thinking budget (and s1's thinking minimum, gpt-oss's reasoning
effort), verified accuracy, mean thinking tokens and the budget-hit rate - Qwen3's
budget-vs-score figure, for whatever teacher the job ran.

Accuracy is the share of samples whose ``wrong_answer`` verdict passed, among those it could
judge (samples without a reference are not counted). Written into ``summary.json``
(``budget_report``), printed as a table, and plotted to ``budget_report.png`` beside the data
when a mode sweeps budgets.
"""

from __future__ import annotations

import io


def budget_rows(counter) -> list[dict]:
    """Tally counts ``(mode, budget, min thinking, reasoning effort, field)`` -> one row per mode,
    budget, thinking minimum (s1's forcing) and reasoning effort (gpt-oss), ascending, unbounded /
    unforced / unset last.

    >>> rows = budget_rows({("t", 64, None, None, "samples"): 2, ("t", 64, None, None, "thinking"): 100,
    ...                     ("t", 64, 32, None, "samples"): 1, ("t", 64, 32, None, "extensions"): 3,
    ...                     ("t", None, None, None, "samples"): 1})
    >>> [(r["budget"], r["min_thinking_tokens"], r["mean_thinking_tokens"], r["mean_extensions"]) for r in rows]
    [(64, 32, 0.0, 3.0), (64, None, 50.0, 0.0), (None, None, 0.0, 0.0)]
    >>> [r["reasoning_effort"] for r in budget_rows({("g", None, None, e, "samples"): 1 for e in ("high", "low")})]
    ['low', 'high']
    """
    cells: dict[tuple, dict] = {}
    for (mode, budget, least, effort, name), n in counter.items():
        cells.setdefault((mode, budget, least, effort), {})[name] = n
    rows = []
    for (mode, budget, least, effort), c in cells.items():
        samples = c.get("samples", 0)
        judged = c.get("judged", 0)
        rows.append(
            {
                "mode": mode,
                "budget": budget,
                "min_thinking_tokens": least,
                "reasoning_effort": effort,
                "samples": samples,
                "accuracy": round(c.get("correct", 0) / judged, 4) if judged else None,
                "judged": judged,
                "mean_thinking_tokens": round(c.get("thinking", 0) / samples, 1) if samples else None,
                "budget_hit_rate": round(c.get("hit", 0) / samples, 4) if samples else None,
                "mean_extensions": round(c.get("extensions", 0) / samples, 2) if samples else None,
            }
        )
    return sorted(
        rows,
        key=lambda r: (
            r["mode"],
            r["budget"] is None,
            r["budget"] or 0,
            r["min_thinking_tokens"] is None,
            r["min_thinking_tokens"] or 0,
            _EFFORT_ORDER.get(r.get("reasoning_effort"), len(_EFFORT_ORDER)),
        ),
    )


_EFFORT_ORDER = {"low": 0, "medium": 1, "high": 2}


def forced(rows: list[dict]) -> bool:
    """Whether any row of the report was made with s1's forcing."""
    return any(r.get("min_thinking_tokens") is not None for r in rows)


def efforts(rows: list[dict]) -> bool:
    """Whether any row of the report was made at a set reasoning effort (gpt-oss)."""
    return any(r.get("reasoning_effort") is not None for r in rows)


def format_table(rows: list[dict]) -> str:
    s1, effort = forced(rows), efforts(rows)
    lines = [
        "  mode            budget"
        + ("  min think" if s1 else "")
        + ("  effort" if effort else "")
        + "   samples  accuracy  thinking  budget hit"
        + ("  extensions" if s1 else "")
    ]
    for r in rows:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
        hit = "-" if r["budget_hit_rate"] is None else f"{r['budget_hit_rate']:.1%}"
        budget = "none" if r["budget"] is None else str(r["budget"])
        least = "none" if r.get("min_thinking_tokens") is None else str(r["min_thinking_tokens"])
        lines.append(
            f"  {r['mode']:<15} {budget:>6}"
            + (f" {least:>10}" if s1 else "")
            + (f" {r.get('reasoning_effort') or 'default':>7}" if effort else "")
            + f" {r['samples']:>9} {acc:>9} {r['mean_thinking_tokens']:>9} {hit:>11}"
            + (f" {r.get('mean_extensions') or 0:>11}" if s1 else "")
        )
    return "\n".join(lines)


def plot_png(rows: list[dict], title: str) -> bytes:
    """Accuracy and mean thinking tokens against the budget, one line per mode (unbounded at the
    right); with s1's forcing, also the test-time scaling curve: accuracy against the mean
    thinking tokens, for every budget (the most thinking) and thinking minimum (the least)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if efforts(rows):
        return _effort_png(plt, rows, title)
    unforced = [r for r in rows if r.get("min_thinking_tokens") is None]
    sweep = len({(r["mode"], r["budget"]) for r in unforced}) > len({r["mode"] for r in unforced})
    panels = (2 if sweep or not forced(rows) else 0) + (1 if forced(rows) else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    axes = list(axes[0])
    if panels != 1 or not forced(rows):
        ax1, ax2 = axes[0], axes[1]
        finite = [r["budget"] for r in unforced if r["budget"] is not None]
        unbounded_at = max(finite) * 1.3 if finite else 1
        for mode in sorted({r["mode"] for r in unforced}):
            pts = [r for r in unforced if r["mode"] == mode]
            xs = [r["budget"] if r["budget"] is not None else unbounded_at for r in pts]
            ax1.plot(xs, [100 * (r["accuracy"] or 0) for r in pts], marker="o", label=mode)
            ax2.plot(xs, [r["mean_thinking_tokens"] or 0 for r in pts], marker="o", label=mode)
        for ax, label in ((ax1, "accuracy (%, wrong_answer verdict)"), (ax2, "mean thinking tokens")):
            ax.set_xlabel("thinking budget (tokens; rightmost = unbounded)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
    if forced(rows):
        ax = axes[-1]
        for mode in sorted({r["mode"] for r in rows}):
            for label, pts, marker in (
                ("budget only", [r for r in unforced if r["mode"] == mode], "o"),
                (
                    "min_thinking_tokens (s1)",
                    [r for r in rows if r["mode"] == mode and r.get("min_thinking_tokens") is not None],
                    "s",
                ),
            ):
                pts = sorted(pts, key=lambda r: r["mean_thinking_tokens"] or 0)
                if not pts:
                    continue
                xs, ys = [r["mean_thinking_tokens"] or 0 for r in pts], [100 * (r["accuracy"] or 0) for r in pts]
                ax.plot(xs, ys, marker=marker, label=f"{mode}: {label}")
                for r, x, y in zip(pts, xs, ys):
                    ax.annotate(_point_label(r), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("mean thinking tokens")
        ax.set_ylabel("accuracy (%, wrong_answer verdict)")
        ax.set_title("test-time scaling (s1 budget forcing)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(plt, fig, title)


def _effort_png(plt, rows: list[dict], title: str) -> bytes:
    """gpt-oss's reasoning effort: accuracy and mean thinking tokens per level, one line per mode
    and budget; and accuracy against the mean thinking tokens (the scaling curve)."""
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    levels = sorted({r.get("reasoning_effort") for r in rows}, key=lambda e: _EFFORT_ORDER.get(e, len(_EFFORT_ORDER)))
    x = {e: i for i, e in enumerate(levels)}
    for mode, budget in sorted({(r["mode"], r["budget"]) for r in rows}, key=lambda k: (k[0], k[1] is None, k[1] or 0)):
        pts = [r for r in rows if r["mode"] == mode and r["budget"] == budget]
        label = mode + ("" if budget is None else f", max {budget}")
        xs = [x[r.get("reasoning_effort")] for r in pts]
        ax1.plot(xs, [100 * (r["accuracy"] or 0) for r in pts], marker="o", label=label)
        ax2.plot(xs, [r["mean_thinking_tokens"] or 0 for r in pts], marker="o", label=label)
        ax3.plot(
            [r["mean_thinking_tokens"] or 0 for r in pts],
            [100 * (r["accuracy"] or 0) for r in pts],
            marker="o",
            label=label,
        )
        for r in pts:
            ax3.annotate(
                r.get("reasoning_effort") or "default",
                (r["mean_thinking_tokens"] or 0, 100 * (r["accuracy"] or 0)),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(levels)), [e or "default" for e in levels])
        ax.set_xlabel("reasoning effort")
    for ax, ylabel in (
        (ax1, "accuracy (%, wrong_answer verdict)"),
        (ax2, "mean thinking tokens"),
        (ax3, "accuracy (%, wrong_answer verdict)"),
    ):
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax3.set_xlabel("mean thinking tokens")
    ax3.set_title("accuracy against thinking, by effort", fontsize=9)
    return _png(plt, fig, title)


def _png(plt, fig, title: str) -> bytes:
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _point_label(r: dict) -> str:
    """``max 64`` / ``min 32`` / ``min 32, max 64``: the controls a point was made under."""
    bits = ([f"min {r['min_thinking_tokens']}"] if r.get("min_thinking_tokens") is not None else []) + (
        [f"max {r['budget']}"] if r["budget"] is not None else []
    )
    return ", ".join(bits) or "free"
