"""``contamination``: prompts that overlap an evaluation set.

n-gram overlap, as GPT-3's decontamination did: the prompt and every evaluation item are
normalized (case, punctuation and spacing dropped) and cut into tokens (Latin words, numbers,
single CJK characters); a prompt sharing any ``n``-token run with an evaluation item is rejected
(``eval_overlap``), and so is one equal to an item shorter than ``n`` tokens. ``n`` = 13 by
default: GPT-3 used 13-grams; long enough that common phrases ("what is the value of") do not
collide, short enough that a lightly edited copy of a benchmark question still does.

Evaluation sets are files given in config: JSONL or Parquet (the ``field`` column) or plain text
(one item per line).

>>> f = ContaminationFilter.from_items(["What is the smallest prime number greater than one hundred and twenty?"], n=8)
>>> f.check(Sample("x", True, prompt="Q: what is the smallest prime number greater than one hundred? Thanks")).reason
'eval_overlap'
>>> f.check(Sample("x", True, prompt="What is the largest prime below fifty?")).passed
True
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import Field

from .base import Filter, FilterConfig, Sample, Shared, Verdict, register

_TOKEN = re.compile(r"[a-z]+|\d+|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def read_items(path: str, field: str) -> list[str]:
    """The items of one evaluation file, local or at an fsspec URL (``s3://...``): the workers
    read it where the plan checked it."""
    import fsspec

    suffix = Path(path.split("?", 1)[0]).suffix
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb") as f:
            return [str(x) for x in pq.read_table(f, columns=[field]).column(field).to_pylist() if x]
    with fsspec.open(path, "r", encoding="utf-8") as f:
        lines = f.read().splitlines()
    if suffix in (".jsonl", ".json"):
        return [str(json.loads(line).get(field, "")) for line in lines if line.strip()]
    return [line for line in lines if line.strip()]


@register
class ContaminationFilter(Filter):
    name = "contamination"
    default_on = False  # needs evaluation files: a user names them and adds it to filters.order

    class Config(FilterConfig):
        eval_files: list[str] = Field(default_factory=list)
        """Evaluation sets: JSONL / Parquet (column ``field``) or text files (one item per line)."""
        field: str = "prompt"
        n: int = Field(default=13, ge=3)
        """n-gram length in tokens (GPT-3's decontamination used 13)."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> ContaminationFilter:
        return cls(settings.eval_files, settings.field, settings.n)

    @classmethod
    def validate_settings(cls, settings: Config) -> None:
        if not settings.eval_files:
            raise ValueError("contamination.eval_files: required when 'contamination' is in filters.order")

    @classmethod
    def preflight(cls, settings: Config) -> None:
        import fsspec

        for i, path in enumerate(settings.eval_files):
            fs, root = fsspec.core.url_to_fs(path)
            if not fs.exists(root):
                raise FileNotFoundError(f"filters.contamination.eval_files.{i}: nothing at {path!r}")

    def __init__(self, files: list[str], field: str = "prompt", n: int = 13):
        items: list[tuple[str, str]] = []
        for path in files:
            items += [(Path(path).name, text) for text in read_items(path, field)]
        self._build(items, n)

    @classmethod
    def from_items(cls, items: list[str], n: int = 13, name: str = "items") -> ContaminationFilter:
        self = cls.__new__(cls)
        self._build([(name, t) for t in items], n)
        return self

    def _build(self, items: list[tuple[str, str]], n: int) -> None:
        self.n = n
        self.grams: dict[tuple, str] = {}
        self.short: dict[tuple, str] = {}
        for source, text in items:
            toks = tokens(text)
            if len(toks) < n:
                self.short[tuple(toks)] = source
            for i in range(len(toks) - n + 1):
                self.grams.setdefault(tuple(toks[i : i + n]), source)

    def check(self, s: Sample) -> Verdict:
        toks = tokens(s.prompt or "")
        if tuple(toks) in self.short:
            return self.reject("eval_overlap", 1.0, f"the prompt equals an item of {self.short[tuple(toks)]}")
        hits = [
            tuple(toks[i : i + self.n])
            for i in range(len(toks) - self.n + 1)
            if tuple(toks[i : i + self.n]) in self.grams
        ]
        if hits:
            share = len(hits) / max(1, len(toks) - self.n + 1)
            return self.reject(
                "eval_overlap",
                round(share, 3),
                f"{len(hits)} shared {self.n}-gram(s) with {self.grams[hits[0]]}, e.g. {' '.join(hits[0])!r}",
            )
        return self.ok(0.0)
