"""``format``: the sample has the shape its mode promises.

>>> f = FormatFilter()
>>> f.check(Sample("<think>\\nwork\\n</think>\\n\\n4", thinking_expected=True)).passed
True
>>> f.check(Sample("<think>\\nwork", thinking_expected=True, finish_reason="length")).reason
'truncated'
>>> f.check(Sample("<think>\\n\\n</think>\\n\\n4", thinking_expected=True)).reason
'empty_thinking'
>>> f.check(Sample("<think>\\nhmm\\n</think>\\n\\n4", thinking_expected=False)).reason
'thinking_in_no_think'

Without a finish reason (a sample from elsewhere, re-judged with ``jobs.filter``) a cut-off answer
is recognised from its text (``cut_off``): its last line stops inside a word of a sentence (or on
a Japanese particle), leaves a bracket, a bold marker or a code block open, ends on ``,`` / ``=``,
breaks off a line the answer repeats, starts a list and stops at its first letter, or ends in a
run of one symbol after its words (a degenerate ending).

>>> f.check(Sample("<think>\\nw\\n</think>\\n\\nSo the answer is \\\\boxed{\\\\dfrac", True)).reason
'cut_off'
>>> f.check(Sample("<think>\\nw\\n</think>\\n\\nLight both ends of rope A and one end of", True)).detail
"the answer's last line stops mid-sentence: 'Light both ends of rope A and one end of'"
>>> f.check(Sample("<think>\\nw\\n</think>\\n\\n**Réponse :** 120 km", True)).passed
True
"""

from __future__ import annotations

import re
import unicodedata

from .base import Filter, Sample, Verdict, register
from .lib.text import shorten

_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)
# a line that closes a sentence: punctuation, a closing bracket or quote, an emoji
_CLOSES = re.compile(r"[.!?。！？…」』）)\]】]$|[\U0001F300-\U0001FAFF\u2600-\u27BF]$")
_PAIRS = {"(": ")", "[": "]", "{": "}"}
# a Japanese clause that needs its predicate: a case particle or "の場合" ends it
_JA_OPEN = ("の場合", *"はがをにでとへや")
_KANA = re.compile(r"[\u3040-\u30ff]")
_LIST_START = re.compile(r"^1[.)]\s*[^\W\d_]$")  # "1. Д": a numbered list stops at its first letter


def _symbol_run(line: str, run: int = 4) -> bool:
    """Whether ``line`` has words and then ends in ``run`` or more copies of one symbol that is no
    letter, digit, punctuation or space ("значению ⠚⠚⠚⠚⠇⠇⠇⠇⠇")."""
    tail = line[-run:]
    return (
        len(line) > run
        and len(set(tail)) == 1
        and not tail[0].isalnum()
        and not tail[0].isspace()
        and unicodedata.category(tail[0])[0] in "SM"
        and any(ch.isalpha() for ch in line[:-run])
    )


def _breaks_off_repeated(lines: list[str], last: str) -> bool:
    """Whether ``last`` (8+ characters) is the start of a longer line the answer wrote twice or
    more before it, and is no such line itself: a cut in a run of repeated steps."""
    if len(last) < 8 or not any(ch.isalnum() for ch in last):
        return False
    longer = [x for x in (x.strip() for x in lines[:-1]) if len(x) > len(last) and x.startswith(last)]
    return len(longer) >= 2 and last not in {x.strip() for x in lines[:-1]}


def _opened_near_end(line: str, near: int = 20) -> bool:
    """Whether ``line`` leaves a bracket open that it opened in its last ``near`` characters (one
    opened far earlier and never closed is a teacher's typo, not a cut)."""
    stack = []
    for i, ch in enumerate(line):
        if ch in _PAIRS:
            stack.append((ch, i))
        elif stack and ch == _PAIRS[stack[-1][0]]:
            stack.pop()
    return bool(stack) and stack[-1][1] >= len(line) - near


