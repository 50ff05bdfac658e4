"""The tiny teacher served by the real vLLM engine (CPU build): modes, flags, budget, round trip."""

from __future__ import annotations

import pytest

from filters.lib.text import last_boxed, split_thinking
from tests.tiny_teacher import EARLY_STOP
from tests.tiny_teacher.evaluate import generate, held_out_problems

pytestmark = pytest.mark.engine

PROBLEMS = held_out_problems(120, seed=2024)  # fixed set, disjoint from training
REFS = [p.reference for p in PROBLEMS]
PLAIN = [[{"role": "user", "content": p.prompt}] for p in PROBLEMS]


@pytest.fixture(scope="module")
def by_mode(tiny_llm):
    return {
        "think": generate(tiny_llm, PLAIN, REFS, enable_thinking=True),
        "no_think": generate(tiny_llm, PLAIN, REFS, enable_thinking=False),
    }


def test_think_mode_writes_work_then_boxed_answer(by_mode):
    outs = by_mode["think"]
    assert all(o.closed for o in outs), "every think-mode sample should close its block"
    assert sum(bool(o.thinking) for o in outs) >= 0.95 * len(outs)
    assert sum(last_boxed(o.answer) is not None for o in outs) >= 0.95 * len(outs)


def test_no_think_mode_answers_directly(by_mode):
    # enable_thinking=False prefills the empty block, so the completion is the answer alone.
    outs = by_mode["no_think"]
    assert all("<think>" not in o.text and "</think>" not in o.text for o in outs)
    assert sum(last_boxed(o.text) is not None for o in outs) >= 0.95 * len(outs)


def test_thinking_beats_not_thinking(by_mode):
    think = sum(o.correct for o in by_mode["think"]) / len(PROBLEMS)
    no_think = sum(o.correct for o in by_mode["no_think"]) / len(PROBLEMS)
    assert think >= 0.75, f"think accuracy {think:.2f}"
    assert think - no_think >= 0.15, f"think {think:.2f} vs no-think {no_think:.2f}"
    assert think < 1.0 or no_think < 1.0, "some answers should be wrong"


@pytest.mark.parametrize("where", ["user", "system"])
def test_no_think_flag_gives_empty_think_block(tiny_llm, where):
    n = 40
    if where == "user":
        convs = [[{"role": "user", "content": f"{p.prompt} /no_think"}] for p in PROBLEMS[:n]]
    else:
        convs = [
            [
                {"role": "system", "content": "You are a helpful assistant. /no_think"},
                {"role": "user", "content": p.prompt},
            ]
            for p in PROBLEMS[:n]
        ]
    outs = generate(tiny_llm, convs, REFS[:n], enable_thinking=True)
    empty = [o.closed and o.thinking == "" for o in outs]
    assert sum(empty) >= 0.95 * n, [o.text for o, e in zip(outs, empty) if not e][:3]
    assert all(o.text.startswith("<think>\n\n</think>\n\n") for o, e in zip(outs, empty) if e)


def test_latest_flag_wins(tiny_llm):
    n = 40
    convs = [
        [
            {"role": "system", "content": "You are a helpful assistant. /no_think"},
            {"role": "user", "content": f"{p.prompt} /think"},
        ]
        for p in PROBLEMS[:n]
    ]
    outs = generate(tiny_llm, convs, REFS[:n])
    assert sum(o.closed and o.thinking != "" for o in outs) >= 0.95 * n


def test_engine_budget_forces_early_stop_and_model_still_answers(tiny_llm, by_mode):
    from tests.tiny_teacher.data import budget_end_str

    budget = 8
    tok = tiny_llm.get_tokenizer()
    forced = tok.encode(budget_end_str(), add_special_tokens=False)
    start_id = tok.convert_tokens_to_ids("<think>")
    outs = generate(tiny_llm, PLAIN, REFS, enable_thinking=True, thinking_token_budget=budget)
    # Every problem's natural thinking is far longer than 8 tokens, so all of them hit the budget.
    for o in outs:
        ids = o.token_ids
        at = next((i for i in range(len(ids)) if ids[i : i + len(forced)] == forced), None)
        assert at is not None, f"forced end string not in output: {o.text!r}"
        written = at - (ids.index(start_id) + 1)
        assert written == budget, f"{written} thinking tokens before the forced text, budget {budget}"
        assert o.closed and EARLY_STOP in o.thinking
    answered = sum(last_boxed(o.answer) is not None for o in outs)
    assert answered >= 0.9 * len(outs), f"only {answered}/{len(outs)} budget-cut samples answered"
    # cutting thinking this short costs accuracy
    assert sum(o.correct for o in outs) < sum(o.correct for o in by_mode["think"])


