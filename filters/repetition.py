"""``repetition``: degenerate loops in the thinking or the answer.

A loop is the same text over and over *in a row* (a model stuck), not the same phrase coming
back with other work between (a conclusion restated after each check, "so not prime." closing
each case of an enumeration). Four detectors, each its own reason, checked on the thinking and on
the answer separately:

- ``repeated_paragraph``: one paragraph (>= 50 chars), or a cycle of two, written
  ``max_paragraph_repeats`` times in a row (or ``max_scattered_repeats`` times anywhere);
- ``repeated_sentence``: one sentence (>= 20 chars), or a cycle of up to ``max_cycle_sentences``,
  written ``max_sentence_repeats`` times in a row (or ``max_scattered_repeats`` times anywhere);
- ``repeated_ngram``: one span of ``span_chars`` characters (about a dozen words, or a long
  CJK phrase; characters, so it needs no tokenizer and no word boundaries) occurring
  ``max_ngram_repeats`` times, the repeated spans covering ``min_ngram_coverage`` of the text;
- ``low_compression_tail``: a window of the tail compresses (zlib) below ``min_compression_ratio``
  of its size - what a model stuck in a loop writes before it hits the length cap.

Calibration: legitimate structured reasoning repeats a *template* with different numbers in it
(twelve cases, a table of values); every detector keys on exact repeats of long spans, which a
template with changing values does not produce. Tests hold both kinds.

Speed: span counts use a vectorised rolling hash over code points (numpy), and the sentence and
paragraph counts only run when some short span repeats often enough for them to fire.

>>> f = RepetitionFilter()
>>> f.check(Sample("<think>\\n" + "Let me check this again carefully. " * 12 + "\\n</think>\\n\\n4", True)).reason
'repeated_sentence'
>>> f.check(Sample("<think>\\n" + " ".join(f"Case {i}: {i}*{i} = {i*i}." for i in range(12)) + "\\n</think>\\n\\n4", True)).passed
True
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from typing import Literal

import numpy as np

from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register

_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*|\n+")


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


def _most_repeated(text: str, h: np.ndarray) -> str:
    values, first, counts = np.unique(h, return_index=True, return_counts=True)
    at = int(first[np.argmax(counts)])
    return text[at:at + 64]


def _short(s: str, n: int = 80) -> str:
    s = s.replace("\n", "\\n")
    return s if len(s) <= n else s[:n] + "..."


@register
class RepetitionFilter(Filter):
    name = "repetition"

    class Config(FilterConfig):
        max_paragraph_repeats: int = Field(default=3, ge=2)
        """A paragraph (or a cycle of two) written this many times in a row is a loop."""
        min_paragraph_chars: int = Field(default=50, ge=1)
        max_sentence_repeats: int = Field(default=4, ge=2)
        """A sentence, or a cycle of up to ``max_cycle_sentences`` sentences, written this many
        times in a row is a loop."""
        max_cycle_sentences: int = Field(default=4, ge=1)
        max_scattered_repeats: int = Field(default=20, ge=2)
        """The same sentence or paragraph this many times anywhere, with other text between, is a
        loop too; fewer is structure ("therefore, the answer is 13." restated through a long trace)."""
        min_sentence_chars: int = Field(default=20, ge=1)
        span_chars: Literal[32, 64, 128] = 64
        """Length of the character spans counted by the ``repeated_ngram`` detector."""
        max_ngram_repeats: int = Field(default=6, ge=2)
        min_ngram_coverage: float = Field(default=0.2, gt=0, le=1)
        """Share of the text covered by spans repeated ``max_ngram_repeats`` times or more."""
        window_chars: int = Field(default=1000, ge=100)
        tail_chars: int = Field(default=8000, ge=100)
        min_compression_ratio: float = Field(default=0.1, gt=0, lt=1)
        """A tail window whose zlib size is below this share of its size is a loop."""

    def __init__(self, settings: Config | None = None):
        self.s = settings or self.Config()

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> "RepetitionFilter":
        return cls(settings)

    def check(self, sample: Sample) -> Verdict:
        if sample.finish_reason == "repetition":  # generation.stop_loops: the engine saw it loop and stopped it
            where = "thinking" if sample.split.opened and not sample.split.closed else "answer"
            return self.reject("loop_stopped", detail=f"{where}: the engine stopped the generation when its tail "
                                                      f"repeated itself (generation.stop_loops)")
        for where, text in (("thinking", sample.thinking), ("answer", sample.answer)):
            v = self._check_text(text, where)
            if v is not None:
                return v
        return self.ok()

    def _check_text(self, text: str, where: str) -> Verdict | None:
        s = self.s
        paras = [" ".join(p.split()).lower() for p in re.split(r"\n\s*\n", text) if len(p.strip()) >= s.min_paragraph_chars]
        if paras and (loop := longest_cycle(paras, 2)) and loop[1] >= s.max_paragraph_repeats:
            return self.reject("repeated_paragraph", float(loop[1]), f"{where}: paragraph x{loop[1]} in a row: "
                                                                      f"{_short(paras[loop[0]])!r}")
        if paras and (top := Counter(paras).most_common(1)[0])[1] >= s.max_scattered_repeats:
            return self.reject("repeated_paragraph", float(top[1]), f"{where}: paragraph x{top[1]}: {_short(top[0])!r}")

        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        w = s.span_chars
        if len(codes) > w:
            hashes = span_hashes(codes, (16, w))
            # every copy of a repeated sentence or span repeats its first 16 chars: if no 16-char
            # span repeats often enough, neither detector can fire and the costlier counts are skipped
            top16 = int(run_lengths(hashes[16]).max())
            if top16 >= s.max_sentence_repeats:
                sents = [" ".join(x.split()).lower() for x in _SENTENCE.split(text) if len(x.strip()) >= s.min_sentence_chars]
                loop = longest_cycle(sents, s.max_cycle_sentences)
                if loop and loop[1] >= s.max_sentence_repeats:
                    at, times, period = loop
                    what = "sentence" if period == 1 else f"cycle of {period} sentences"
                    return self.reject("repeated_sentence", float(times),
                                       f"{where}: {what} x{times} in a row: {_short(sents[at])!r}")
                if sents and (top := Counter(sents).most_common(1)[0])[1] >= s.max_scattered_repeats:
                    return self.reject("repeated_sentence", float(top[1]),
                                       f"{where}: sentence x{top[1]}: {_short(top[0])!r}")
            if top16 >= s.max_ngram_repeats and len(codes) >= w * s.max_ngram_repeats:
                runs = run_lengths(hashes[w])
                top = int(runs.max())
                coverage = float(runs[runs >= s.max_ngram_repeats].sum()) / len(hashes[w])
                if top >= s.max_ngram_repeats and coverage >= s.min_ngram_coverage:
                    span = _most_repeated(text, hashes[w])
                    return self.reject("repeated_ngram", round(coverage, 3),
                                       f"{where}: a {w}-char span x{top}, repeats cover {coverage:.0%} of "
                                       f"{len(codes)} chars: {_short(span)!r}")

        tail = text[-s.tail_chars:]
        if len(tail) >= s.window_chars:
            worst, at = 1.0, 0
            for i in range(0, len(tail) - s.window_chars + 1, s.window_chars // 2):
                b = tail[i:i + s.window_chars].encode("utf-8")
                r = len(zlib.compress(b, 6)) / len(b)
                if r < worst:
                    worst, at = r, i
            if worst < s.min_compression_ratio:
                return self.reject("low_compression_tail", round(worst, 4),
                                   f"{where}: a {s.window_chars}-char window of the tail compresses to {worst:.1%}: "
                                   f"{_short(tail[at:at + 120])!r}")
        return None
