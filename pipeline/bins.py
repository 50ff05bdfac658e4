"""Token-length histograms: log-spaced bins of token counts, the same for every run whatever its
size (``Tally.lengths`` counts them, the report and the comparison of two runs draw them)."""

from __future__ import annotations

#: Token-length histograms have this many bins, whatever the run's size (the last one is open).
LENGTH_BINS = 40


def length_bin(n: int) -> int:
    """The histogram bin of a token count: log-spaced, lower edges 0, 1, 2, 3, 4, 6, 8, 12, 16, ...
    (powers of 2 and 1.5 x powers of 2), so each bin is at most 50% wider than its lower edge.

    >>> [length_bin(n) for n in (0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 10**9)]
    [0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 39]
    >>> all(bin_edge(length_bin(n)) <= n < bin_edge(length_bin(n) + 1) for n in range(5000))
    True
    """
    if n < 2:
        return max(n, 0)
    k = n.bit_length() - 1
    return min(2 * k + (n >= 3 << (k - 1)), LENGTH_BINS - 1)


def bin_edge(b: int) -> int:
    """The lower edge (smallest token count) of bin ``b``.

    >>> [bin_edge(b) for b in range(10)]
    [0, 1, 2, 3, 4, 6, 8, 12, 16, 24]
    """
    if b < 2:
        return b
    k, half = divmod(b, 2)
    return 3 << (k - 1) if half else 1 << k