def cut_off(answer: str) -> str | None:
    """Why ``answer`` looks cut off where it stands (the generation stopped mid-way), or None.

    >>> cut_off("Dima walked 5 km in 5/6 h, so v = 5 km / (5")
    "the answer's last line leaves a bracket open: 'Dima walked 5 km in 5/6 h, so v = 5 km / (5'"
    >>> cut_off("it is safer to go with")
    "the answer's last line stops mid-sentence: 'it is safer to go with'"
    >>> cut_off("Answer: 1 m 72 cm"), cut_off("The total is **60 minutes**."), cut_off("答案是 12")
    (None, None, None)
    >>> cut_off("- 6 L jug: 6 liters\\n- 12 L jug: 0\\n- 6 L jug: 6 liters\\n- 6 L jug: 6")
    "the answer's last line breaks off a line it repeats: '- 6 L jug: 6'"
    >>> cut_off("このパターンに従うと、A=8、B=11 の場合"), cut_off("答え：12個")
    ("the answer's last line stops before its predicate: 'このパターンに従うと、A=8、B=11 の場合'", None)
    """
    text = answer.rstrip()
    if not text:
        return None
    fences = list(_FENCE.finditer(text))
    if len(fences) % 2:  # a code block opened and never closed, and no sentence after it
        after = text[fences[-1].end() :].splitlines()[1:]
        if not any(_CLOSES.search(x.strip().rstrip("*_ \t")) for x in after if sum(ch.isalpha() for ch in x) > 1):
            return "the answer ends inside a code block that is never closed"
    lines = text.splitlines()
    last = lines[-1].strip()
    if _opened_near_end(last):
        return f"the answer's last line leaves a bracket open: {shorten(last[-80:])!r}"
    if last.count("**") % 2 and last.rfind("**") >= len(last) - 30:
        return f"the answer's last line leaves a bold marker open: {shorten(last[-80:])!r}"
    if last.endswith((",", "=", "+")):
        return f"the answer's last line ends on {last[-1]!r}: {shorten(last[-80:])!r}"
    if _breaks_off_repeated(lines, last):
        return f"the answer's last line breaks off a line it repeats: {shorten(last[-80:])!r}"
    if len(last) >= 8 and last.endswith(_JA_OPEN) and _KANA.search(last) and not last.startswith("#"):
        return f"the answer's last line stops before its predicate: {shorten(last[-80:])!r}"
    if _LIST_START.match(last):
        return f"the answer stops at the first letter of a list: {last!r}"
    if _symbol_run(last):
        return f"the answer ends in a run of one symbol: {shorten(last[-80:])!r}"
    # a sentence of words cut inside a word: a lower-case letter ends a line of 4+ words whose last
    # three are words (not "1 m 72 cm", "120 km": a unit after a number ends many finished answers)
    words = last.split()
    if (
        last[-1].isalpha()
        and last[-1].islower()
        and len(words) >= 4
        and "\\boxed" not in last
        and not any(ch.isdigit() for w in words[-3:] for ch in w)
    ):
        return f"the answer's last line stops mid-sentence: {shorten(last[-80:])!r}"
    return None


@register
class FormatFilter(Filter):
    """Think mode: exactly one closed, non-empty think block. No-think mode: an empty block.
    Both: no think tags (or a forced early-stop text) inside the answer, a non-empty answer, not
    cut off by the length cap."""

    name = "format"

    def check(self, s: Sample) -> Verdict:
        split = s.split
        if s.finish_reason == "repetition":  # the engine stopped a loop: the repetition filter's to judge
            return self.skip("skipped_loop_stopped", "the engine stopped the generation as a loop")
        if s.finish_reason == "length":
            where = "inside the think block" if split.opened and not split.closed else "in the answer"
            return self.reject("truncated", detail=f"generation hit max_tokens {where}")
        if split.opened and not split.closed:
            return self.reject("unclosed_think", detail="the think block is never closed")
        if not split.opened:
            return self.reject("missing_think_block", detail="the completion does not start with a think block")
        rest = s.completion.split(s.think_end, 1)[1]  # everything after the first block
        if s.think_start in rest and s.think_end in rest.split(s.think_start, 1)[1]:
            return self.reject(
                "multiple_think_blocks",
                score=float(rest.count(s.think_start) + 1),
                detail=f"{rest.count(s.think_start) + 1} think blocks; expected one",
            )
        if s.early_stop and s.early_stop in rest:
            # The budget's forced text landed after the model had closed its thinking: vLLM 0.32's
            # CPU sampler detects the end of thinking by the whole forced string, not by </think>.
            return self.reject(
                "budget_forced_in_answer",
                detail="the thinking budget's early-stop text was forced after the think block closed",
            )
        if s.think_start in rest or s.think_end in rest:
            return self.reject("think_tag_in_answer", detail="a stray think tag appears after the think block")
        if s.thinking_expected and not split.thinking.strip():
            return self.reject("empty_thinking", detail="think mode but the think block is empty")
        if not s.thinking_expected and split.thinking.strip():
            return self.reject(
                "thinking_in_no_think",
                score=float(len(split.thinking)),
                detail=f"no-think mode but the think block holds {len(split.thinking)} chars",
            )
        if not split.answer.strip():
            return self.reject("empty_answer", detail="nothing after the think block")
        if s.finish_reason is None and (why := cut_off(split.answer)):  # no engine said how it ended
            return self.reject("cut_off", detail=why)
        return self.ok()
