"""A stand-in teacher engine for benchmarks at cluster scale: NOT a model, and never used by a job
unless passed to ``runs.generate.run(engine_factory=...)`` (``make bench``, tests).

``SimEngine`` does what matters for keeping replicas busy and nothing else: each request takes
as long as a real reasoning trace would (its length drawn from a long-tailed log-normal, seeded by
the request's own seed, capped at ``max_tokens``), while at most ``max_num_seqs`` requests run at
once per engine, as in vLLM's continuous batching; the rest wait in the engine's queue. A running
request decodes at a fixed ``tokens_per_s`` (one stream's speed; a real engine slows a little as
its batch fills). A share of requests loops (``loop_share``): it runs to ``max_tokens``, as
a real loop does, unless the request asks to stop loops (``Params.stop_loops``): then it ends once
one unit has repeated that often, with ``finish_reason: repetition``. Time is compressed by
``time_scale`` (a simulated second lasts ``1 / time_scale`` s). The text it returns is short
and the same for every request; the drawn length is in it (``simulated_tokens=N``), so a
benchmark can count the work afterwards.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from pipeline.engine import Completion, Params

TEXT = "<think>\nsimulated reasoning\n</think>\n\nsimulated_tokens={n} loop={loop} The answer is \\boxed{{0}}."


@dataclass(frozen=True)
class SimSpec:
    tokenizer: str  # a tokenizer folder (the generate stage encodes its budget text with it)
    max_num_seqs: int = 64  # requests running at once per engine
    tokens_per_s: float = 30.0  # decode speed of one running request, simulated time
    median_tokens: float = 1500.0  # of the log-normal trace lengths
    sigma: float = 1.0  # its spread: 1.0 gives a p99 / median of about 10
    loop_share: float = 0.0
    time_scale: float = 1.0

    def length(self, seed: int, max_tokens: int, stop_loops: tuple[int, int, int] | None = None) -> tuple[int, bool]:
        """A request's trace length in tokens, and whether it loops (deterministic per seed). A
        loop starts where the trace would have ended and runs to ``max_tokens``, or, with
        ``stop_loops`` (min, max unit, repeats), until one unit has repeated that often.

        >>> s = SimSpec("t", loop_share=1.0); s.length(1, 32768)[0], s.length(1, 32768, (8, 64, 6))[0] < 32768
        (32768, True)
        """
        rng = random.Random(seed)
        loops = rng.random() < self.loop_share
        n = max(1, min(max_tokens, round(math.exp(rng.gauss(math.log(self.median_tokens), self.sigma)))))
        if not loops:
            return n, False
        if stop_loops is None:
            return max_tokens, True
        return min(max_tokens, n + rng.randint(stop_loops[0], stop_loops[1]) * stop_loops[2]), True

    def seconds(self, tokens: int) -> float:
        """Real seconds a request of ``tokens`` runs for."""
        return tokens / self.tokens_per_s / self.time_scale


class LightTokenizer:
    """The two calls the generate stage makes of a tokenizer, from ``tokenizer.json`` with the
    ``tokenizers`` library alone: a simulated replica stays a small process (no transformers,
    no torch), so 64 of them fit on one machine."""

    def __init__(self, folder: str):
        from tokenizers import Tokenizer

        self._tk = Tokenizer.from_file(f"{folder}/tokenizer.json")

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tk.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._tk.decode(ids, skip_special_tokens=skip_special_tokens)


class SimEngine:
    """``pipeline.engine.Engine`` shaped: ``tokenizer``, ``complete``, ``shutdown``."""

    def __init__(self, spec: SimSpec):
        self.spec = spec
        self.tokenizer = LightTokenizer(spec.tokenizer)
        self._running: asyncio.Semaphore | None = None

    async def complete(self, prompt_ids: list[int], params: Params, request_id: str) -> Completion:
        if self._running is None:  # made in the loop the replica runs requests on
            self._running = asyncio.Semaphore(self.spec.max_num_seqs)
        n, loop = self.spec.length(params.seed, params.max_tokens, params.stop_loops)
        async with self._running:
            await asyncio.sleep(self.spec.seconds(n))
        text = TEXT.format(n=n, loop=int(loop))
        finish = "length" if n >= params.max_tokens else "repetition" if loop else "stop"
        return Completion(text, self.tokenizer.encode(text, add_special_tokens=False), finish)

    def shutdown(self) -> None:
        pass


class SimFactory:
    """Picklable: each replica calls it once to make its engine."""

    def __init__(self, spec: SimSpec):
        self.spec = spec

    def __call__(self) -> SimEngine:
        return SimEngine(self.spec)
