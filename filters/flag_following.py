"""``flag_following``: every assistant turn follows the latest ``/think`` / ``/no_think`` flag.

Qwen3's soft switch: a flag in a user or system turn asks for thinking (``/think``) or an empty
think block (``/no_think``); the model follows the most recent flag of the conversation. In a
multi-turn sample each turn is checked against the flag in force when it was written; a turn
that does not follow it rejects the sample with ``flag_not_followed``. Turns with no flag in
force are not judged here (the ``format`` filter checks the last turn against its mode).

>>> f = FlagFollowingFilter()
>>> empty = "<think>\\n\\n</think>\\n\\n"
>>> conv = [{"role": "user", "content": "1+1? /no_think"}, {"role": "assistant", "content": empty + "2"},
...         {"role": "user", "content": "And 2+2? /think"}, {"role": "assistant", "content": empty + "4"}]
>>> v = f.check(Sample(conv[-1]["content"], thinking_expected=True, messages=conv))
>>> v.reason, v.detail
('flag_not_followed', 'turn 2: flag /think but the think block is empty')
"""

from __future__ import annotations

import re

from .base import Filter, Sample, Verdict, register
from .lib.text import ThinkSplit, split_thinking

_FLAG = re.compile(r"(?<!\S)/(no_think|think)(?!\S)")


def latest_flag(text: str) -> str | None:
    """The last soft flag in a turn's text, or None.

    >>> latest_flag("What is 2+2? /think"), latest_flag("/no_think Be brief. /think"), latest_flag("a/think")
    ('/think', '/think', None)
    """
    found = None
    for m in _FLAG.finditer(text):
        found = "/" + m.group(1)
    return found


def flag_turns(
    messages: list[dict],
    think_start: str = "<think>",
    think_end: str = "</think>",
    splits: list[ThinkSplit] | None = None,
) -> list[dict]:
    """Per assistant turn: the flag in force (the latest given so far), whether the turn's think
    block holds thinking, and whether that follows the flag (None when no flag is in force).
    ``splits``: the assistant turns already split (``Sample.turn_splits``)."""
    flag, out = None, []
    replies = iter(splits) if splits is not None else None
    for m in messages:
        if m["role"] in ("system", "user"):
            flag = latest_flag(m["content"]) or flag
        elif m["role"] == "assistant":
            split = next(replies) if replies is not None else split_thinking(m["content"], think_start, think_end)
            thinks = bool(split.thinking.strip())
            followed = None if flag is None else thinks == (flag == "/think")
            out.append({"flag": flag, "thinking": thinks, "followed": followed})
    return out


@register
class FlagFollowingFilter(Filter):
    name = "flag_following"

    def check(self, s: Sample) -> Verdict:
        messages = s.messages or [{"role": "user", "content": s.prompt}, {"role": "assistant", "content": s.completion}]
        turns = flag_turns(messages, s.think_start, s.think_end, s.turn_splits)
        flagged = [t for t in turns if t["followed"] is not None]
        if not flagged:
            return self.ok(detail="no flag in force")
        bad = [(i, t) for i, t in enumerate(turns, 1) if t["followed"] is False]
        if bad:
            i, t = bad[0]
            has = "holds thinking" if t["thinking"] else "is empty"
            return self.reject(
                "flag_not_followed",
                score=float(len(bad)),
                detail=f"turn {i}: flag {t['flag']} but the think block {has}"
                + (f" (and {len(bad) - 1} more turn(s))" if len(bad) > 1 else ""),
            )
        return self.ok(score=float(len(flagged)))
