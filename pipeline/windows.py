"""A replica's engine window: first request in, last token out, its tokens and requests, and the
spans it was busy. Parts record them, ``Tally`` adds them up per replica and per attempt."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Window:
    """One replica's window (first request in, last token out), its generated tokens and requests,
    and when it was busy (at least one request in its engine): merged spans, so a replica
    starved in the middle of a run shows, not only one that finished early.

    >>> w = Window(0, 2, 10, 1, [(0, 2)]); w.add(Window(1, 3, 5, 1, [(1, 3)])); w.add(Window(5, 6, 1, 1, [(5, 6)]))
    >>> (w.start, w.end, w.tokens, w.requests, w.busy_s, w.spans)
    (0, 6, 16, 3, 4, [(0, 3), (5, 6)])
    """

    start: float
    end: float
    tokens: int = 0
    requests: int = 0
    spans: list = field(default_factory=list)

    def add(self, other: Window) -> None:
        self.start, self.end, self.tokens = (
            min(self.start, other.start),
            max(self.end, other.end),
            self.tokens + other.tokens,
        )
        self.requests += other.requests
        self.spans = merged(self.spans + other.spans)

    @property
    def busy_s(self) -> float:
        return sum(b - a for a, b in self.spans)

    def as_list(self) -> list:
        return [self.start, self.end, self.tokens, self.requests, self.spans]

    @classmethod
    def of_list(cls, v: list) -> Window:
        return cls(v[0], v[1], v[2], v[3], [tuple(s) for s in v[4]])


def merged(spans: list) -> list:
    out: list = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
