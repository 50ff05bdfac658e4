"""Two runs side by side (a night against the night before): accept rate, rejection and error
reasons, per mode, filters and length distributions, each with its difference.

Counts carry their key path and which run they are from (``data-run``: ``a`` is the run, ``b``
the one it is compared against), as on a run's own page.
"""

from __future__ import annotations

from collections import Counter

from .counts import generated
from .detail import EDGES, _bins, quantile
from .page import document, esc, num, section, table
from .svg import histogram


def _rate(n: int, total: int) -> float | None:
    return n / total if total else None


def _pct(r: float | None) -> str:
    return "-" if r is None else f"{r:.1%}"


def _delta(a, b, good: int = 0, pp: bool = False) -> str:
    """``a - b`` signed; coloured when a direction is good (+1 up is good, -1 down is good)."""
    if a is None or b is None:
        return "-"
    d = a - b
    text = f"{d * 100:+.1f} pp" if pp else (f"{d:+,}" if isinstance(d, int) else f"{d:+,.1f}")
    cls = "" if not good or not d else ("up" if d * good > 0 else "down")
    return f'<span class="{cls}">{text}</span>' if cls else text


def _headline(a: dict, b: dict) -> str:
    rows = []
    for label, key, good in (
        ("input rows", ("inputs",), 0),
        ("samples expected", ("expected_samples",), 0),
        ("accepted", ("accepted",), 1),
        ("rejected", ("rejected", "total"), -1),
        ("errors", ("errors", "total"), -1),
        ("earlier runs' samples", ("earlier", "samples"), 0),
    ):
        va, vb = (_get(s, key) for s in (a, b))
        if va is not None or vb is not None:
            rows.append(
                [
                    esc(label),
                    "-" if va is None else num(va, key, "a"),
                    "-" if vb is None else num(vb, key, "b"),
                    _delta(va, vb, good),
                ]
            )
    for label, f, good in (
        ("accept rate (of generated)", lambda s: _rate(s["accepted"], generated(s)), 1),
        ("error rate (of expected)", lambda s: _rate(s["errors"]["total"], s["expected_samples"]), -1),
    ):
        rows.append([esc(label), _pct(f(a)), _pct(f(b)), _delta(f(a), f(b), good, pp=True)])
    for label, key in (
        ("generated tokens", ("tokens", "completion")),
        ("wall time s", ("wall_s",)),
        ("generated tokens / s", ("completion_tokens_per_s",)),
    ):
        va, vb = (_get(s, key) for s in (a, b))
        rows.append(
            [esc(label), esc("-" if va is None else f"{va:,}"), esc("-" if vb is None else f"{vb:,}"), _delta(va, vb)]
        )
    return table(["", "this run (a)", "compared with (b)", "a - b"], rows)


def _get(s: dict, key: tuple):
    for k in key:
        s = s.get(k) if isinstance(s, dict) else None
    return s


def _reasons(a: dict, b: dict, block: str, total) -> str:
    names = sorted(
        set(a[block]["by_reason"]) | set(b[block]["by_reason"]),
        key=lambda r: -(a[block]["by_reason"].get(r, 0) + b[block]["by_reason"].get(r, 0)),
    )
    rows = []
    for r in names:
        na, nb = (s[block]["by_reason"].get(r, 0) for s in (a, b))
        ra, rb = _rate(na, total(a)), _rate(nb, total(b))
        rows.append(
            [
                esc(r),
                num(na, (block, "by_reason", r), "a") if r in a[block]["by_reason"] else "0",
                _pct(ra),
                num(nb, (block, "by_reason", r), "b") if r in b[block]["by_reason"] else "0",
                _pct(rb),
                _delta(ra, rb, -1, pp=True),
            ]
        )
    return table(["reason", "a", "share", "b", "share", "share a - b"], rows)


def _modes(a: dict, b: dict) -> str:
    rows = []
    for mode in sorted(set(a["by_mode"]) | set(b["by_mode"])):
        ra, rb = (
            _rate(s["by_mode"].get(mode, {}).get("accepted", 0), sum(s["by_mode"].get(mode, {}).values()))
            for s in (a, b)
        )
        rows.append([esc(mode), _pct(ra), _pct(rb), _delta(ra, rb, 1, pp=True)])
    return table(["mode", "accept rate a", "accept rate b", "a - b"], rows)


