"""A stand-in teacher engine for benchmarks at cluster scale: NOT a model, and never used by a job
unless passed to ``runs.generate.run(engine_factory=...)`` (``make bench``, tests).

``SimEngine`` does what matters for keeping replicas busy and nothing else: each request takes
as long as a real reasoning trace would (its length drawn from a long-tailed log-normal, seeded by
the request's own seed, capped at ``max_tokens``), while at most ``max_num_seqs`` requests run at
once per engine, as in vLLM's continuous batching; the rest wait in the engine's queue. A running
request decodes at a fixed ``tokens_per_s`` (one stream's speed; a real engine slows a little as
its batch fills). A share of requests loops (``loop_share``): it runs to ``max_tokens``, as
a real loop does unless it is stopped. Time is compressed by ``time_scale`` (a simulated second
lasts ``1 / time_scale`` s). The text it returns is short and the same for every request; the
drawn length is in it (``simulated_tokens=N``), so a benchmark can count the work afterwards.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from .engine import Completion, Params

TEXT = "<think>\nsimulated reasoning\n</think>\n\nsimulated_tokens={n} loop={loop} The answer is \\boxed{{0}}."


@dataclass(frozen=True)
class SimSpec:
    tokenizer: str                 # a tokenizer folder (the generate stage encodes its budget text with it)
    max_num_seqs: int = 64         # requests running at once per engine
    tokens_per_s: float = 30.0     # decode speed of one running request, simulated time
    median_tokens: float = 1500.0  # of the log-normal trace lengths
    sigma: float = 1.0             # its spread: 1.0 gives a p99 / median of about 10
    loop_share: float = 0.0
    time_scale: float = 1.0

    def length(self, seed: int, max_tokens: int) -> tuple[int, bool]:
        """A request's trace length in tokens, and whether it loops (deterministic per seed).

        >>> s = SimSpec("t"); s.length(1, 32768) == s.length(1, 32768)
        True
        """
        rng = random.Random(seed)
        if rng.random() < self.loop_share:
            return max_tokens, True
        return max(1, min(max_tokens, round(math.exp(rng.gauss(math.log(self.median_tokens), self.sigma))))), False

    def seconds(self, tokens: int) -> float:
        """Real seconds a request of ``tokens`` runs for."""
        return tokens / self.tokens_per_s / self.time_scale


class SimEngine:
    """``pipeline.engine.Engine`` shaped: ``tokenizer``, ``complete``, ``shutdown``."""

    def __init__(self, spec: SimSpec):
        from transformers import AutoTokenizer

        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(spec.tokenizer)
        self._running: asyncio.Semaphore | None = None

    async def complete(self, prompt_ids: list[int], params: Params, request_id: str) -> Completion:
        if self._running is None:  # made in the loop the replica runs requests on
            self._running = asyncio.Semaphore(self.spec.max_num_seqs)
        n, loop = self.spec.length(params.seed, params.max_tokens)
        async with self._running:
            await asyncio.sleep(self.spec.seconds(n))
        text = TEXT.format(n=n, loop=int(loop))
        return Completion(text, self.tokenizer.encode(text, add_special_tokens=False),
                          "length" if n >= params.max_tokens else "stop")

    def shutdown(self) -> None:
        pass


class SimFactory:
    """Picklable: each replica calls it once to make its engine."""

    def __init__(self, spec: SimSpec):
        self.spec = spec

    def __call__(self) -> SimEngine:
        return SimEngine(self.spec)
