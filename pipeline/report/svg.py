"""Hand-written inline SVG charts for the run report: no library, no script, nothing to download.

Each function returns one ``<svg>`` element (scaled by its ``viewBox``), every mark with a
``<title>`` so a hover shows its exact value. Labels go through ``html.escape``.
"""

from __future__ import annotations

from html import escape

#: Outcome colours, used in every chart and table of the report.
COLOURS = {"accepted": "#2e7d32", "rejected": "#ef6c00", "error": "#7b1fa2", "earlier": "#607d8b"}
#: One colour per series (replicas, modes), in order.
PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#f9a825", "#6a1b9a", "#00838f", "#ad1457", "#4e342e", "#5d4037", "#283593"]
#: Shades for the reasons inside one outcome (rejected: oranges, errors: purples).
SHADES = {
    "rejected": ["#ef6c00", "#fb8c00", "#ffa726", "#ffb74d", "#ffcc80", "#e65100", "#bf360c"],
    "error": ["#7b1fa2", "#8e24aa", "#ab47bc", "#ba68c8", "#ce93d8", "#6a1b9a", "#4a148c"],
}
_FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="11"'


def _open(w: int, h: int, label: str) -> str:
    return f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{escape(label)}" {_FONT}>'


def _nice(top: float) -> float:
    """A round axis maximum at or above ``top``.

    >>> [_nice(x) for x in (0, 0.7, 3, 7.5, 42, 180)]
    [1, 1, 5, 10, 50, 200]
    """
    if top <= 0:
        return 1
    step = 1.0
    while step * 10 < top:
        step *= 10
    while step > top * 10:
        step /= 10
    for m in (1, 2, 5, 10):
        if m * step >= top:
            return m * step if m * step != int(m * step) else int(m * step)
    return 10 * step


def _divisions(top: float) -> int:
    """Gridlines for an axis from 0 to a ``_nice`` top: steps of 1, 2 or 5 x a power of ten.

    >>> [_divisions(t) for t in (1, 2, 5, 10, 200, 0.5)]
    [5, 4, 5, 5, 4, 5]
    """
    while top >= 10:
        top /= 10
    while top < 1:
        top *= 10
    return 4 if round(top) == 2 else 5


def _fmt(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.2g}"


def _axes(x0: int, y0: int, w: int, h: int, top: float, y_label: str, percent: bool = False) -> list[str]:
    """Left axis with 5 gridlines from 0 to ``top``."""
    out, n = [], _divisions(top)
    for i in range(n + 1):
        v = top * i / n
        y = y0 + h - h * i / n
        out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        out.append(
            f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
            f"{_fmt(v * 100) + '%' if percent else _fmt(v)}</text>"
        )
    out.append(
        f'<text x="12" y="{y0 + h / 2:.0f}" transform="rotate(-90 12 {y0 + h / 2:.0f})" '
        f'text-anchor="middle" fill="#333">{escape(y_label)}</text>'
    )
    return out


def _legend(names: list[tuple[str, str]], x: int, y: int) -> list[str]:
    out, at = [], x
    for name, colour in names:
        out.append(
            f'<rect x="{at}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{at + 14}" y="{y}" fill="#333">{escape(name)}</text>'
        )
        at += 24 + 7 * len(name)
    return out


def stacked_bar(parts: list[tuple[str, int, str]], total: int, label: str) -> str:
    """One horizontal bar cut into ``parts`` (name, count, colour), as shares of ``total``."""
    w, h = 900, 46
    out = [_open(w, h, label)]
    x = 0.0
    for name, n, colour in parts:
        if n <= 0 or total <= 0:
            continue
        width = w * n / total
        out.append(
            f'<rect x="{x:.2f}" y="4" width="{width:.2f}" height="26" fill="{colour}">'
            f"<title>{escape(name)}: {n} ({n / total:.1%})</title></rect>"
        )
        if width > 60:
            out.append(f'<text x="{x + 4:.1f}" y="21" fill="#fff">{escape(name)} {n / total:.0%}</text>')
        x += width
    out.append(
        f'<text x="0" y="43" fill="#555">0</text><text x="{w}" y="43" text-anchor="end" '
        f'fill="#555">{total}</text></svg>'
    )
    return "".join(out)


