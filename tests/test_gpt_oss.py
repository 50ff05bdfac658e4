"""gpt-oss: the harmony dialect and reasoning effort.

Rendering is checked against text of the real format copied from public sources
(``harmony_fixtures.json``); the tiny harmony teacher (``tests/tiny_teacher/harmony_model``) then
runs ``configs/gpt-oss.yaml`` end to end on the real engine: every sample at each effort level,
the samples' ``messages`` rendered back by the teacher's template to exactly what it saw and
wrote, longer analysis and higher accuracy at higher effort, budgets closing the analysis.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.dialects import get_dialect
from tests.tiny_teacher.harmony import TO_FINAL

HERE = Path(__file__).resolve().parent
MODEL = HERE / "tiny_teacher" / "harmony_model"
FIXTURES = json.loads((HERE / "harmony_fixtures.json").read_text(encoding="utf-8"))
PROMPTS = 24
DATE = re.compile(r"Current date: \d{4}-\d\d-\d\d")
D = get_dialect("gpt-oss")


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(MODEL))


@pytest.mark.parametrize("case", FIXTURES["prompts"], ids=lambda c: c["effort"])
def test_prompts_render_as_the_real_format(tok, case):
    ours = D.render(tok, case["messages"], True, case["effort"])
    assert DATE.sub(DATE.search(case["rendered"]).group(0), ours) == case["rendered"]


def test_effort_defaults_to_medium_as_in_gpt_oss(tok):
    msgs = [{"role": "user", "content": "hi"}]
    assert "Reasoning: medium\n\n" in D.render(tok, msgs, True)
    assert "Reasoning: high\n\n" in D.render(tok, msgs, True, "high")


def test_the_published_example_output_splits_into_its_channels():
    c = FIXTURES["completion"]
    text = D.completion("", c["text"])  # the stop token goes, as the engine's stop
    split = D.split(text)
    assert (split.thinking, split.answer, split.opened, split.closed, split.blocks) == (
        c["thinking"],
        c["answer"],
        True,
        True,
        1,
    )
    m = D.message(text)
    assert m == {"role": "assistant", "thinking": c["thinking"], "content": c["answer"]}
    assert D.text(m) == text


def test_an_analysis_cut_off_has_no_final_message_and_stays_unclosed():
    text = "<|channel|>analysis<|message|>57+740: 7+0"
    m = D.message(text)
    assert m["content"] is None and m["thinking"] == "57+740: 7+0" and D.text(m) == text
    assert not D.split(text).closed and D.split(text).opened
    final_only = "<|channel|>final<|message|>797"
    assert D.text(D.message(final_only)) == final_only and not D.split(final_only).opened


def test_the_teachers_turn_renders_back_exactly(tok):
    """prompt + completion + <|return|> is what the template renders of the stored messages,
    with developer instructions and a history turn (which keeps only its final channel)."""
    history = [
        {"role": "system", "content": "You are a careful math tutor."},
        {"role": "user", "content": "What is 2+3?"},
        {"role": "assistant", "content": "5"},
        {"role": "user", "content": "What is 57+740?"},
    ]
    completion = (
        "<|channel|>analysis<|message|>057+740: 7+0+0=7.\nSo the answer is 797."
        + TO_FINAL
        + "The answer is \\boxed{797}."
    )
    for effort in ("low", "high"):
        prompt = D.render(tok, history, True, effort)
        back = tok.apply_chat_template(history + [D.message(completion)], tokenize=False, reasoning_effort=effort)
        assert back == prompt + completion + "<|return|>"


@pytest.mark.parametrize(
    "mode, key, words",
    [
        (
            {"name": "a", "reasoning_effort": "high"},
            "generation.modes.0.reasoning_effort",
            "needs teacher.dialect 'gpt-oss'",
        ),
    ],
)
def test_effort_needs_the_gpt_oss_dialect(mode, key, words):
    from pipeline.loading import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config("configs/local.yaml", [f"generation.modes=[{json.dumps(mode)}]"])
    assert key in str(e.value) and words in str(e.value)


@pytest.mark.parametrize(
    "mode, words",
    [
        ({"name": "a", "thinking": False}, "generation.modes.0.thinking: gpt-oss always reasons"),
        ({"name": "a", "flag": "/think"}, "generation.modes.0.flag: gpt-oss has no /think"),
        ({"name": "a", "min_thinking_tokens": 8}, "generation.modes.0.min_thinking_tokens"),
        ({"name": "a", "thinking_budget": 8, "budget_strategy": "engine"}, "generation.modes.0.budget_strategy"),
        ({"name": "a", "reasoning_effort": ["low", "low"]}, "a sweep needs distinct levels"),
        ({"name": "a", "reasoning_effort": "max"}, "reasoning_effort"),
    ],
)
def test_gpt_oss_refuses_what_it_cannot_make_at_plan_time(mode, words):
    from pipeline.loading import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config("configs/gpt-oss.yaml", [f"generation.modes=[{json.dumps(mode)}]"])
    assert words in str(e.value), str(e.value)


def test_harmony_token_counts_find_the_channels_and_the_forced_close(tok):
    from pipeline.stages.parse import count_tokens

    start, end = (tok.encode(t, add_special_tokens=False) for t in (D.think_start, D.think_end))
    body = tok.encode("057+740: 7+0+0=7", add_special_tokens=False)
    answer = tok.encode("The answer is \\boxed{797}.<|return|>", add_special_tokens=False)
    free = count_tokens(
        start + body + end + answer, opened_in_prompt=False, start=start, end=end, forced=end, budget=None
    )
    assert free == (len(body), len(answer), False)
    cut = count_tokens(
        start + body[:4] + end + answer, opened_in_prompt=False, start=start, end=end, forced=end, budget=4
    )
    assert cut == (4, len(answer), True)


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def gpt_oss_run(tmp_path_factory, ray_session):
    from pipeline.loading import load_config
    from pipeline.runs.generate import run

    out = tmp_path_factory.mktemp("gpt_oss")
    cfg = load_config(
        "configs/gpt-oss.yaml",
        [
            f"output.path={out}",
            f"input.limit={PROMPTS}",
            "output.keep_prompt_text=true",
            "teacher.replicas=1",
            "teacher.max_in_flight=32",
            "teacher.engine.kv_cache_gib=0.5",
            "ray.batch_size=8",
            "filters.wrong_answer.timeout_s=60",
        ],
    )
    return {"summary": run(cfg), "dir": out / "gpt-oss"}


def _samples(run_dir: Path) -> list[dict]:
    import datasets

    files = sorted(str(p) for f in ("accepted", "rejected") for p in (run_dir / f).glob("*.parquet"))
    return list(datasets.load_dataset("parquet", data_files=files, split="train"))


@pytest.mark.engine
def test_every_prompt_is_answered_at_every_effort_and_budget(gpt_oss_run):
    s, samples = gpt_oss_run["summary"], _samples(gpt_oss_run["dir"])
    assert s["errors"]["total"] == 0 and s["missing"] == 0
    cells = {(r["mode"], r["reasoning_effort"], r["thinking_budget"]) for r in samples}
    assert cells == {("effort", e, None) for e in ("low", "medium", "high")} | {("budget", "high", b) for b in (16, 32)}
    assert len(samples) == PROMPTS * 5
    assert len({r["sample_id"] for r in samples}) == len(samples)


@pytest.mark.engine
def test_messages_render_back_to_what_the_teacher_saw_and_wrote(gpt_oss_run, tok):
    checked = 0
    for r in _samples(gpt_oss_run["dir"]):
        last = r["messages"][-1]
        assert last["role"] == "assistant"
        messages = [{k: v for k, v in m.items() if v is not None} for m in r["messages"]]
        if last["content"] is None:  # cut inside its analysis: no final message to render
            assert r["reject_reason"] is not None
            continue
        back = tok.apply_chat_template(messages, tokenize=False, reasoning_effort=r["reasoning_effort"])
        assert back == r["prompt_text"] + D.text(last) + "<|return|>"
        assert last["thinking"] == r["thinking"] and last["content"] == r["answer"]
        checked += 1
    assert checked >= PROMPTS * 4


@pytest.mark.engine
def test_higher_effort_thinks_longer_and_is_more_accurate(gpt_oss_run):
    rows = {r["reasoning_effort"]: r for r in gpt_oss_run["summary"]["budget_report"] if r["mode"] == "effort"}
    low, medium, high = rows["low"], rows["medium"], rows["high"]
    assert low["mean_thinking_tokens"] < medium["mean_thinking_tokens"] < high["mean_thinking_tokens"]
    assert high["accuracy"] > low["accuracy"] + 0.2, rows
    assert (gpt_oss_run["dir"] / "budget_report.png").stat().st_size > 10_000
    html = (gpt_oss_run["dir"] / "report.html").read_text(encoding="utf-8")
    assert "Reasoning-effort sweep" in html and "<th>reasoning effort</th>" in html


@pytest.mark.engine
def test_a_budget_closes_the_analysis_and_the_teacher_answers(gpt_oss_run):
    budget = [r for r in _samples(gpt_oss_run["dir"]) if r["mode"] == "budget"]
    hit = [r for r in budget if r["budget_hit"]]
    assert len(hit) >= PROMPTS  # the high-effort analysis is longer than 16 tokens nearly always
    for r in hit:
        assert r["thinking_tokens"] == r["thinking_budget"]
        assert r["messages"][-1]["content"] is not None  # an answer on the final channel
    # the answer has its shape; after 16 or 32 tokens of analysis it is mostly a guess (the card:
    # 3-4% right), which wrong_answer rejects
    shaped = [r for r in hit if r["reject_reason"] in (None, "wrong_answer") and r["extracted_answer"]]
    assert len(shaped) >= 0.9 * len(hit), [r["reject_reason"] for r in hit]
