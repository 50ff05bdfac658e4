"""TRL's real ``SFTTrainer`` trains the tiny teacher on a run's ``accepted/`` set as loaded, in both of
TRL's conversational formats: prompt-completion (the ``prompt`` / ``completion`` columns; TRL takes
the loss on the completion only by default) and ``messages`` with ``assistant_only_loss`` (the tiny
teacher's template marks the assistant's tokens with ``{% generation %}``). The runs are the
session's (``tests/generate_runs.py``)."""

from __future__ import annotations

import math

import pytest

from tests.tiny_teacher import ARTIFACT_DIR

pytestmark = pytest.mark.engine

END = "<|im_end|>"


def accepted(runs):
    import datasets

    return datasets.load_dataset("parquet", data_dir=str(runs["out"] / "a" / "accepted"), split="train")


def train(dataset, out, **config):
    """A few optimizer steps; returns the trainer, its tokenizer and how far the weights moved."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(str(ARTIFACT_DIR))
    model = AutoModelForCausalLM.from_pretrained(str(ARTIFACT_DIR), dtype=torch.float32)
    before = [p.detach().clone() for p in model.parameters()]
    args = SFTConfig(
        output_dir=str(out),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        **config,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    moved = sum(float((p.detach() - b).abs().sum()) for p, b in zip(model.parameters(), before))
    return trainer, tokenizer, moved


def trained_text(tokenizer, example) -> str:
    """The tokens of a prepared example the loss covers (TRL turns its masks into ``labels``,
    -100 where no loss is taken)."""
    assert all(label in (-100, t) for t, label in zip(example["input_ids"], example["labels"]))
    return tokenizer.decode([t for t, label in zip(example["input_ids"], example["labels"]) if label != -100])


def losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def test_the_accepted_set_trains_as_prompt_completion_with_the_loss_on_the_teachers_turn_only(runs, tmp_path):
    data = accepted(runs)
    assert {"prompt", "completion"} <= set(data.column_names)
    trainer, tokenizer, moved = train(data, tmp_path)  # as loaded: every other column too
    assert trainer.completion_only_loss
    got = losses(trainer)
    assert len(got) == 3 and all(math.isfinite(x) for x in got) and moved > 0
    # the tokens the loss covers are exactly the teacher's turn (and its end-of-turn token)
    by_id = {r["sample_id"]: r for r in data}
    assert len(trainer.train_dataset) == len(data)  # none dropped as fully masked
    for example in trainer.train_dataset:
        row = by_id[example["sample_id"]]
        assert trained_text(tokenizer, example) == row["completion"][0]["content"] + END + "\n"
        assert row["messages"][-1] == row["completion"][0]


def test_the_messages_column_trains_with_assistant_only_loss(runs, tmp_path):
    data = accepted(runs).select_columns(["messages"])
    trainer, tokenizer, moved = train(data, tmp_path, assistant_only_loss=True)
    got = losses(trainer)
    assert len(got) == 3 and all(math.isfinite(x) for x in got) and moved > 0
    assert len(trainer.train_dataset) == len(data)
    for example, row in zip(trainer.train_dataset, data):
        # the last (trained) assistant turn keeps its think block; the prompt is not in the loss
        assert trained_text(tokenizer, example) == row["messages"][-1]["content"] + END
