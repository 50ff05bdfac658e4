"""The report's count sections: the overview, the funnel, per mode and per source, the filters.

Each takes the summary dict (``summary.json``) and returns HTML; every count is a ``num`` with
its key path in the summary, so the page says what the summary says.
"""

from __future__ import annotations

from .page import bar, esc, num, section, share, table, tile
from .svg import COLOURS, SHADES, stacked_bar


def generated(s: dict) -> int:
    return s["accepted"] + s["rejected"]["total"]


def overview(s: dict) -> str:
    ok = s.get("accounted")
    earlier = (s.get("earlier") or {}).get("samples", 0)
    tiles = [
        tile(
            "input rows",
            num(s["inputs"], ("inputs",)),
            f"x {num(s['samples_per_input'], ('samples_per_input',))} samples each",
        ),
        tile("samples expected", num(s["expected_samples"], ("expected_samples",))),
        tile("accepted", num(s["accepted"], ("accepted",)), f"{share(s['accepted'], generated(s))} of generated"),
        tile(
            "rejected",
            num(s["rejected"]["total"], ("rejected", "total")),
            f"{share(s['rejected']['total'], generated(s))} of generated",
        ),
        tile(
            "errors",
            num(s["errors"]["total"], ("errors", "total")),
            f"{share(s['errors']['total'], s['expected_samples'])} of expected",
        ),
    ]
    if earlier:
        tiles.append(
            tile(
                "earlier runs' samples",
                num(earlier, ("earlier", "samples")),
                f"{num(s['earlier']['prompts'], ('earlier', 'prompts'))} prompts skipped",
            )
        )
    tiles.append(
        tile(
            "accounted",
            '<span class="ok">yes</span>'
            if ok
            else f'<span class="bad">NO: {num(s.get("missing"), ("missing",))} missing</span>',
        )
    )
    if s.get("wall_s") is not None:
        speed = s.get("completion_tokens_per_s")
        tiles.append(tile("wall time", f"{s['wall_s']:,.0f} s", f"{speed} generated tokens/s" if speed else ""))
    return f'<div class="tiles">{"".join(tiles)}</div>'


def funnel(s: dict) -> str:
    """inputs -> samples expected -> (earlier) -> errors / generated -> rejected by reason / accepted."""
    expected, gen = s["expected_samples"], generated(s)
    earlier = s.get("earlier") or {}
    steps = [("samples expected", num(expected, ("expected_samples",)), expected, "#78909c")]
    if earlier.get("samples"):
        steps.append(
            (
                "held by earlier runs (skipped)",
                num(earlier["samples"], ("earlier", "samples")),
                earlier["samples"],
                COLOURS["earlier"],
            )
        )
    steps += [
        (
            "could not be made (errors)",
            num(s["errors"]["total"], ("errors", "total")),
            s["errors"]["total"],
            COLOURS["error"],
        ),
        ("generated", num(gen), gen, "#42a5f5"),
        (
            "rejected by the filters",
            num(s["rejected"]["total"], ("rejected", "total")),
            s["rejected"]["total"],
            COLOURS["rejected"],
        ),
        ("accepted (the SFT set)", num(s["accepted"], ("accepted",)), s["accepted"], COLOURS["accepted"]),
    ]
    rows = [
        [
            esc("input rows (prompts)"),
            num(s["inputs"], ("inputs",)),
            f"x {num(s['samples_per_input'], ('samples_per_input',))} samples each",
            bar(1, 1, "#90a4ae", 320),
        ]
    ]
    rows += [[esc(name), cell, share(n, expected), bar(n, expected, colour, 320)] for name, cell, n, colour in steps]
    parts = [("accepted", s["accepted"], COLOURS["accepted"])]
    parts += [
        (f"rejected: {r}", n, SHADES["rejected"][i % 7]) for i, (r, n) in enumerate(s["rejected"]["by_reason"].items())
    ]
    parts += [(f"error: {r}", n, SHADES["error"][i % 7]) for i, (r, n) in enumerate(s["errors"]["by_reason"].items())]
    if earlier.get("samples"):
        parts.append(("earlier runs", earlier["samples"], COLOURS["earlier"]))
    body = [
        table(["step", "samples", "of expected", ""], rows),
        "<h3>Where every expected sample went</h3>",
        stacked_bar(parts, expected, "expected samples by outcome and reason"),
        '<div class="side"><div><h3>Rejected, by reason (the first filter that failed)</h3>',
        reasons(s["rejected"]["by_reason"], ("rejected", "by_reason"), gen, "of generated", "rejected"),
        "</div><div><h3>Errors, by reason</h3>",
        reasons(s["errors"]["by_reason"], ("errors", "by_reason"), expected, "of expected", "error"),
        "</div></div>",
    ]
    if earlier.get("by_run"):
        body.append(
            "<h3>Prompts skipped because an earlier run generated them</h3>"
            + table(
                ["run", "prompts"], [[esc(r), num(n, ("earlier", "by_run", r))] for r, n in earlier["by_run"].items()]
            )
        )
    return section("funnel", "Funnel", "".join(body))


