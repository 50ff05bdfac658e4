"""What a kept sample cost: generated tokens and engine seconds per accepted sample, and what the
rejected ones spent, per reason (the summary's ``cost`` block).

Engine seconds are replica-seconds: each replica's window, its first request in to its last
token out, added up over replicas (and attempts, and a k-run's rounds). That is what the GPUs
were held for while generating, start-up excluded. Per mode or budget they are shared out by
generated tokens (decoding is the engines' work), so the parts add up to the whole.
"""

from __future__ import annotations

from ..tally import Tally


def _per(x: float, n: int) -> float | None:
    return round(x / n, 3) if n else None


def _label(mode: str, budget, least, effort) -> str:
    """A budget row's name.

    >>> _label("think", 96, None, None), _label("think", None, 32, "low")
    ('think budget=96', 'think min_thinking=32 effort=low')
    """
    parts = [mode] + [
        f"{k}={v}" for k, v in (("budget", budget), ("min_thinking", least), ("effort", effort)) if v is not None
    ]
    return " ".join(parts)


def cost_summary(t: Tally) -> dict:
    """Tokens and engine seconds per accepted sample, overall, per mode and per budget; and the
    generated tokens of the rejected samples per reason, with their share of all generated tokens.

    >>> t = Tally()
    >>> t.spent.update({("think", None, None, None, "accepted"): 300, ("think", None, None, None, "kept"): 2,
    ...                 ("think", None, None, None, "rejected"): 600, ("no_think", None, None, None, "accepted"): 100,
    ...                 ("no_think", None, None, None, "kept"): 2})
    >>> t.reason_tokens.update({"wrong_answer": 600})
    >>> c = cost_summary(t)
    >>> c["tokens_per_accepted"], c["by_mode"]["think"]["tokens_per_accepted"], c["rejected_tokens"]["wrong_answer"]
    (250.0, 450.0, {'tokens': 600, 'share': 0.6})
    """
    groups: dict[tuple, dict] = {}
    for (*key, what), n in t.spent.items():
        groups.setdefault(tuple(key), {"accepted": 0, "rejected": 0, "kept": 0})[what] += n
    tokens = sum(g["accepted"] + g["rejected"] for g in groups.values())
    kept = sum(g["kept"] for g in groups.values())
    engine_s = sum(w.end - w.start for w in t.replicas.values())

    def row(gs: list[dict]) -> dict:
        tok, k = sum(g["accepted"] + g["rejected"] for g in gs), sum(g["kept"] for g in gs)
        share = engine_s * tok / tokens if tokens else 0.0
        return {
            "tokens": tok,
            "accepted": k,
            "tokens_per_accepted": _per(tok, k),
            "engine_s": round(share, 2),
            "engine_s_per_accepted": _per(share, k),
        }

    modes: dict[str, list] = {}
    for key, g in groups.items():
        modes.setdefault(key[0], []).append(g)
    return {
        "generated_tokens": tokens,
        "accepted": kept,
        "engine_s": round(engine_s, 2),
        "tokens_per_accepted": _per(tokens, kept),
        "engine_s_per_accepted": _per(engine_s, kept),
        "by_mode": {m: row(gs) for m, gs in sorted(modes.items())},
        "by_budget": {_label(*key): row([g]) for key, g in sorted(groups.items(), key=str)},
        "accepted_tokens_share": round(sum(g["accepted"] for g in groups.values()) / tokens, 4) if tokens else None,
        "rejected_tokens": {
            r: {"tokens": n, "share": round(n / tokens, 4) if tokens else None}
            for r, n in sorted(t.reason_tokens.items(), key=lambda x: -x[1])
        },
    }


def cost_section(s: dict) -> str:
    """The report's "what a kept sample cost" section."""
    from .page import esc, num, section, table

    c = s.get("cost")
    if not c or not c.get("generated_tokens"):
        return ""
    k = ("cost",)

    def cells(name: str, d: dict, path: tuple) -> list[str]:
        per_tok, per_s = d["tokens_per_accepted"], d["engine_s_per_accepted"]
        return [
            esc(name),
            num(
                d["tokens"] if "tokens" in d else d["generated_tokens"],
                (*path, "tokens" if "tokens" in d else "generated_tokens"),
            ),
            num(d["accepted"], (*path, "accepted")),
            esc("-" if per_tok is None else f"{per_tok:,}"),
            esc("-" if per_s is None else per_s),
        ]

    def rows(block: str) -> list[list[str]]:
        return [cells(name, d, (*k, block, name)) for name, d in c[block].items()]

    head = ["", "generated tokens", "accepted", "tokens / accepted", "engine-s / accepted"]
    overall = [cells("all", c, k)]
    spent = table(
        ["rejection reason", "generated tokens", "share of all generated tokens"],
        [
            [
                esc(r),
                num(d["tokens"], (*k, "rejected_tokens", r, "tokens")),
                esc("-" if d["share"] is None else f"{d['share']:.1%}"),
            ]
            for r, d in c["rejected_tokens"].items()
        ],
    )
    held = "-" if c["accepted_tokens_share"] is None else format(c["accepted_tokens_share"], ".1%")
    body = (
        f"<p>engine seconds: each replica's window (first request in, last token out) added up, "
        f"{esc(c['engine_s'])} s; per mode and budget shared out by generated tokens. "
        f"Accepted samples hold {held} of the generated tokens.</p>"
        + table(head, overall + rows("by_mode") + (rows("by_budget") if len(c["by_budget"]) > 1 else []))
        + (spent if c["rejected_tokens"] else "")
    )
    return section("cost", "What a kept sample cost", body)


def verified_section(s: dict) -> str:
    """The report's sample-until-verified section: rounds, groups reaching k, pass-rate histogram."""
    from .page import bar, esc, num, section, table

    v = s.get("verified")
    if not v:
        return ""
    k = ("verified",)
    top = max(v["pass_rates"].values() or [1])
    body = (
        f"<p>k={esc(v['k'])} accepted of at most n={esc(v['n'])} per prompt and mode/budget, made in "
        f"rounds up to {esc(v['cuts'])} samples ({num(v['passes'], (*k, 'passes'))} passes of the stream in "
        f"this attempt); "
        f"{num(v['reached_k'], (*k, 'reached_k'))} of {num(v['groups'], (*k, 'groups'))} groups reached k, "
        f"{num(v['unsolved'], (*k, 'unsolved'))} unsolved (<code>{esc(v['unsolved_file'])}</code>), "
        f"{num(v['stopped_on_errors'], (*k, 'stopped_on_errors'))} stopped on errors; samples made "
        f"{num(v['samples_made'], (*k, 'samples_made'))}, not needed "
        f"{num(v['samples_saved'], (*k, 'samples_saved'))}"
        f"; pass rate {esc(v['pass_rate'])}.</p>"
        + table(
            ["pass rate (tenths)", "groups", ""],
            [
                [esc(b), num(n, (*k, "pass_rates", b)), bar(n, top, "#4e79a7")]
                for b, n in sorted(v["pass_rates"].items())
            ],
        )
    )
    return section("verified", "Sample until verified", body)