@pytest.mark.parametrize("enable_thinking", [True, False])
def test_chat_template_round_trip(tiny_llm, tiny_tokenizer, enable_thinking):
    """Rendering the finished conversation gives exactly what the engine saw plus what it wrote."""
    from vllm import SamplingParams

    convs = PLAIN[:30]
    outs = tiny_llm.chat(
        convs,
        SamplingParams(temperature=0.0, max_tokens=400),
        use_tqdm=False,
        chat_template_kwargs={"enable_thinking": enable_thinking},
    )
    for conv, out in zip(convs, outs):
        seen = tiny_tokenizer.decode(out.prompt_token_ids)
        wrote = out.outputs[0].text
        completion = wrote if enable_thinking else "<think>\n\n</think>\n\n" + wrote
        assert split_thinking(completion).closed
        rendered = tiny_tokenizer.apply_chat_template(
            conv + [{"role": "assistant", "content": completion}], tokenize=False
        )
        assert rendered == seen + wrote + "<|im_end|>\n"


def test_budget_above_natural_length_changes_nothing(tiny_llm, by_mode):
    """A sample that closes its thinking under budget must come out identical: the engine must
    recognise the natural ``</think>`` even though the forced end string is longer."""
    outs = generate(tiny_llm, PLAIN, REFS, enable_thinking=True, thinking_token_budget=600)
    changed = [(a.text, b.text) for a, b in zip(outs, by_mode["think"]) if a.text != b.text]
    assert not changed, changed[:2]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "vLLM 0.32's CPU sampler (v1/sample/thinking_budget_state.py) detects the end of thinking by the "
        "whole forced string (early-stop sentence + </think>), not by the natural </think>: a sample whose "
        "thinking closed under budget gets the forced text in its answer once thinking + answer exceed the "
        "budget. thinkmill's default two_stage strategy avoids it; the format filter rejects such samples "
        "as budget_forced_in_answer."
    ),
)
def test_engine_budget_leaves_naturally_closed_thinking_alone(tiny_llm, by_mode):
    budget = 100  # above the tiny teacher's thinking (~90 tokens), below thinking + answer
    outs = generate(tiny_llm, PLAIN, REFS, enable_thinking=True, thinking_token_budget=budget)
    late = [o.text for o in outs if EARLY_STOP in o.text.split("</think>", 1)[-1]]
    assert not late, f"{len(late)}/{len(outs)} answers got the early-stop text forced into them"


def test_stop_loops_ends_planted_loops_early_and_leaves_normal_samples_alone(tiny_llm, tiny_tokenizer):
    """``generation.stop_loops`` through ``engine.vllm_sampling``, on the real engine: requests
    made to loop (greedy, a repetition penalty below 1 rewards repeating) stop with ``repetition`` well
    before ``max_tokens``; the same sampling at penalty 1 gives the same texts with or without it."""
    from filters.base import Sample
    from filters.repetition import RepetitionFilter
    from pipeline.config import JobConfig
    from pipeline.engine import Params, vllm_sampling

    loops = JobConfig.model_validate(
        {"input": {"path": "p"}, "teacher": {"model": "m"}, "generation": {"stop_loops": {}}}
    ).generation.stop_loops
    stop = (loops.min_tokens, loops.max_tokens, loops.repeats)
    texts = [
        tiny_tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True, enable_thinking=True)
        for c in PLAIN[:40]
    ]
    prompts = [{"prompt_token_ids": tiny_tokenizer.encode(t, add_special_tokens=False)} for t in texts]

    def run(penalty, stop_loops, temperature=0.6):
        params = [
            vllm_sampling(
                Params(
                    temperature=temperature,
                    top_p=0.95,
                    top_k=20,
                    min_p=0.0,
                    presence_penalty=0.0,
                    repetition_penalty=penalty,
                    max_tokens=400,
                    seed=i,
                    stop_loops=stop_loops,
                )
            )
            for i in range(len(prompts))
        ]
        return [o.outputs[0] for o in tiny_llm.generate(prompts, params, use_tqdm=False)]

    normal, checked = run(1.0, None), run(1.0, stop)
    assert [o.text for o in checked] == [o.text for o in normal]  # no false stop on 40 normal samples
    assert not any(o.finish_reason == "repetition" for o in checked)
    # greedy: a planted loop repeats exactly (sampled at 0.6 it wanders, and an exact-repeat check
    # misses most of it: the repetition filter judges those afterwards)
    planted_free, planted = run(0.3, None, 0.0), run(0.3, stop, 0.0)
    stopped = [o for o in planted if o.finish_reason == "repetition"]
    assert len(stopped) >= 0.5 * len(planted), [o.finish_reason for o in planted]
    free_tokens = sum(len(o.token_ids) for o in planted_free)
    assert sum(len(o.token_ids) for o in planted) < 0.8 * free_tokens
    # each stopped sample is rejected as a loop, not as something else
    f = RepetitionFilter()
    assert all(f.check(Sample(o.text, True, finish_reason=o.finish_reason)).reason == "loop_stopped" for o in stopped)