def reasons(counts: dict, key: tuple, total: int, of: str, outcome: str) -> str:
    top = max(counts.values(), default=0)
    return table(
        ["reason", "samples", of, ""],
        [
            [esc(r), num(n, (*key, r)), share(n, total), bar(n, top, SHADES[outcome][i % 7])]
            for i, (r, n) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1]))
        ],
    )


def groups(s: dict) -> str:
    """Outcomes and rejection reasons per mode and per source."""
    body = []
    for group, title in (("mode", "mode"), ("source", "source")):
        counts = s.get(f"by_{group}") or {}
        rows = []
        for name, d in counts.items():
            acc, rej = d.get("accepted", 0), d.get("rejected", 0)
            rows.append(
                [
                    esc("(none)" if name is None else name),
                    num(acc, (f"by_{group}", name, "accepted")) if "accepted" in d else "0",
                    num(rej, (f"by_{group}", name, "rejected")) if "rejected" in d else "0",
                    share(acc, acc + rej),
                    bar(acc, acc + rej, COLOURS["accepted"], 120),
                ]
            )
        body.append(f"<div><h3>Per {title}</h3>" + table([title, "accepted", "rejected", "accept rate", ""], rows))
        by = s["rejected"].get(f"by_{group}") or {}
        names = sorted({r for d in by.values() for r in d})
        body.append(
            f"<h3>Rejection reasons per {title}</h3>"
            + table(
                [title, *map(esc, names)],
                [
                    [
                        esc("(none)" if g is None else g),
                        *(num(d[r], ("rejected", f"by_{group}", g, r)) if r in d else "" for r in names),
                    ]
                    for g, d in by.items()
                ],
            )
            + "</div>"
        )
    return section("groups", "Per mode and per source", f'<div class="side">{"".join(body)}</div>')


def filters(s: dict) -> str:
    """Each filter's passed / failed / skipped and its reasons; then per mode."""
    rows = []
    for name, f in (s.get("filters") or {}).items():
        why = ", ".join(f"{esc(r)} {num(n, ('filters', name, 'reasons', r))}" for r, n in f["reasons"].items())
        rows.append(
            [
                esc(name),
                *(num(f[o], ("filters", name, o)) for o in ("passed", "failed", "skipped")),
                bar(f["failed"], f["passed"] + f["failed"] + f["skipped"], COLOURS["rejected"], 100),
                why or "",
            ]
        )
    body = [
        '<p class="note">Every filter judges every sample (all verdicts are kept); a rejected sample\'s '
        "reason is the first filter in order that failed, so a filter's failures can exceed its reason's "
        "rejections. Skipped: the filter could not judge (no reference, no thinking, cut by the budget).</p>",
        table(["filter", "passed", "failed", "skipped", "failed share", "reasons (failures and skips)"], rows),
    ]
    per_mode = s.get("filters_by_mode") or {}
    if per_mode:
        names = list(dict.fromkeys(f for d in per_mode.values() for f in d))
        body.append(
            "<h3>Per mode: passed / failed / skipped</h3>"
            + table(
                ["mode", *map(esc, names)],
                [
                    [
                        esc(m),
                        *(
                            " / ".join(
                                num(d[f][o], ("filters_by_mode", m, f, o)) for o in ("passed", "failed", "skipped")
                            )
                            if f in d
                            else ""
                            for f in names
                        ),
                    ]
                    for m, d in per_mode.items()
                ],
            )
        )
    return section("filters", "Filters", "".join(body))
