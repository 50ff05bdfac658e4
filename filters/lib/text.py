"""Splitting a completion into its think block and its answer; the last ``\\boxed{}``.

Pure functions over text, so that every stage (parse, the filters, the tiny teacher's
evaluation, the tests) agrees on one definition. They live in ``filters`` because the filters
need them and must not depend on the pipeline; the pipeline imports them from here.

>>> split_thinking("<think>\\n2+2=4\\n</think>\\n\\nThe answer is 4.")
ThinkSplit(thinking='2+2=4', answer='The answer is 4.', opened=True, closed=True, blocks=1)
>>> split_thinking("<think>\\nstill going").closed
False
>>> split_thinking("<think>\\n\\n</think>\\n\\n42").thinking
''
"""

from __future__ import annotations

import re
from typing import NamedTuple

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


class ThinkSplit(NamedTuple):
    thinking: str  # inside the (first) think block, surrounding newlines stripped
    answer: str  # after the last closing tag (everything, if no block was opened)
    opened: bool  # a start tag was present
    closed: bool  # a closing tag followed it
    blocks: int  # number of closing tags seen (1 for a well-formed completion)


def split_thinking(text: str, start: str = "<think>", end: str = "</think>") -> ThinkSplit:
    """Split ``text`` as a Qwen3-style teacher writes it: ``<think>\\n...\\n</think>\\n\\nanswer``.

    An unclosed block (generation cut off while thinking) yields ``closed=False``,
    the partial thinking and an empty answer. A completion that closes without an
    opening tag (the prompt prefilled it, as R1-style templates do) is split at the
    closing tag.
    """
    opened = text.lstrip().startswith(start)
    blocks = text.count(end)
    if blocks == 0:
        if opened:
            return ThinkSplit(text.lstrip()[len(start) :].strip("\n"), "", True, False, 0)
        return ThinkSplit("", text, False, False, 0)
    head, _, _ = text.partition(end)
    answer = text.rpartition(end)[2]
    thinking = head.lstrip()[len(start) :] if opened else head
    return ThinkSplit(thinking.strip("\n"), answer.lstrip("\n"), opened, True, blocks)


def shorten(s: str | None, n: int = 80) -> str | None:
    """``s`` on one line, cut to ``n`` characters, for a verdict's detail.

    >>> shorten("a  b\\nc", 3), shorten(None)
    ('a b...', None)
    """
    if s is None:
        return None
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n] + "..."


def last_boxed(text: str) -> str | None:
    """Content of the last closed ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces
    balanced, or None. One pass over the text, however many boxes are left unclosed.

    >>> last_boxed(r"so \\boxed{12} or rather \\boxed{\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    >>> last_boxed(r"\\boxed{x^{2}} then \\boxed{3") , last_boxed("none")
    ('x^{2}', None)
    """
    opens = [m.end() for m in _BOXED.finditer(text)]
    if not opens:
        return None
    wanted, ends, stack = set(opens), {}, []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i + 1)
        elif ch == "}" and stack:
            start = stack.pop()
            if start in wanted:
                ends[start] = i
    closed = [o for o in opens if o in ends]
    return text[closed[-1] : ends[closed[-1]]] if closed else None
