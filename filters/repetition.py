"""``repetition``: degenerate loops in the thinking or the answer.

Four detectors, each its own reason, checked on the thinking and on the answer separately:

- ``repeated_paragraph``: one paragraph (>= 50 chars) written ``max_paragraph_repeats`` times;
- ``repeated_sentence``: one sentence (>= 20 chars) written ``max_sentence_repeats`` times;
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
        min_paragraph_chars: int = Field(default=50, ge=1)
        max_sentence_repeats: int = Field(default=5, ge=2)
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
        for where, text in (("thinking", sample.thinking), ("answer", sample.answer)):
            v = self._check_text(text, where)
            if v is not None:
                return v
        return self.ok()

    def _check_text(self, text: str, where: str) -> Verdict | None:
        s = self.s
        paras = Counter(p.strip() for p in re.split(r"\n\s*\n", text) if len(p.strip()) >= s.min_paragraph_chars)
        if paras and (top := paras.most_common(1)[0])[1] >= s.max_paragraph_repeats:
            return self.reject("repeated_paragraph", float(top[1]), f"{where}: paragraph x{top[1]}: {_short(top[0])!r}")

        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        w = s.span_chars
        if len(codes) > w:
            hashes = span_hashes(codes, (16, w))
            # every copy of a repeated sentence or span repeats its first 16 chars: if no 16-char
            # span repeats often enough, neither detector can fire and the costlier counts are skipped
            top16 = int(run_lengths(hashes[16]).max())
            if top16 >= s.max_sentence_repeats:
                sents = Counter(" ".join(x.split()).lower() for x in _SENTENCE.split(text)
                                if len(x.strip()) >= s.min_sentence_chars)
                if sents and (top := sents.most_common(1)[0])[1] >= s.max_sentence_repeats:
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