def _filters(a: dict, b: dict) -> str:
    rows = []
    for name in list(dict.fromkeys([*a.get("filters", {}), *b.get("filters", {})])):
        ra, rb = (
            _rate(f["failed"], f["passed"] + f["failed"]) if (f := s.get("filters", {}).get(name)) else None
            for s in (a, b)
        )
        rows.append([esc(name), _pct(ra), _pct(rb), _delta(ra, rb, -1, pp=True)])
    return table(["filter", "failed share a", "failed share b", "a - b"], rows)


def _generated_hist(s: dict, mode: str, part: str) -> dict:
    out: Counter = Counter()
    for outcome in ("accepted", "rejected"):
        out.update(((s.get("lengths") or {}).get("by_mode") or {}).get(mode, {}).get(outcome, {}).get(part, {}))
    return dict(out)


def _lengths(a: dict, b: dict) -> str:
    modes = sorted({m for s in (a, b) for m in (s.get("lengths") or {}).get("by_mode") or {}})
    charts, rows = [], []
    for mode in modes:
        for part in ("thinking", "answer"):
            ha, hb = _generated_hist(a, mode, part), _generated_hist(b, mode, part)
            charts.append(
                f"<div><h3>{esc(mode)}: {part} tokens (generated samples)</h3>"
                + histogram(
                    [("a", "#1565c0", _bins(ha)), ("b", "#90a4ae", _bins(hb))], EDGES, f"{mode} {part} lengths, a and b"
                )
                + "</div>"
            )
            rows.append(
                [esc(mode), esc(part), quantile(ha, 0.5), quantile(hb, 0.5), quantile(ha, 0.9), quantile(hb, 0.9)]
            )
    if not charts:
        return '<p class="note">no length histograms in these summaries</p>'
    return f'<div class="grid">{"".join(charts)}</div>' + table(
        ["mode", "part", "median a", "median b", "p90 a", "p90 b"], rows
    )


def _cost(a: dict, b: dict) -> str:
    """Tokens and engine seconds per accepted sample (overall and per mode), and the share of the
    generated tokens the rejected samples took per reason."""
    ca, cb = a.get("cost") or {}, b.get("cost") or {}
    if not ca and not cb:
        return '<p class="note">no cost block in these summaries (made before it existed)</p>'
    rows = []
    for name, path in [
        ("all", ()),
        *((f"mode {m}", ("by_mode", m)) for m in sorted(set(ca.get("by_mode", {})) | set(cb.get("by_mode", {})))),
    ]:
        for what, key, good in (
            ("tokens / accepted", "tokens_per_accepted", -1),
            ("engine-s / accepted", "engine_s_per_accepted", -1),
        ):
            va, vb = (_get(c, (*path, key)) for c in (ca, cb))
            rows.append(
                [
                    esc(f"{name}: {what}"),
                    esc("-" if va is None else f"{va:,}"),
                    esc("-" if vb is None else f"{vb:,}"),
                    _delta(va, vb, good),
                ]
            )
    for r in sorted(set(ca.get("rejected_tokens", {})) | set(cb.get("rejected_tokens", {}))):
        va, vb = (_get(c, ("rejected_tokens", r, "share")) for c in (ca, cb))
        rows.append([esc(f"tokens spent on {r}"), _pct(va), _pct(vb), _delta(va, vb, -1, pp=True)])
    return table(["", "a", "b", "a - b"], rows)


def compare(a: dict, b: dict, name_a: str, name_b: str) -> str:
    """The page comparing run ``a`` (``name_a``) with run ``b``."""
    body = (
        section("headline", "Headline", _headline(a, b))
        + section("reasons", "Rejection reasons (share of generated samples)", _reasons(a, b, "rejected", generated))
        + section(
            "errors",
            "Error reasons (share of expected samples)",
            _reasons(a, b, "errors", lambda s: s["expected_samples"]),
        )
        + section("cost", "What a kept sample cost", _cost(a, b))
        + section("modes", "Per mode", _modes(a, b))
        + section("filters", "Filters", _filters(a, b))
        + section("lengths", "Length distributions", _lengths(a, b))
    )
    sub = (
        f"a = {esc(name_a)} ({esc(a.get('teacher'))}) · b = {esc(name_b)} ({esc(b.get('teacher'))}); "
        "differences are a - b"
    )
    return document(f"thinkmill: {name_a} vs {name_b}", sub, body)
