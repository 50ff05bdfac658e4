"""Deterministic identities: prompt ids, sample ids and per-sample seeds.

All are pure functions of their inputs (SHA-256 over a canonical JSON encoding), so two runs
with the same config and input give the same ids, on any machine, in any order.

>>> content_prompt_id([{"role": "user", "content": "1+1?"}]) == content_prompt_id([{"content": "1+1?", "role": "user"}])
True
>>> content_prompt_id([{"role": "user", "content": "1+1?"}])
'h-cc65b384f235935dd378e28b'
>>> sample_seed(0, "p1", "think", 0) != sample_seed(0, "p1", "think", 1)
True
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _digest(obj: Any, n: int = 24) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


def content_prompt_id(messages: list[dict]) -> str:
    """Id of a prompt without a given id: a hash of its conversation (system turn included)."""
    return "h-" + _digest([{"role": m["role"], "content": m["content"]} for m in messages])


def fingerprint(obj: Any) -> str:
    """Short hash of anything JSON-encodable (the generation settings of a mode)."""
    return _digest(obj, 16)


def sample_id(
    prompt_id: str,
    mode: str,
    budget: int | None,
    index: int,
    generation_fp: str,
    min_thinking: int | None = None,
    effort: str | None = None,
) -> str:
    """One sample: which prompt, mode, budget (and thinking minimum, when forced, and reasoning
    effort, when set) and draw, under which generation settings."""
    return _digest(
        [prompt_id, mode, budget, index, generation_fp]
        + ([min_thinking] if min_thinking else [])
        + ([f"effort={effort}"] if effort else [])
    )


def sample_seed(base_seed: int, prompt_id: str, mode: str, index: int) -> int:
    """Per-draw sampling seed (31 bits), independent of batching and replica. Not of the budget
    either: in a sweep, draw ``index`` of a prompt is the same draw at every budget."""
    return int(_digest([base_seed, prompt_id, mode, index], 8), 16) & 0x7FFFFFFF


def draw(*key: Any) -> float:
    """A uniform number in [0, 1) fixed by ``key``: per-prompt and per-sample choices (which mode
    of a mix, whether a sample carries a flag) that are the same in every run and on every worker.

    >>> draw(0, "p1", "mix") == draw(0, "p1", "mix"), 0 <= draw(0, "p1", "mix") < 1
    (True, True)
    """
    return int(_digest(list(key), 13), 16) / 16**13
