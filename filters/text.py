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

_BOXED = re.compile(r"\\boxed\{")


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
            return ThinkSplit(text.lstrip()[len(start):].strip("\n"), "", True, False, 0)
        return ThinkSplit("", text, False, False, 0)
    head, _, _ = text.partition(end)
    answer = text.rpartition(end)[2]
    thinking = head.lstrip()[len(start):] if opened else head
    return ThinkSplit(thinking.strip("\n"), answer.lstrip("\n"), opened, True, blocks)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None.

    >>> last_boxed(r"so \\boxed{12} or rather \\boxed{\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    """
    found = None
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found = text[m.end(): i - 1]
    return found
