"""The report's sections on the samples: lengths, budgets, the adaptive and fusion blocks,
examples. Each takes the summary dict (and what was read beside it). How the run went (throughput,
provenance) is ``operations``."""

from __future__ import annotations

import base64

from ..bins import LENGTH_BINS, bin_edge, length_bin
from .page import clip, esc, num, section, table
from .svg import COLOURS, PALETTE, histogram, lines

EDGES = [bin_edge(b) for b in range(LENGTH_BINS)]
OUTCOMES = ("accepted", "rejected")


def _bins(hist: dict) -> dict[int, int]:
    """A summary histogram (``{lower edge: n}``) by bin index."""
    return {length_bin(int(edge)): n for edge, n in hist.items()}


def quantile(hist: dict, q: float) -> str:
    """The bin holding the ``q`` quantile of a summary histogram, as its token range.

    >>> quantile({"0": 1, "64": 2, "96": 7}, 0.5), quantile({"3": 4}, 0.9), quantile({}, 0.5)
    ('96-127', '3', '-')
    """
    total = sum(hist.values())
    if not total:
        return "-"
    seen = 0
    for edge, n in sorted(hist.items(), key=lambda kv: int(kv[0])):
        seen += n
        if seen >= q * total:
            b = length_bin(int(edge))
            top = EDGES[b + 1] - 1 if b + 1 < LENGTH_BINS else None
            return str(edge) if top == int(edge) else f"{edge}-{top if top is not None else 'more'}"
    return "-"


def lengths(s: dict) -> str:
    by = (s.get("lengths") or {}).get("by_mode") or {}
    if not by:
        return ""
    charts, rows = [], []
    for mode, outcomes in by.items():
        for part in ("thinking", "answer"):
            series = [(o, COLOURS[o], _bins(outcomes.get(o, {}).get(part, {}))) for o in OUTCOMES]
            charts.append(
                f"<div><h3>{esc(mode)}: {part} tokens</h3>"
                + histogram(series, EDGES, f"{mode} {part} token lengths")
                + "</div>"
            )
            for o in OUTCOMES:
                hist = outcomes.get(o, {}).get(part)
                if hist:
                    rows.append(
                        [
                            esc(mode),
                            esc(part),
                            esc(o),
                            num(sum(hist.values()), ("lengths", "by_mode", mode, o, part), total=True),
                            quantile(hist, 0.5),
                            quantile(hist, 0.9),
                            quantile(hist, 1.0),
                        ]
                    )
    note = (
        '<p class="note">From bounded histograms kept while counting (log-spaced bins: lower edges 0, 1, 2, 3, '
        "4, 6, 8, 12, ...), so a run of any size reports alike; quantiles are the bins that hold them. "
        "Bars are shares of each outcome's samples.</p>"
    )
    return section(
        "lengths",
        "Thinking and answer lengths",
        note
        + f'<div class="grid">{"".join(charts)}</div>'
        + table(["mode", "part", "outcome", "samples", "median", "p90", "max"], rows),
    )


def _pct(v, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}%}"


