"""The summary's blocks on how a run's modes were used: ``fusion`` (written samples per mode and
per flag, multi-turn turns) and ``adaptive`` (the mode chosen per prompt, ``generation.adaptive``).
"""

from __future__ import annotations

from ..tally import Tally


def fuses(generation) -> bool:
    """Whether a run mixes modes or flags (and so reports the fusion block)."""
    return bool(generation.mix) or any(m.flag or m.turns > 1 for m in generation.modes)


def fusion_summary(t: Tally) -> dict:
    """What the fused set is made of: written samples per mode and per flag (and where it sits),
    with shares of the accepted ones; multi-turn turns by flag and whether they followed it."""
    accepted: dict[str, int] = {}
    flags: dict[str, dict] = {}
    for (mode, flag, turn, status), n in t.flags.items():
        name = flag if flag == "none" else f"{flag} in {turn}"
        flags.setdefault(name, {}).setdefault(status, 0)
        flags[name][status] += n
        if status == "accepted":
            accepted[mode] = accepted.get(mode, 0) + n
    total = sum(accepted.values())
    n_acc = sum(d.get("accepted", 0) for d in flags.values())
    return {
        "accepted_by_mode": {m: {"samples": n, "share": round(n / total, 4)} for m, n in sorted(accepted.items())},
        "flags": {
            f: {**d, "accepted_share": round(d.get("accepted", 0) / n_acc, 4) if n_acc else None}
            for f, d in sorted(flags.items())
        },
        "turns": dict(sorted((f"{flag} {followed}", n) for (flag, followed), n in t.turns.items())),
    }


def adaptive_summary(adaptive, k: int, choices, unsolved_file: str) -> dict:
    """The adaptive choice per prompt (``generation.adaptive``): ``choices`` counts
    ``(source, outcome)`` over the committed prompts (``stages.select.recount``)."""
    counts: dict[str, int] = {}
    by_source: dict[str, dict[str, int]] = {}
    for (source, outcome), n in choices.items():
        for d in (counts, by_source.setdefault(source, {})):
            d["prompts"] = d.get("prompts", 0) + n
            d[outcome] = d.get(outcome, 0) + n

    def share(d: dict) -> float | None:
        decided = d.get("think", 0) + d.get("no_think", 0)
        return round(d.get("no_think", 0) / decided, 4) if decided else None

    return {
        "rule": adaptive.rule,
        "delta": adaptive.delta,
        "k": k,
        "think_mode": adaptive.think_mode,
        "no_think_mode": adaptive.no_think_mode,
        "prompts": counts.get("prompts", 0),
        **{f"chose_{o}": counts.get(o, 0) for o in ("think", "no_think")},
        **{o: counts.get(o, 0) for o in ("dropped", "unverified", "no_samples", "unsolved")},
        "unsolved_file": unsolved_file,
        # among the prompts where the rule chose (unsolved, unverified, dropped ones aside)
        "no_think_share": share(counts),
        "by_source": {
            src: {
                "prompts": d.get("prompts", 0),
                "chose_no_think": d.get("no_think", 0),
                "no_think_share": share(d),
                "unsolved": d.get("unsolved", 0),
            }
            for src, d in sorted(by_source.items())
        },
    }
