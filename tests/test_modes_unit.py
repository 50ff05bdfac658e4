"""Fast tests of issue 5's choices without an engine: dialect sampling defaults, the fusion mix and
flag draws, follow-ups, the flag_following filter, multi-turn generation (fake engine, real
tokenizer and template) and the adaptive choice."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter

import pyarrow as pa
import pytest

from filters import Sample
from filters.flag_following import FlagFollowingFilter, flag_turns
from pipeline.dialects import get_dialect
from pipeline.loading import ConfigError, load_config
from pipeline.rows import Prompt, RowError
from pipeline.samples import SampleDraws
from pipeline.samples import plan_samples as _plan_samples
from pipeline.samples import samples_per_input as _per_input
from pipeline.stages.prepare import Prepare as _Prepare
from pipeline.stages.prepare import PrepareSettings
from pipeline.stages.select import Select, SelectSettings, choose
from tests.tiny_teacher import ARTIFACT_DIR

MIN = {"input": {"path": "p.jsonl"}, "teacher": {"model": str(ARTIFACT_DIR), "dialect": "qwen3"}}
FUSION = {
    **MIN,
    "generation": {
        "samples_per_prompt": 2,
        "mix": {"think": 3, "no_think": 1},
        "modes": [
            {"name": "think", "flag": "/think", "flag_share": 0.5, "flag_turn": "random"},
            {"name": "no_think", "thinking": False, "flag": "/no_think"},
        ],
    },
}


def cfg_of(data, *overrides):
    return load_config(data=copy.deepcopy(data), overrides=list(overrides))


def Planner(cfg):
    return SampleDraws(cfg.generation, cfg.teacher.model, cfg.teacher.dialect)


def plan_samples(cfg):
    return _plan_samples(cfg.generation, cfg.teacher.model, cfg.teacher.dialect)


def samples_per_input(cfg):
    return _per_input(cfg.generation)


def Prepare(cfg):
    return _Prepare(PrepareSettings.of(cfg))


def replica(cfg, engine):
    from pipeline.stages.generate import Generate, GenerateSettings

    return Generate(GenerateSettings.of(cfg), engine=engine)


# ------------------------------------------------------------------ dialect sampling


@pytest.mark.parametrize(
    "dialect, thinking, expect",
    [
        ("qwen3", True, (0.6, 0.95, 20)),
        ("qwen3", False, (0.7, 0.8, 20)),
        ("r1", True, (0.6, 0.95, -1)),
        ("r1", False, (0.6, 0.95, -1)),
    ],
)
def test_unset_sampling_takes_the_dialects_recommendation(dialect, thinking, expect):
    cfg = cfg_of(
        {
            **MIN,
            "teacher": {"model": "m", "dialect": dialect},
            "generation": {"modes": [{"name": "m", "thinking": thinking}]},
        }
    )
    s = get_dialect(dialect).sampling(cfg.generation.modes[0])
    assert (s["temperature"], s["top_p"], s["top_k"]) == expect


def test_a_set_sampling_value_wins_over_the_dialect():
    cfg = cfg_of(MIN, "generation.modes=[{name: t, sampling: {temperature: 0.2, max_tokens: 9}}]")
    s = get_dialect("qwen3").sampling(cfg.generation.modes[0])
    assert (s["temperature"], s["top_p"], s["max_tokens"]) == (0.2, 0.95, 9)


def test_a_drawn_flag_decides_the_samples_sampling(tiny_tokenizer):

    cfg = cfg_of(
        MIN, "generation.modes=[{name: soft, flag: random}, {name: fixed, flag: random, sampling: {temperature: 1.0}}]"
    )
    raws = [{"_path": "in.jsonl", "_row": i, "_raw": json.dumps({"prompt": f"What is {i}+1?"})} for i in range(20)]
    rows = Prepare(cfg)(pa.Table.from_pylist(raws)).to_pylist()
    soft = {(r["flag"], r["sampling"]["temperature"], r["sampling"]["top_p"]) for r in rows if r["mode"] == "soft"}
    assert soft == {("/think", 0.6, 0.95), ("/no_think", 0.7, 0.8)}
    assert {r["sampling"]["temperature"] for r in rows if r["mode"] == "fixed"} == {1.0}  # set values win


def test_a_soft_no_think_mode_samples_like_no_think():
    cfg = cfg_of(MIN, "generation.modes=[{name: soft, flag: /no_think}]")
    assert get_dialect("qwen3").sampling(cfg.generation.modes[0])["temperature"] == 0.7


# ------------------------------------------------------------------ config errors


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["generation.mix={think: 1, nope: 1}"], ["mix: ['nope'] are not modes"]),
        (["generation.mix={think: 1}"], ["modes ['no_think'] have no weight"]),
        (["generation.mix={think: 1, no_think: 1}"], ["modes.1", "must carry flag '/no_think'"]),
        (["generation.mix={think: 1, no_think: 0}"], ["weights must be > 0"]),
        (
            [
                "generation.modes=[{name: a, thinking_budget: [8, 16]}, {name: b, thinking: false, flag: /no_think}]",
                "generation.mix={a: 1, b: 1}",
            ],
            ["modes.0: a mixed mode takes one thinking_budget"],
        ),
        (
            [
                "generation.modes=[{name: a, min_thinking_tokens: [8, 16]}, "
                "{name: b, thinking: false, flag: /no_think}]",
                "generation.mix={a: 1, b: 1}",
            ],
            ["modes.0: a mixed mode takes one thinking_budget, one min_thinking_tokens"],
        ),
        (
            ["generation.modes=[{name: a, thinking: false, min_thinking_tokens: 8}]"],
            ["min_thinking_tokens needs thinking"],
        ),
        (
            ["generation.modes=[{name: a, min_thinking_tokens: 8, thinking_budget: 8}]"],
            ["must be below every thinking budget"],
        ),
        (
            ["generation.modes=[{name: a, min_thinking_tokens: 8, thinking_budget: 16, budget_strategy: engine}]"],
            ["min_thinking_tokens needs budget_strategy: two_stage"],
        ),
        (["generation.modes=[{name: a, min_thinking_tokens: [8, 8]}]"], ["a sweep needs distinct values"]),
        (["generation.modes=[{name: a, min_thinking_tokens: 0}]"], ["min_thinking_tokens: must be > 0"]),
        (["generation.modes=[{name: a, min_thinking_tokens: 8, max_extensions: 0}]"], ["max_extensions"]),
        (["generation.modes=[{name: a, thinking: false, flag: random}]"], ["flag 'random' needs thinking: true"]),
        (["generation.modes=[{name: a, turns: 2, flag_turn: system}]"], ["flag_turn: a multi-turn mode"]),
        (["generation.modes=[{name: a, turns: 2}]", "input.columns.follow_ups=null"], ["generation.follow_ups"]),
        (
            ["generation.modes=[{name: a, turns: 2}]", "generation.follow_ups=[x]", "filters.order=[format]"],
            ["filters.order", "flag_following"],
        ),
        (["generation.adaptive={think_mode: thinkk}"], ["adaptive.think_mode: 'thinkk' is not a mode"]),
        (["generation.adaptive={think_mode: no_think, no_think_mode: think}"], ["think_mode must think"]),
        (["generation.adaptive={}", "filters.order=[format]"], ["filters.order", "wrong_answer"]),
        (["generation.adaptive={delta: 2}"], ["generation.adaptive.delta", "less than or equal to 1"]),
    ],
)
def test_selection_config_errors_name_the_key(overrides, words):
    with pytest.raises(ConfigError) as e:
        cfg_of(MIN, *overrides)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


@pytest.mark.parametrize(
    "name, shows", [("fusion", "mix"), ("adaptive", "adaptive"), ("sweep", "sweep"), ("local", None)]
)
def test_the_shipped_capability_configs_show_what_they_are_for(name, shows):
    from pathlib import Path

    cfg = load_config(f"configs/{name}.yaml")
    g = cfg.generation
    assert Path(cfg.teacher.model, "config.json").is_file() and Path(cfg.input.path).is_file()
    assert {
        "mix": g.mix is not None,
        "adaptive": g.adaptive is not None,
        "sweep": any(len(m.budgets) > 1 for m in g.modes),
    } == {k: k == shows for k in ("mix", "adaptive", "sweep")}


# ------------------------------------------------------------------ the plan: mix and flags


def test_a_mixed_set_gives_each_prompt_one_mode_in_the_configured_ratio():
    cfg = cfg_of(FUSION)
    planner, again = Planner(cfg), Planner(cfg)
    assert samples_per_input(cfg) == 2 and len(plan_samples(cfg)) == 4
    chosen = Counter()
    for i in range(4000):
        specs = planner.specs_for(f"p{i}")
        assert len(specs) == 2 and len({s.mode.name for s in specs}) == 1
        assert [s.mode.name for s in again.specs_for(f"p{i}")] == [s.mode.name for s in specs]  # fixed per prompt
        chosen[specs[0].mode.name] += 1
    assert abs(chosen["think"] / 4000 - 0.75) < 0.03


def test_flag_share_and_turn_are_drawn_per_sample():
    cfg = cfg_of(FUSION, "generation.mix=null", "generation.modes.1.flag_turn=system")
    planner = Planner(cfg)
    think, no_think = (s for s in plan_samples(cfg) if s.index == 0)
    drawn = [planner.flags_for(think, f"p{i}") for i in range(2000)]
    flagged = [d for d in drawn if d.flags[0]]
    assert abs(len(flagged) / 2000 - 0.5) < 0.05  # flag_share 0.5; the rest carry no flag
    assert {d.flags[0] for d in flagged} == {"/think"} and all(d.flag_turn is None for d in drawn if not d.flags[0])
    assert abs(sum(d.flag_turn == "user" for d in flagged) / len(flagged) - 0.5) < 0.06  # flag_turn random
    assert {planner.flags_for(no_think, f"p{i}") for i in range(50)} == {(("/no_think",), "system")}


def test_random_flags_are_drawn_per_turn_and_the_last_given_one_rules():
    cfg = cfg_of(MIN, "generation.modes=[{name: mt, turns: 3, flag: random}]", "generation.follow_ups=[x]")
    spec = plan_samples(cfg)[0]
    drawn = [Planner(cfg).flags_for(spec, f"p{i}") for i in range(300)]
    assert all(len(d.flags) == 3 and d.flag_turn == "user" for d in drawn)
    assert {tuple(d.flags) for d in drawn} >= {("/think", "/no_think", "/think"), ("/no_think", "/no_think", "/think")}
    assert all(d.effective_flag == d.flags[-1] for d in drawn)


def test_follow_ups_come_from_the_row_or_from_templates():
    cfg = cfg_of(MIN, "generation.modes=[{name: mt, turns: 3}]", "generation.follow_ups=['a {answer}', 'b {answer}']")
    spec, planner = plan_samples(cfg)[0], Planner(cfg)
    own = Prompt(
        "p",
        [{"role": "user", "content": "q"}],
        "1",
        "s",
        True,
        follow_ups=(("Plus 1?", "2"), ("Times 2?", "4"), ("unused", None)),
    )
    assert planner.follow_ups_for(spec, own, cfg.generation.follow_ups) == [("Plus 1?", "2"), ("Times 2?", "4")]
    bare = Prompt("p", [{"role": "user", "content": "q"}], "1", "s", True)
    got = planner.follow_ups_for(spec, bare, cfg.generation.follow_ups)
    assert len(got) == 2 and all(t in ("a {answer}", "b {answer}") and r is None for t, r in got)
    with pytest.raises(RowError, match="needs 2 follow-up prompts, the row has 1"):
        planner.follow_ups_for(spec, Prompt("p", [], None, "s", True, follow_ups=(("x", None),)), [])


def test_prepare_renders_the_drawn_flag_where_it_was_drawn(tiny_tokenizer):

    cfg = cfg_of(FUSION, "output.keep_prompt_text=true")
    stage = Prepare(cfg)
    raws = [
        {"_path": "in.jsonl", "_row": i, "_raw": json.dumps({"id": f"p{i}", "prompt": f"What is {i}+1?"})}
        for i in range(60)
    ]
    rows = stage(pa.Table.from_pylist(raws)).to_pylist()
    assert len(rows) == 120 and all(r["status"] == "pending" for r in rows)
    by_prompt = {}
    for r in rows:
        by_prompt.setdefault(r["prompt_id"], set()).add(r["mode"])
        turns = {m["role"]: m["content"] for m in r["messages"]}
        if r["flag"] is None:
            assert r["mode"] == "think" and "/think" not in r["prompt_text"] and r["thinking_expected"]
            continue
        placed = turns["system"] if r["flag_turn"] == "system" else turns["user"]
        assert placed.endswith(r["flag"]) and r["flag"] in r["prompt_text"]
        if r["mode"] == "no_think":  # the hard switch: the prompt ends in the empty think block
            assert r["flag"] == "/no_think" and r["prompt_text"].endswith("<think>\n\n</think>\n\n")
            assert not r["thinking_expected"] and r["sampling"]["temperature"] == 0.7
    assert all(len(modes) == 1 for modes in by_prompt.values())  # one mode per prompt
    assert {r["flag_turn"] for r in rows} == {None, "user", "system"}


def test_follow_ups_are_only_read_when_a_mode_has_turns(tiny_tokenizer):

    raw = {"_path": "in.jsonl", "_row": 1, "_raw": json.dumps({"prompt": "What is 1+1?", "follow_ups": "oops"})}
    single = Prepare(cfg_of(MIN))(pa.Table.from_pylist([raw])).to_pylist()
    assert {r["status"] for r in single} == {"pending"}
    multi = cfg_of(MIN, "generation.modes=[{name: mt, turns: 2}]", "generation.follow_ups=[x]")
    rows = Prepare(multi)(pa.Table.from_pylist([raw])).to_pylist()
    assert rows[0]["error"] == "invalid_follow_ups" and rows[0]["field"] == "follow_ups"


# ------------------------------------------------------------------ flag_following


def _conv(*turns):
    msgs = []
    for user, thought in turns:
        msgs += [
            {"role": "user", "content": user},
            {"role": "assistant", "content": f"<think>\n{thought}\n</think>\n\n\\boxed{{1}}"},
        ]
    return msgs


def test_each_turn_follows_the_latest_flag():
    msgs = [{"role": "system", "content": "Be brief. /no_think"}] + _conv(
        ("a", ""), ("b /think", "work"), ("c", "more")
    )
    assert flag_turns(msgs) == [
        {"flag": "/no_think", "thinking": False, "followed": True},
        {"flag": "/think", "thinking": True, "followed": True},
        {"flag": "/think", "thinking": True, "followed": True},
    ]
    assert flag_turns(_conv(("a", "x")))[0]["followed"] is None  # no flag in force: not judged


def test_a_turn_that_ignores_its_flag_rejects_the_sample():
    f = FlagFollowingFilter()
    msgs = _conv(("a /think", "work"), ("b /no_think", "still thinking"), ("c /think", "ok"))
    v = f.check(Sample(msgs[-1]["content"], thinking_expected=True, messages=msgs))
    assert v.passed is False and v.reason == "flag_not_followed" and v.detail.startswith("turn 2: flag /no_think")
    good = _conv(("a /think", "work"), ("b /no_think", ""))
    assert f.check(Sample(good[-1]["content"], thinking_expected=False, messages=good)).passed is True
    # single turn, no conversation given: the prompt and completion are the conversation
    assert f.check(Sample("<think>\nx\n</think>\n\n1", thinking_expected=True, prompt="q /no_think")).passed is False


def test_wrong_answer_checks_every_turn_with_a_reference():
    from filters.lib.answers import MathVerifier
    from filters.wrong_answer import WrongAnswerFilter

    f = WrongAnswerFilter(MathVerifier())
    msgs = [
        {"role": "user", "content": "3+4?"},
        {"role": "assistant", "content": "<think>\nx\n</think>\n\n\\boxed{8}"},
        {"role": "user", "content": "And 8+1?"},
        {"role": "assistant", "content": "<think>\nx\n</think>\n\n\\boxed{9}"},
    ]
    last = msgs[-1]["content"]
    v = f.check(Sample(last, True, reference="9", messages=msgs, turn_references=["7", "9"]))
    assert v.reason == "wrong_answer" and v.detail.startswith("turn 1: reference '7'")
    assert f.check(Sample(last, True, reference="9", messages=msgs, turn_references=["8", "9"])).passed is True
    assert (
        f.check(Sample(last, True, reference=None, messages=msgs, turn_references=["8", None])).reason
        == "skipped_no_reference"
    )  # the last question's answer is unknown: a skip, as for one turn


# ------------------------------------------------------------------ multi-turn in the replica


class EchoEngine:
    """A stand-in engine: answers every turn with a fixed think block and \\boxed{7}; a no-think
    prompt gets no block."""

    def shutdown(self):
        pass

    def __init__(self, tokenizer, cut_at: int | None = None):
        self.tokenizer, self.prompts, self.temperatures, self.cut_at = tokenizer, [], [], cut_at

    async def complete(self, prompt_ids, params, request_id):
        from pipeline.engine import Completion

        text = self.tokenizer.decode(prompt_ids)
        self.prompts.append((text, params.seed))
        self.temperatures.append(params.temperature)
        out = "\\boxed{7}" if text.endswith("</think>\n\n") else "<think>\n3+4=7\n</think>\n\n\\boxed{7}"
        ids = self.tokenizer.encode(out, add_special_tokens=False)
        finish = "length" if len(self.prompts) == self.cut_at else "stop"  # the cut_at-th request hits max_tokens
        return Completion(out, ids, finish)


def test_a_conversation_cut_by_max_tokens_ends_there_and_describes_that_turn(tiny_tokenizer):

    cfg = cfg_of(MIN, "generation.modes=[{name: mt, turns: 3, flag: /no_think}]")
    follow_ups = [{"prompt": "What is 7+1?", "reference": 8}, {"prompt": "What is 8+1?", "reference": 9}]
    raw = {
        "_path": "in.jsonl",
        "_row": 1,
        "_raw": json.dumps({"id": "p9", "prompt": "What is 3+4?", "reference": 7, "follow_ups": follow_ups}),
    }
    row = Prepare(cfg)(pa.Table.from_pylist([raw])).to_pylist()[0]
    assert row["reference"] == "9"  # planned: the last question's
    rep = replica(cfg, EchoEngine(tiny_tokenizer, cut_at=2))
    c = asyncio.run(rep._conversation(row))
    assert c.finish_reason == "length" and len(rep.engine.prompts) == 2  # turn 3 never generated
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user"]
    assert row["reference"] == "8" and row["flag"] == "/no_think" and not row["thinking_expected"]


def test_a_multi_turn_sample_is_generated_turn_by_turn_with_history_thinking_stripped(tiny_tokenizer):
    from pipeline.stages.parse import Parse, ParseSettings

    cfg = cfg_of(
        MIN, "generation.modes=[{name: mt, turns: 3, flag: random}]", "generation.follow_ups=['What is {answer}+17?']"
    )
    raw = {"_path": "in.jsonl", "_row": 1, "_raw": json.dumps({"id": "p9", "prompt": "What is 3+4?", "reference": 7})}
    row = Prepare(cfg)(pa.Table.from_pylist([raw])).to_pylist()[0]
    rep = replica(cfg, EchoEngine(tiny_tokenizer))
    c = asyncio.run(rep._conversation(row))
    flags = row["turn_flags"]
    prompts = rep.engine.prompts
    assert len(prompts) == 3 and [s for _, s in prompts] == [row["seed"], row["seed"] + 2, row["seed"] + 4]
    assert "What is 7+17?" in prompts[1][0] and prompts[1][0].count("3+4=7") == 0  # history thinking stripped
    assert prompts[2][0].rstrip().endswith("<|im_start|>assistant")
    # each turn samples as the flag in force asks (Qwen3: 0.6 thinking, 0.7 not); the row keeps the last's
    in_force = [next((f for f in reversed(flags[: i + 1]) if f), None) for i in range(3)]
    assert rep.engine.temperatures == [0.7 if f == "/no_think" else 0.6 for f in in_force]
    assert row["sampling"]["temperature"] == rep.engine.temperatures[-1]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    for turn, flag in enumerate(flags):  # each user turn carries its own drawn flag (or none)
        user = row["messages"][2 * turn]["content"]
        assert user.endswith(flag) if flag else "/think" not in user and "/no_think" not in user
    assert row["reference"] is None  # templates have no reference for the last question
    row.update(generated=c.text, completion_token_ids=c.token_ids, finish_reason=c.finish_reason)
    out = Parse(ParseSettings.of(cfg)).parse(row)
    assert len(out["messages"]) == 6 and len(out["turns"]) == 3
    assert [t["flag"] for t in out["turns"]] == [
        next((f for f in reversed(flags[: i + 1]) if f), None) for i in range(3)
    ]
    assert [t["reference"] for t in out["turns"]] == ["7", None, None]  # the input's, then unknown
    assert out["completion_tokens"] == 3 * len(c.token_ids)


# ------------------------------------------------------------------ adaptive choice


def _group(k, think_ok, no_think_ok, reference="1", source="s"):
    rows = []
    for mode, ok in (("think", think_ok), ("no_think", no_think_ok)):
        for i in range(k):
            passed = None if reference is None else i < ok
            rows.append(
                {
                    "prompt_id": "p",
                    "mode": mode,
                    "sample_index": i,
                    "source": source,
                    "reference": reference,
                    "status": "accepted" if passed is not False else "rejected",
                    "reject_reason": None if passed is not False else "wrong_answer",
                    "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                    "verdicts": [
                        {"filter": "wrong_answer", "passed": passed, "reason": None, "score": None, "detail": None}
                    ],
                }
            )
    return rows


def _select(**adaptive):
    cfg = cfg_of(MIN, "generation.samples_per_prompt=4", f"generation.adaptive={json.dumps(adaptive)}")
    return Select(SelectSettings.of(cfg))


@pytest.mark.parametrize(
    "think_ok, no_think_ok, chosen",
    [(3, 3, "no_think"), (4, 3, "think"), (1, 1, "no_think"), (0, 0, "no_think"), (2, 4, "no_think")],
)
def test_no_think_is_chosen_when_it_is_about_as_accurate(think_ok, no_think_ok, chosen):
    group = _group(4, think_ok, no_think_ok)
    stage = _select()
    outcome = stage.decide(group)
    assert outcome == ("unsolved" if think_ok == no_think_ok == 0 else chosen)
    # the summary recounts the choice from the rows as written (verdicts applied): the same outcome
    from pipeline.stages.select import recount

    counts, unsolved = recount(
        [group], SelectSettings.of(cfg_of(MIN, "generation.samples_per_prompt=4", "generation.adaptive={}"))
    )
    assert counts == {("s", outcome): 1} and len(unsolved) == (outcome == "unsolved")
    for r in group:
        assert r["acc_think"] == think_ok / 4 and r["acc_no_think"] == no_think_ok / 4 and r["chosen_mode"] == chosen
        verdict = r["verdicts"][-1]
        assert verdict["filter"] == "mode_choice" and verdict["passed"] == (r["mode"] == chosen)
        if r["mode"] != chosen:  # nothing of the other mode is kept; its failures keep their own reason
            assert r["status"] == "rejected" and r["reject_reason"] in ("mode_not_chosen", "wrong_answer")
    kept = [r for r in group if r["status"] == "accepted"]
    assert len(kept) == (think_ok if chosen == "think" else no_think_ok)


def test_delta_decides_the_close_calls():
    assert choose(0.75, 0.5, 0.25, "adaptthink") == "no_think" and choose(0.75, 0.5, 0.2, "adaptthink") == "think"


def test_query_filter_drops_prompts_no_think_solves_every_time():
    group = _group(4, 4, 4)
    assert _select(rule="query_filter").decide(group) == "dropped"
    assert Counter(r["reject_reason"] for r in group) == {"solved_without_thinking": 4, "mode_not_chosen": 4}
    group = _group(4, 4, 3)
    assert _select(rule="query_filter").decide(group) == "think"
    assert sum(r["status"] == "accepted" for r in group) == 4


def test_prompts_without_a_reference_keep_thinking_and_are_counted():
    group = _group(4, 0, 0, reference=None)
    assert _select().decide(group) == "unverified"
    assert {r["mode"] for r in group if r["status"] == "accepted"} == {"think"}


def test_the_select_stage_waits_for_a_whole_group():
    stage = _select()
    rows = _group(4, 3, 1)
    from pipeline.schema import to_table

    first = stage(to_table(rows[:5])).to_pylist()
    assert first == [] and len(stage.pending["p"]) == 5
    out = stage(to_table(rows[5:] + [{"prompt_id": None, "status": "error", "error": "invalid_json"}])).to_pylist()
    assert len(out) == 9 and not stage.pending and out[-1]["error"] == "invalid_json"
    assert all(r["chosen_mode"] == "think" for r in out[:-1])
