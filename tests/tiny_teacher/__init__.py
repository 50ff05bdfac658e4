"""The tiny teacher: a Qwen3-architecture hybrid reasoning model trained in this repo.

It exists so that every stage of thinkmill can be exercised against a *real*
teacher served by the real vLLM engine on a CPU-only machine. It thinks step by
step in ``<think>`` blocks, answers in ``\\boxed{}``, follows ``/think`` and
``/no_think`` flags, answers after Qwen3's early-stop sentence, and is measurably
more accurate when it thinks. Rebuild with ``make teacher`` (``python -m tests.tiny_teacher.build``).
"""

from pathlib import Path

from pipeline.dialects import EARLY_STOP  # the sentence the teacher answers after a budget cut

__all__ = ["ARTIFACT_DIR", "EARLY_STOP", "PROMPTS_PATH"]

#: Where the committed artifact (weights, tokenizer, card) lives.
ARTIFACT_DIR = Path(__file__).resolve().parent / "model"
#: The demo / test prompt set written by the builder (held out from training).
PROMPTS_PATH = Path(__file__).resolve().parent / "prompts.jsonl"
