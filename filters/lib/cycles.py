"""Repeats in a sequence, the repetition filter's machinery: span hashes of a text's code points
(numpy, by doubling), how often each span occurs, the longest cycle in a list of items (sentences,
lines, paragraphs), and what counts as substantive text or a letter."""

from __future__ import annotations

import numpy as np

_BASE = np.uint64(1_000_003)


def span_hashes(codes: np.ndarray, widths: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Hash of every span of each width (powers of two), by doubling: O(n log width)."""
    out, h, size, power = {}, codes, 1, _BASE
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps: that is the modulus
        while size < max(widths):
            h = h[:-size] * power + h[size:]
            power, size = power * power, size * 2
            if size in widths:
                out[size] = h
    return out


def run_lengths(h: np.ndarray) -> np.ndarray:
    """How many times each distinct span occurs (sorting, no Python loop)."""
    if not len(h):
        return np.zeros(0, dtype=np.int64)
    s = np.sort(h)
    edges = np.flatnonzero(s[1:] != s[:-1])
    return np.diff(np.concatenate(([-1], edges, [len(s) - 1])))


def longest_cycle(items: list, max_period: int) -> tuple[int, int, int] | None:
    """The longest stretch where ``items`` repeat with a period of at most ``max_period``:
    (where it starts, how many times the cycle is written, the period), or None. Linear per
    period.

    >>> longest_cycle(list("xabababy"), 3)
    (1, 3, 2)
    >>> longest_cycle(list("abcdef"), 3) is None
    True
    """
    best = None
    for p in range(1, max_period + 1):
        run = 0
        for i in range(len(items) - p):
            run = run + 1 if items[i] == items[i + p] else 0
            times = run // p + 1
            if run >= p and (best is None or times > best[1]):
                best = (i - run + 1, times, p)
    return best


def best_cycle(items: list, max_period: int, min_times: int, keep=lambda cycle: True) -> tuple[int, int, int] | None:
    """Like :func:`longest_cycle`, but only cycles written at least ``min_times`` times whose items
    pass ``keep`` (a cycle of formatting lines is not a loop).

    >>> best_cycle(list("xababab--y"), 2, 2, keep=lambda c: "-" not in c)
    (1, 3, 2)
    >>> best_cycle(list("x----y"), 2, 2, keep=lambda c: "-" not in c) is None
    True
    """
    best, n = None, len(items)
    for p in range(1, max_period + 1):
        run = 0
        for i in range(n - p + 1):
            if i < n - p and items[i] == items[i + p]:
                run += 1
                continue
            times = run // p + 1
            if (
                run >= p
                and times >= min_times
                and (best is None or times > best[1])
                and keep(items[i - run : i - run + p])
            ):
                best = (i - run, times, p)
            run = 0
    return best


def substantive(parts, min_chars: int) -> bool:
    """At least ``min_chars`` characters, a third of them letters or digits: prose or code, not a
    markdown rule or a table border.

    >>> substantive(["#" * 30], 20), substantive(["Let me check this again carefully."], 20)
    (False, True)
    """
    n = sum(len(x) for x in parts)
    return n >= min_chars and 3 * sum(c.isalnum() for x in parts for c in x) >= n


def letterish(codes: np.ndarray) -> np.ndarray:
    """Code points that are (roughly) letters: ASCII letters, and everything from Latin-1 letters up except the
    punctuation, symbol and box-drawing blocks. A cheap gate; the unit found is then checked with ``str.isalpha``."""
    c = codes.astype(np.uint32)
    return (((c | 32) - 97) < 26) | (
        (c >= 0xC0) & ((c - 0x2000) >= 0xC00) & ((c - 0x3000) >= 0x40) & ((c - 0xFF00) >= 0x21)
    )