def budgets(s: dict, png: bytes | None) -> str:
    """The budget report: its table, and the sweep's plot (the PNG beside the data, or drawn here)."""
    rows = s.get("budget_report") or []
    s1 = any(r.get("min_thinking_tokens") is not None for r in rows)  # s1's forcing: its columns too
    effort = any(r.get("reasoning_effort") for r in rows)  # gpt-oss's reasoning effort: its column
    if not png and not s1 and not effort and not any(r["budget"] is not None for r in rows):
        return ""
    body = [
        table(
            ["mode", "budget"]
            + (["min thinking"] if s1 else [])
            + (["reasoning effort"] if effort else [])
            + ["samples", "accuracy", "judged", "mean thinking tokens", "budget hit"]
            + (["mean extensions"] if s1 else []),
            [
                [esc(r["mode"]), esc("none" if r["budget"] is None else r["budget"])]
                + ([esc("none" if r.get("min_thinking_tokens") is None else r["min_thinking_tokens"])] if s1 else [])
                + ([esc(r.get("reasoning_effort") or "default")] if effort else [])
                + [
                    num(r["samples"], ("budget_report", i, "samples")),
                    _pct(r["accuracy"], 1),
                    num(r["judged"], ("budget_report", i, "judged")),
                    esc(r["mean_thinking_tokens"]),
                    _pct(r["budget_hit_rate"], 0),
                ]
                + ([esc(r.get("mean_extensions"))] if s1 else [])
                for i, r in enumerate(rows)
            ],
        )
    ]
    modes = sorted({r["mode"] for r in rows})
    sweep = any(sum(r["mode"] == m for r in rows) > 1 for m in modes)
    if png:
        body.append(
            f'<img alt="budget report" style="max-width:900px;width:100%" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
    elif sweep and not effort:  # no plot beside the data (a run from before it was drawn): draw one here
        order = sorted({r["budget"] for r in rows if r["budget"] is not None})
        x = {b: i for i, b in enumerate(order)} | {None: len(order)}
        ticks = [(i, str(b)) for b, i in x.items() if b is not None] + [(len(order), "none")]

        def per_mode(name: str):
            return [
                (m, PALETTE[i % 10], [(x[r["budget"]], r[name] or 0) for r in rows if r["mode"] == m])
                for i, m in enumerate(modes)
            ]

        body.append(
            '<div class="grid"><div>'
            + lines(per_mode("accuracy"), "accuracy per budget", "thinking budget", "accuracy", ticks, True)
            + "</div><div>"
            + lines(
                per_mode("mean_thinking_tokens"),
                "thinking per budget",
                "thinking budget",
                "mean thinking tokens",
                ticks,
            )
            + "</div></div>"
        )
    return section(
        "budgets",
        ("Reasoning-effort sweep" if effort else "Thinking-budget sweep") if sweep or png else "Thinking budgets",
        "".join(body),
    )


def adaptive(s: dict) -> str:
    a = s.get("adaptive")
    if not a:
        return ""
    k = ("adaptive",)
    cells = [
        f"{esc(name)} {num(a[key], (*k, key))}"
        for name, key in (
            ("prompts", "prompts"),
            ("chose think", "chose_think"),
            ("chose no-think", "chose_no_think"),
            ("unsolved", "unsolved"),
            ("dropped", "dropped"),
            ("unverified", "unverified"),
            ("no samples", "no_samples"),
        )
    ]
    body = (
        f"<p>rule <b>{esc(a['rule'])}</b>, K={esc(a['k'])}, delta {esc(a['delta'])}; "
        + ", ".join(cells)
        + f"; no-think share of the chosen: "
        f"{'-' if a['no_think_share'] is None else format(a['no_think_share'], '.0%')}</p>"
        + table(
            ["source", "prompts", "chose no-think", "no-think share", "unsolved"],
            [
                [
                    esc(src),
                    num(d["prompts"], (*k, "by_source", src, "prompts")),
                    num(d["chose_no_think"], (*k, "by_source", src, "chose_no_think")),
                    "-" if d["no_think_share"] is None else f"{d['no_think_share']:.0%}",
                    num(d["unsolved"], (*k, "by_source", src, "unsolved")),
                ]
                for src, d in a["by_source"].items()
            ],
        )
    )
    return section("adaptive", "Adaptive mode choice", body)


def fusion(s: dict) -> str:
    f = s.get("fusion")
    if not f:
        return ""
    body = (
        "<h3>Accepted, by mode</h3>"
        + table(
            ["mode", "samples", "share"],
            [
                [esc(m), num(d["samples"], ("fusion", "accepted_by_mode", m, "samples")), f"{d['share']:.0%}"]
                for m, d in f["accepted_by_mode"].items()
            ],
        )
        + "<h3>By flag</h3>"
        + table(
            ["flag", "accepted", "rejected", "accepted share"],
            [
                [
                    esc(name),
                    *(num(d[o], ("fusion", "flags", name, o)) if o in d else "0" for o in OUTCOMES),
                    "-" if d["accepted_share"] is None else f"{d['accepted_share']:.0%}",
                ]
                for name, d in f["flags"].items()
            ],
        )
    )
    if f.get("turns"):
        body += "<h3>Multi-turn turns</h3>" + table(
            ["flag, followed", "turns"], [[esc(t), num(n, ("fusion", "turns", t))] for t, n in f["turns"].items()]
        )
    return section("fusion", "Thinking-mode fusion", body)


def _prompt(row: dict) -> str:
    """The last user turn (the rendered prompt text where there are no messages)."""
    users = [m["content"] for m in row.get("messages") or [] if m["role"] == "user"]
    return users[-1] if users else row.get("prompt_text") or ""


def _meta(r: dict) -> str:
    """A rejected sample's line of facts, those it has."""
    tokens = (
        f"{r['thinking_tokens']} thinking + {r['answer_tokens']} answer tokens"
        if r.get("thinking_tokens") is not None and r.get("answer_tokens") is not None
        else None
    )
    facts = [
        r.get("mode"),
        r.get("source"),
        r.get("thinking_budget") and f"budget {r['thinking_budget']}",
        tokens,
        r.get("finish_reason") and f"finish {r['finish_reason']}",
        r.get("reference") is not None and f"reference {str(r['reference'])[:60]}",
        r.get("extracted_answer") is not None and f"extracted {str(r['extracted_answer'])[:60]}",
        r.get("sample_id"),
    ]
    return " · ".join(esc(f) for f in facts if f)


def _text(text, limit: int) -> str:
    return clip(text, limit) if text else '<span class="k">(empty)</span>'


def examples(s: dict, rejected: dict, errors: dict) -> str:
    """A few samples per rejection reason, and a few input rows per error reason, cut and escaped."""
    body = []
    for reason, rows in rejected.items():
        n = num(s["rejected"]["by_reason"].get(reason, 0), ("rejected", "by_reason", reason))
        body.append(f"<details open><summary>rejected: {esc(reason)} ({n} in the run)</summary>")
        for r in rows:
            failed = [v for v in r.get("verdicts") or [] if v["passed"] is False]
            why = "; ".join(
                f"{esc(v['filter'])}: {esc(v['reason'])}"
                + (f" ({clip(v.get('detail'), 200)})" if v.get("detail") else "")
                for v in failed
            )
            body.append(
                f'<div class="ex"><div class="k">{_meta(r)}</div><div class="k">why: {why or "-"}</div>'
                f'<div class="k">prompt</div><pre>{_text(_prompt(r), 300)}</pre>'
                f'<div class="k">thinking</div><pre>{_text(r.get("thinking"), 700)}</pre>'
                f'<div class="k">answer</div><pre>{_text(r.get("answer"), 400)}</pre></div>'
            )
        body.append("</details>")
    for reason, rows in errors.items():
        n = num(s["errors"]["by_reason"].get(reason, 0), ("errors", "by_reason", reason))
        body.append(f"<details><summary>error: {esc(reason)} ({n} samples in the run)</summary>")
        for r in rows:
            body.append(
                f'<div class="ex err"><div class="k">{esc(r.get("stage"))} · '
                f"field {esc(r.get('field') or '-')}"
                f" · {esc(r.get('location'))}</div><pre>{clip(r.get('detail'), 300)}</pre>"
                f'<div class="k">input</div><pre>{clip(r.get("input"), 300)}</pre></div>'
            )
        body.append("</details>")
    if not body:
        return ""
    return section(
        "examples",
        "Examples",
        '<p class="note">The first samples of each reason in the run folder '
        "(up to 3; error rows one per input row, folded: click to open); texts cut, shown as text.</p>" + "".join(body),
    )
