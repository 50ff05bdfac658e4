"""``repetition``: degenerate loops in the thinking or the answer.

A loop is the same text over and over *in a row* (a model stuck), not the same phrase coming
back with other work between (a conclusion restated after each check, "so not prime." closing
each case of an enumeration). Seven detectors, each its own reason, checked on the thinking and
on the answer separately:

- ``repeated_paragraph``: one paragraph, or a cycle of two, written ``max_paragraph_repeats``
  times in a row (or ``max_scattered_repeats`` times anywhere);
- ``repeated_sentence``: one sentence, or a cycle of up to ``max_cycle_sentences``, written
  ``max_sentence_repeats`` times in a row (or ``max_scattered_repeats`` times anywhere). Every
  paragraph/sentence keeps its place in the sequence (a short line between two copies breaks
  the run), and a cycle counts only with ``min_paragraph_chars`` / ``min_sentence_chars``
  letters or digits in it: a markdown rule (``#####``, ``---``) written on several lines is
  formatting, not a loop;
- ``repeated_block``: the same ``block_lines`` consecutive lines (a step list, a schedule) written
  ``max_block_repeats`` times anywhere - a recount re-listed with varied interjections between
  the copies, which no sentence or span in a row shows;
- ``repeated_ngram``: one span of ``span_chars`` characters (about a dozen words, or a long
  CJK phrase; characters, so it needs no tokenizer and no word boundaries) occurring
  ``max_ngram_repeats`` times, the repeated spans covering ``min_ngram_coverage`` of the text;
- ``looping_region``: a stretch of ``region_chars`` where nearly every ``span_chars`` span comes
  back at least twice more within ``region_chars`` - a cycle with a long period or small
  variations between the copies (a word list that keeps cycling, a recount reworded slightly);
- ``tandem_repeat``: a unit of up to ``max_unit_chars`` characters with letters in it written
  back to back over ``min_tandem_chars`` (an alphabet or a word cycling inside code or prose;
  not a unit of letters alone, which is a data string written out, a test input "abab...");
- ``low_compression_tail``: the end of the text compresses (zlib) below
  ``min_compression_ratio`` of its size - what a model stuck in a loop writes until it hits the
  length cap.

Calibration: legitimate structured reasoning repeats a *template* with different numbers in it
(twelve cases, a table of values); every detector keys on exact repeats of long spans, which a
template with changing values does not produce. Tests hold both kinds.

Speed: span counts use a vectorised rolling hash over code points (numpy), sentence and paragraph counts only run
when some short span repeats often enough for them to fire, the tandem search compares span hashes at a stride.

>>> f = RepetitionFilter()
>>> f.check(Sample("<think>\\n" + "Let me check this again carefully. " * 12 + "\\n</think>\\n\\n4", True)).reason
'repeated_sentence'
>>> cases = " ".join(f"Case {i}: {i}*{i} = {i*i}." for i in range(12))
>>> f.check(Sample("<think>\\n" + cases + "\\n</think>\\n\\n4", True)).passed
True
>>> f.check(Sample("<think>\\nwork\\n</think>\\n\\n" + "#" * 30 + "\\n" + ("#" * 30 + "\\n") * 5 + "4", True)).passed
True
>>> code = "".join(f"print(x)\\nx += {i}\\n" for i in range(6))  # a repeated line with other lines between
>>> f.check(Sample("<think>\\nwork\\n</think>\\n\\n" + code, True)).passed
True
>>> steps = "1. A and B cross (3).\\n2. A returns (1).\\n3. C and D cross (10).\\n4. B returns (3).\\n"
>>> tries = "".join(f"Try {i}: hmm.\\n" + steps for i in range(12))
>>> f.check(Sample("<think>\\n" + tries + "</think>\\n\\n17", True)).reason
'repeated_block'
>>> f.check(Sample("<think>\\nThe words: " + "a b c d e f g h " * 14 + "end.\\n</think>\\n\\n4", True)).reason
'tandem_repeat'
>>> f.check(Sample("<think>\\nTest input: " + "abcab" * 60 + "\\n</think>\\n\\n4", True)).passed
True
>>> prefix = " ".join(f"Step {k}: {k} squared is {k * k}, cubed {k ** 3}." for k in range(300))
>>> words = " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(60))  # ~450 chars, no sentence
>>> f.check(Sample("<think>\\n" + prefix + " " + (words + " ") * 5 + "\\n</think>\\n\\n4", True)).reason
'looping_region'
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from typing import Literal

import numpy as np
from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register
from .lib.cycles import best_cycle, letterish, run_lengths, span_hashes, substantive

_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*|\n+")


def _most_repeated(text: str, h: np.ndarray) -> str:
    values, first, counts = np.unique(h, return_index=True, return_counts=True)
    at = int(first[np.argmax(counts)])
    return text[at : at + 64]


def _short(s: str, n: int = 80) -> str:
    s = s.replace("\n", "\\n")
    return s if len(s) <= n else s[:n] + "..."


@register
class RepetitionFilter(Filter):
    name = "repetition"

    class Config(FilterConfig):
        max_paragraph_repeats: int = Field(default=4, ge=2)
        """A paragraph (or a cycle of two) written this many times in a row is a loop; three times
        is a model restating (a retry that gives up and starts over twice)."""
        min_paragraph_chars: int = Field(default=50, ge=1)
        max_sentence_repeats: int = Field(default=4, ge=2)
        """A sentence, or a cycle of up to ``max_cycle_sentences`` sentences, written this many
        times in a row is a loop."""
        max_cycle_sentences: int = Field(default=4, ge=1)
        max_scattered_repeats: int = Field(default=40, ge=2)
        """The same sentence or paragraph this many times anywhere, with other text between, is a
        loop too; fewer is structure (a long trace restates its conclusion, or the step it is
        checking, a few dozen times)."""
        min_sentence_chars: int = Field(default=20, ge=1)
        block_lines: int = Field(default=4, ge=2)
        max_block_repeats: int = Field(default=10, ge=2)
        """The same ``block_lines`` consecutive non-empty lines (with ``min_block_chars`` letters
        or digits) written this many times anywhere is a loop: a list re-listed over and over."""
        min_block_chars: int = Field(default=30, ge=1)
        span_chars: Literal[32, 64, 128] = 64
        """Length of the character spans counted by the ``repeated_ngram`` detector."""
        max_ngram_repeats: int = Field(default=6, ge=2)
        min_ngram_coverage: float = Field(default=0.2, gt=0, le=1)
        """Share of the text covered by spans repeated ``max_ngram_repeats`` times or more."""
        region_chars: int = Field(default=2000, ge=200)
        min_region_coverage: float = Field(default=0.9, gt=0, le=1)
        """A stretch of ``region_chars`` where this share of the spans recur twice more within
        ``2 * region_chars`` is a loop (``looping_region``)."""
        max_unit_chars: int = Field(default=64, ge=1, le=256)
        min_tandem_chars: int = Field(default=200, ge=32)
        """A unit of up to ``max_unit_chars`` (with letters in it) written back to back, at least
        four times, over this many characters is a loop (``tandem_repeat``)."""
        window_chars: int = Field(default=1000, ge=100)
        tail_chars: int = Field(default=2000, ge=100)
        """The windows checked for ``low_compression_tail``: those in the last ``tail_chars``."""
        min_compression_ratio: float = Field(default=0.1, gt=0, lt=1)
        """A tail window whose zlib size is below this share of its size is a loop."""

    def __init__(self, settings: Config | None = None):
        self.s = settings or self.Config()

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> RepetitionFilter:
        return cls(settings)

    def check(self, sample: Sample) -> Verdict:
        if sample.finish_reason == "repetition":  # generation.stop_loops: the engine saw it loop and stopped it
            where = "thinking" if sample.split.opened and not sample.split.closed else "answer"
            return self.reject(
                "loop_stopped",
                detail=f"{where}: the engine stopped the generation when its tail "
                f"repeated itself (generation.stop_loops)",
            )
        for where, text in (("thinking", sample.thinking), ("answer", sample.answer)):
            v = self._check_text(text, where)
            if v is not None:
                return v
        return self.ok()

    def _check_text(self, text: str, where: str) -> Verdict | None:
        s = self.s
        # every paragraph keeps its place: dropping the short ones would make copies with a short
        # line between them look adjacent
        paras = [" ".join(p.split()).lower() for p in re.split(r"\n\s*\n", text) if p.strip()]
        keep_p = lambda c: substantive(c, s.min_paragraph_chars)  # noqa: E731 - a one-line predicate
        if paras and (loop := best_cycle(paras, 2, s.max_paragraph_repeats, keep_p)):
            return self.reject(
                "repeated_paragraph",
                float(loop[1]),
                f"{where}: paragraph x{loop[1]} in a row: {_short(paras[loop[0]])!r}",
            )
        if (v := self._scattered(paras, s.min_paragraph_chars, "repeated_paragraph", "paragraph", where)) is not None:
            return v
        if (v := self._blocks(text, where)) is not None:
            return v

        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        w = s.span_chars
        if len(codes) > w:
            hashes = span_hashes(codes, (16, w))
            # every copy of a repeated sentence or span repeats its first 16 chars: if no 16-char
            # span repeats often enough, neither detector can fire and the costlier counts are skipped
            top16 = int(run_lengths(hashes[16]).max())
            if top16 >= s.max_sentence_repeats:
                sents = [" ".join(x.split()).lower() for x in _SENTENCE.split(text) if x.strip()]
                keep_s = lambda c: substantive(c, s.min_sentence_chars)  # noqa: E731 - as keep_p
                loop = best_cycle(sents, s.max_cycle_sentences, s.max_sentence_repeats, keep_s)
                if loop:
                    at, times, period = loop
                    what = "sentence" if period == 1 else f"cycle of {period} sentences"
                    return self.reject(
                        "repeated_sentence", float(times), f"{where}: {what} x{times} in a row: {_short(sents[at])!r}"
                    )
                v = self._scattered(sents, s.min_sentence_chars, "repeated_sentence", "sentence", where)
                if v is not None:
                    return v
            ngram = top16 >= s.max_ngram_repeats and len(codes) >= w * s.max_ngram_repeats
            region = top16 >= 3 and len(codes) >= w + s.region_chars
            if ngram or region:
                # sort (span hash, position) once: counts per span, and how close its copies are
                n = len(hashes[w])
                bits = np.uint64(max(18, n.bit_length()))
                key = np.sort((hashes[w] >> bits << bits) | np.arange(n, dtype=np.uint64))
                group, pos = key >> bits, (key & ((np.uint64(1) << bits) - np.uint64(1))).astype(np.int64)
            if ngram:
                edges = np.flatnonzero(group[1:] != group[:-1])
                runs = np.diff(np.concatenate(([-1], edges, [n - 1])))
                top = int(runs.max())
                coverage = float(runs[runs >= s.max_ngram_repeats].sum()) / n
                if top >= s.max_ngram_repeats and coverage >= s.min_ngram_coverage:
                    span = _most_repeated(text, hashes[w])
                    return self.reject(
                        "repeated_ngram",
                        round(coverage, 3),
                        f"{where}: a {w}-char span x{top}, repeats cover {coverage:.0%} of "
                        f"{len(codes)} chars: {_short(span)!r}",
                    )
        else:
            hashes, region = None, False

        tail = text[-s.tail_chars :]
        if len(tail) >= s.window_chars:
            worst, at = 1.0, 0
            for i in range(0, len(tail) - s.window_chars + 1, s.window_chars // 2):
                b = tail[i : i + s.window_chars].encode("utf-8")
                r = len(zlib.compress(b, 6)) / len(b)
                if r < worst:
                    worst, at = r, i
            if worst < s.min_compression_ratio:
                return self.reject(
                    "low_compression_tail",
                    round(worst, 4),
                    f"{where}: a {s.window_chars}-char window of the tail compresses to {worst:.1%}: "
                    f"{_short(tail[at : at + 120])!r}",
                )
        if region:
            # a span whose copy two further on is within 2 * region_chars is part of a cycle
            near = np.flatnonzero((group[2:] == group[:-2]) & (pos[2:] - pos[:-2] <= 2 * s.region_chars))
            if len(near):
                mark = np.zeros(n, dtype=np.int32)
                mark[pos[near]] = mark[pos[near + 1]] = mark[pos[near + 2]] = 1
                cum = np.concatenate(([0], np.cumsum(mark)))
                dens = (cum[s.region_chars :] - cum[: -s.region_chars]) / s.region_chars
                at = int(np.argmax(dens))
                if dens[at] >= s.min_region_coverage:
                    return self.reject(
                        "looping_region",
                        round(float(dens[at]), 3),
                        f"{where}: {dens[at]:.0%} of a {s.region_chars}-char stretch recurs "
                        f"within {2 * s.region_chars} chars: {_short(text[at : at + 120])!r}",
                    )
        if hashes is not None:
            return self._tandem(text, codes, hashes[16], where)
        return None

    def _scattered(self, items: list[str], min_chars: int, reason: str, what: str, where: str) -> Verdict | None:
        for x, times in Counter(items).most_common():
            if times < self.s.max_scattered_repeats:
                break
            if substantive((x,), min_chars):
                return self.reject(reason, float(times), f"{where}: {what} x{times}: {_short(x)!r}")
        return None

    def _blocks(self, text: str, where: str) -> Verdict | None:
        s, k = self.s, self.s.block_lines
        lines = [x for x in (line.strip() for line in text.lower().split("\n")) if x]
        if len(lines) < k * s.max_block_repeats:
            return None
        counts = Counter(zip(*(lines[i:] for i in range(k))))
        for block, times in counts.most_common():
            if times < s.max_block_repeats:
                break
            if sum(c.isalnum() for x in block for c in x) >= s.min_block_chars:
                return self.reject(
                    "repeated_block",
                    float(times),
                    f"{where}: a block of {k} lines x{times}: {_short(' / '.join(block))!r}",
                )
        return None

    def _tandem(self, text: str, codes: np.ndarray, h16: np.ndarray, where: str) -> Verdict | None:
        """A unit of up to ``max_unit_chars`` written back to back over ``min_tandem_chars``. Gate:
        such a run makes ``h16[i] == h16[i + p]`` over more than ``stride`` positions, so comparing
        every ``stride``-th hash finds it; only the periods hit there (with letters at the hit) get
        the exact, per-character comparison."""
        s, stride = self.s, 32
        if len(codes) < s.min_tandem_chars:
            return None
        starts = np.arange(0, len(h16) - s.max_unit_chars, stride)
        if not len(starts):
            return None
        # same[k, p - 1]: the 16 chars at starts[k] come back p chars later
        same = h16[starts[:, None] + np.arange(1, s.max_unit_chars + 1)] == h16[starts][:, None]
        letters = None
        for p in np.flatnonzero(same.any(axis=0)) + 1:
            p = int(p)
            hits = starts[same[:, p - 1]]
            if letters is None:
                letters = np.concatenate(([0], np.cumsum(letterish(codes))))
            if not np.any(letters[hits + 16] - letters[hits] >= 2):
                continue
            eq = np.concatenate(([0], (codes[:-p] == codes[p:]).view(np.int8), [0]))
            d = np.diff(eq)
            st, en = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
            for j in np.flatnonzero(en - st + p >= max(s.min_tandem_chars, 4 * p)):
                unit = text[st[j] : st[j] + p]
                # a unit of letters alone is a data string written out (a test input "abab...", a
                # DNA sequence), not a loop: loops in prose or code carry spaces or punctuation
                if sum(c.isalpha() for c in unit) >= 2 and not unit.isalnum():
                    times = (en[j] - st[j] + p) // p
                    return self.reject(
                        "tandem_repeat",
                        float(times),
                        f"{where}: a {p}-char unit x{times} back to back: {_short(text[st[j] : st[j] + 120])!r}",
                    )
        return None
