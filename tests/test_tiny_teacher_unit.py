"""Fast checks of the tiny teacher's artifact, template, tokenizer and data (no engine)."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from filters.lib.text import last_boxed, split_thinking
from tests.tiny_teacher import ARTIFACT_DIR, EARLY_STOP, PROMPTS_PATH
from tests.tiny_teacher.data import encode, sample_example
from tests.tiny_teacher.tasks import is_held_out, make_problem, sample_problem


def test_artifact_is_complete_and_small():
    names = {p.name for p in ARTIFACT_DIR.iterdir()}
    for required in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "README.md",
        "measurements.json",
    ):
        assert required in names, f"{required} missing from {ARTIFACT_DIR}"
    total = sum(p.stat().st_size for p in ARTIFACT_DIR.iterdir())
    assert total < 16 * 2**20, f"artifact is {total / 2**20:.1f} MiB"
    config = json.loads((ARTIFACT_DIR / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForCausalLM"]
    assert config["head_dim"] in (32, 64), "vLLM's CPU attention needs head_dim 32 or 64 here"


def test_measured_card_meets_targets():
    """The builder measured these through vLLM; the issue's targets must hold for the committed build."""
    m = json.loads((ARTIFACT_DIR / "measurements.json").read_text())
    assert m["think_accuracy"] >= 0.80
    assert m["think_accuracy"] - m["no_think_accuracy"] >= 0.20
    assert m["flags_followed"] >= 0.95
    accs = [v["accuracy"] for _, v in sorted(m["budgets"].items(), key=lambda kv: int(kv[0]))]
    assert accs[0] < m["think_accuracy"], "the smallest budget should cost accuracy"


@pytest.mark.parametrize("token", ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>"])
def test_special_tokens_are_single_tokens(tiny_tokenizer, token):
    ids = tiny_tokenizer.encode(token, add_special_tokens=False)
    assert len(ids) == 1, f"{token} encodes to {ids}"


def test_think_tags_survive_skip_special_tokens(tiny_tokenizer):
    # vLLM detokenizes with skip_special_tokens=True; Qwen3 keeps the think tags non-special.
    ids = tiny_tokenizer.encode("<think>\nx\n</think>\n\ny<|im_end|>", add_special_tokens=False)
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == "<think>\nx\n</think>\n\ny"


def test_tokenizer_round_trips_mixed_text(tiny_tokenizer):
    text = "计算 4738 加 2965 等于多少？ GPU `print(1)` $\\frac{1}{2}$ ünïcode"
    assert tiny_tokenizer.decode(tiny_tokenizer.encode(text, add_special_tokens=False)) == text


def render(tok, messages, **kw):
    return tok.apply_chat_template(messages, tokenize=False, **kw)


def test_template_generation_prompt_by_mode(tiny_tokenizer):
    msgs = [{"role": "user", "content": "What is 2 + 3?"}]
    assert (
        render(tiny_tokenizer, msgs, add_generation_prompt=True)
        == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert (
        render(tiny_tokenizer, msgs, add_generation_prompt=True, enable_thinking=False)
        == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_template_strips_thinking_from_history_only(tiny_tokenizer):
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "<think>\nold work\n</think>\n\nA1"},
        {"role": "user", "content": "Q2 /no_think"},
        {"role": "assistant", "content": "<think>\nnew work\n</think>\n\nA2"},
    ]
    assert render(tiny_tokenizer, msgs) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
        "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2 /no_think<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nnew work\n</think>\n\nA2<|im_end|>\n"
    )


def test_worked_solutions_are_correct():
    rng = random.Random(7)
    for _ in range(2000):
        p = sample_problem(rng, held_out=bool(rng.random() < 0.5))
        assert last_boxed(p.answer) == p.reference
        assert p.thinking.splitlines()[-1].endswith(f"{p.reference}。") or p.thinking.splitlines()[-1].endswith(
            f"{p.reference}."
        )
    assert make_problem("sub", (4738, 4700), "en").reference == "38"
    assert make_problem("mul", (738, 6), "zh").reference == "4428"


def test_training_examples_never_hold_out_problems():
    # the split is by problem: a held-out problem is never drawn for training
    rng = random.Random(4)
    for _ in range(2000):
        p = sample_problem(rng, held_out=False)
        assert not is_held_out(p.kind, p.operands)


def test_training_mix_covers_every_behaviour(tiny_tokenizer):
    rng = random.Random(5)
    kinds = {}
    for _ in range(600):
        ex = sample_example(rng)
        kinds[ex.kind] = kinds.get(ex.kind, 0) + 1
        ids, labels = encode(tiny_tokenizer, ex)
        assert len(ids) == len(labels) and any(lab != -100 for lab in labels)
    assert set(kinds) == {"think", "no_think_switch", "no_think_flag", "budget_cut", "multi_turn", "drill"}


def test_budget_examples_mask_the_forced_text(tiny_tokenizer):
    rng = random.Random(11)
    ex = next(e for e in (sample_example(rng) for _ in range(500)) if e.kind == "budget_cut")
    ids, labels = encode(tiny_tokenizer, ex)
    trained_text = tiny_tokenizer.decode([t for t, lab in zip(ids, labels) if lab != -100])
    assert EARLY_STOP not in trained_text
    assert EARLY_STOP in tiny_tokenizer.decode(ids)
    assert "\\boxed{" in trained_text


def test_prompt_set_is_held_out_and_well_formed():
    rows = [json.loads(line) for line in PROMPTS_PATH.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 2000
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["language"] for r in rows} == {"en", "zh"}
    for r in rows:
        assert set(r) == {"id", "prompt", "reference", "source", "language"}
        assert r["prompt"] and r["reference"] and r["source"].startswith("tiny/")


def test_prompts_disjoint_from_training_problems():
    """Re-derive each prompt's problem key from its text and check it is in the held-out bucket."""
    import re

    rows = [json.loads(line) for line in PROMPTS_PATH.read_text(encoding="utf-8").splitlines()]
    checked = 0
    for r in rows:
        kind = r["source"].split("/", 1)[1]
        if kind in ("add", "sub", "mul", "cmp"):
            a, b = map(int, re.findall(r"\d+", r["prompt"])[:2])
            assert is_held_out(kind, (a, b)), r
            checked += 1
    assert checked > len(rows) // 2


def test_split_thinking_table():
    cases = [
        ("<think>\nw\n</think>\n\nA", ("w", "A", True, True, 1)),
        ("<think>\n\n</think>\n\nA", ("", "A", True, True, 1)),
        ("<think>\nw", ("w", "", True, False, 0)),
        ("w\n</think>\n\nA", ("w", "A", False, True, 1)),
        ("<think>\na\n</think>\nb</think>\n\nA", ("a", "A", True, True, 2)),
        ("plain", ("", "plain", False, False, 0)),
    ]
    for text, want in cases:
        assert tuple(split_thinking(text)) == want, text


def test_training_is_deterministic(tmp_path, tiny_tokenizer):
    """Two builds from the same seed give byte-identical weights (a few steps suffice to show it)."""
    from tests.tiny_teacher.train import TrainConfig, train

    cfg = TrainConfig(steps=3, batch_size=4, bucket_batches=2, num_layers=1)
    digests = []
    for name in ("a", "b"):
        out = tmp_path / name
        out.mkdir()
        train(cfg, tiny_tokenizer, out, log=lambda s: None)
        digests.append(hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
