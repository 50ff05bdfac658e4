"""Dialects: rendering byte-exact per dialect and mode, completion reconstruction, flags."""

from __future__ import annotations

import pytest

from pipeline.dialects import EARLY_STOP, get_dialect

Q = [{"role": "user", "content": "What is 2+3?"}]


def test_unknown_dialect_names_the_choices():
    with pytest.raises(ValueError, match=r"dialect must be one of \['gpt-oss', 'qwen3', 'r1'\], got 'llama'"):
        get_dialect("llama")


def test_qwen3_style_render_by_mode(tiny_tokenizer):
    d = get_dialect("qwen3")  # the tiny teacher's template is Qwen3's format
    base = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    assert d.render(tiny_tokenizer, Q, thinking=True) == base
    assert d.render(tiny_tokenizer, Q, thinking=False) == base + "<think>\n\n</think>\n\n"
    assert d.prefill(base) == ""
    assert d.prefill(base + "<think>\n\n</think>\n\n") == "<think>\n\n</think>\n\n"


class R1StyleTokenizer:
    """The shape of DeepSeek-R1's template: no thinking switch, the prompt opens the think block."""

    def apply_chat_template(self, messages, tokenize, add_generation_prompt, **kw):
        text = "".join(f"<｜{m['role'].capitalize()}｜>{m['content']}" for m in messages)
        return text + ("<｜Assistant｜><think>\n" if add_generation_prompt else "")


def test_r1_no_think_prefills_an_empty_block():
    d = get_dialect("r1")
    tok = R1StyleTokenizer()
    assert d.render(tok, Q, thinking=True) == "<｜User｜>What is 2+3?<｜Assistant｜><think>\n"
    nt = d.render(tok, Q, thinking=False)
    assert nt == "<｜User｜>What is 2+3?<｜Assistant｜><think>\n\n</think>\n\n"
    # the teacher's turn is reconstructed with the prefill in front of what it generated
    assert d.completion(d.render(tok, Q, True), "work\n</think>\n\n5") == "<think>\nwork\n</think>\n\n5"
    assert d.completion(nt, "5") == "<think>\n\n</think>\n\n5"


@pytest.mark.parametrize(
    "turn, expect",
    [
        ("user", [{"role": "system", "content": "S"}, {"role": "user", "content": "Q /no_think"}]),
        ("system", [{"role": "system", "content": "S /no_think"}, {"role": "user", "content": "Q"}]),
    ],
)
def test_flags_go_to_the_named_turn(turn, expect):
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert get_dialect("qwen3").with_flag(msgs, "/no_think", turn) == expect
    assert msgs[1]["content"] == "Q", "the input conversation is not mutated"


def test_system_flag_without_system_turn_adds_one():
    out = get_dialect("qwen3").with_flag(Q, "/think", "system")
    assert out[0] == {"role": "system", "content": "/think"} and out[1:] == Q


def test_budget_end_string_is_qwen3_early_stop():
    # Qwen3's own sentence, as its report and model cards give it (pinned here, not read from the code)
    qwen3 = "Considering the limited time by the user, I have to give the solution based on the thinking directly now."
    assert EARLY_STOP == qwen3
    assert get_dialect("qwen3").budget_end_str() == f"\n\n{qwen3}\n</think>"
    assert get_dialect("r1").budget_end_str() == f"\n\n{qwen3}\n</think>"
