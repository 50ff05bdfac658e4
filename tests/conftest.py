"""Shared fixtures. Engines are expensive (about 30-60 s to start on this CPU), so every
test that needs the real vLLM engine shares one per session."""

from __future__ import annotations

import os

# Set before vLLM is imported anywhere: never reach for a hub. (Every engine the tests start sizes
# its KV cache itself, so that engines fit beside each other.)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from tests.generate_runs import planted_input, runs
from tests.tiny_teacher import ARTIFACT_DIR

# the generation job's runs (session fixtures), shared by the modules that check and train on them
__all__ = ["planted_input", "runs"]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(ARTIFACT_DIR))


@pytest.fixture(scope="session")
def tiny_llm():
    """One vLLM engine (CPU build) over the committed tiny teacher, for the whole session."""
    from tests.tiny_teacher.evaluate import close_llm, load_llm

    llm = load_llm(ARTIFACT_DIR)
    yield llm
    close_llm(llm)


@pytest.fixture(scope="session")
def ray_session():
    """One embedded Ray for the session, with logical CPUs for 2 replicas plus the CPU stages
    (the job joins an already running Ray instead of starting its own)."""
    import ray

    ray.init(num_cpus=8, include_dashboard=False)
    yield
    ray.shutdown()