def histogram(
    series: list[tuple[str, str, dict[int, int]]],
    edges: list[int],
    label: str,
    x_label: str = "tokens (log-spaced bins; label = lower edge)",
) -> str:
    """Grouped bars per log-spaced bin: each series (name, colour, {bin: count}) as shares of its
    own samples, so an accepted and a rejected set of different sizes compare by shape."""
    bins = sorted({b for _, _, h in series for b, n in h.items() if n})
    w, h, x0, y0 = 560, 210, 46, 26
    pw, ph = w - x0 - 8, h - y0 - 44
    out = [_open(w, h, label)]
    if not bins:
        return "".join(out) + f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no samples</text></svg>'
    lo, hi = bins[0], bins[-1]
    span = list(range(lo, hi + 1))
    totals = [sum(s[2].values()) or 1 for s in series]
    top = _nice(max(n / t for (_, _, hist), t in zip(series, totals) for n in hist.values()))
    out += _axes(x0, y0, pw, ph, top, "share of samples", percent=True)
    slot = pw / len(span)
    bar = max(slot * 0.8 / max(len(series), 1), 1)
    for i, b in enumerate(span):
        for j, ((name, colour, hist), t) in enumerate(zip(series, totals)):
            n = hist.get(b, 0)
            if n:
                bh = ph * (n / t) / top
                x = x0 + i * slot + slot * 0.1 + j * bar
                hi_edge = f"{edges[b + 1] - 1}" if b + 1 < len(edges) else "more"
                out.append(
                    f'<rect x="{x:.1f}" y="{y0 + ph - bh:.1f}" width="{bar:.1f}" height="{bh:.1f}" '
                    f'fill="{colour}"><title>{escape(name)}: {n} samples with {edges[b]}-{hi_edge} '
                    f"tokens ({n / t:.1%})</title></rect>"
                )
        if len(span) <= 14 or i % 2 == 0:
            out.append(
                f'<text x="{x0 + i * slot:.1f}" y="{y0 + ph + 13}" text-anchor="middle" '
                f'fill="#555">{_fmt(edges[b])}</text>'
            )
    out.append(f'<text x="{x0 + pw / 2}" y="{h - 14}" text-anchor="middle" fill="#333">{escape(x_label)}</text>')
    out += _legend(
        [(f"{name} (n={t if sum(hst.values()) else 0})", c) for (name, c, hst), t in zip(series, totals)], x0, 14
    )
    return "".join(out) + "</svg>"


def lines(
    series: list[tuple[str, str, list[tuple[float, float]]]],
    label: str,
    x_label: str,
    y_label: str,
    x_ticks: list[tuple[float, str]] | None = None,
    percent: bool = False,
) -> str:
    """Line chart, one polyline with dots per series (name, colour, [(x, y), ...])."""
    w, h, x0, y0 = 560, 230, 54, 26
    pw, ph = w - x0 - 12, h - y0 - 44
    pts = [p for _, _, s in series for p in s]
    out = [_open(w, h, label)]
    if not pts:
        return "".join(out) + f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no data</text></svg>'
    xmin, xmax = min(p[0] for p in pts), max(p[0] for p in pts)
    xspan = (xmax - xmin) or 1
    top = 1.0 if percent else _nice(max(p[1] for p in pts))
    out += _axes(x0, y0, pw, ph, top, y_label, percent)

    def xy(p):
        return x0 + pw * (p[0] - xmin) / xspan, y0 + ph - ph * p[1] / top

    if x_ticks is None:
        step = _nice(xspan / 5)
        x_ticks = [
            (step * i, _fmt(step * i))
            for i in range(int(xmin // step), int(xmax // step) + 1)
            if xmin <= step * i <= xmax
        ]
    for x, text in x_ticks:
        px = xy((x, 0))[0]
        out.append(f'<text x="{px:.1f}" y="{y0 + ph + 13}" text-anchor="middle" fill="#555">{escape(text)}</text>')
    for name, colour, s in series:
        coords = [xy(p) for p in s]
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            + '"/>'
        )
        for (x, y), p in zip(coords, s):
            value = f"{p[1]:.1%}" if percent else f"{p[1]:.1f}"
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{escape(name)}: '
                f"{value} at {p[0]:g}</title></circle>"
            )
    out.append(f'<text x="{x0 + pw / 2}" y="{h - 14}" text-anchor="middle" fill="#333">{escape(x_label)}</text>')
    out += _legend([(name, colour) for name, colour, _ in series], x0, 14)
    return "".join(out) + "</svg>"
