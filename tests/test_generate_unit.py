"""Fast tests of the generation job's pieces: row validation, ids, input resolution, parsing,
the replica's error handling (fake engine), the sink's tally and the CLI's dry run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import ColumnMap
from pipeline.ids import content_prompt_id, sample_id, sample_seed
from pipeline.loading import load_config
from pipeline.read import InputError, resolve_input
from pipeline.rows import RowError, normalize
from pipeline.samples import plan_samples
from tests.tiny_teacher import ARTIFACT_DIR

COLS = ColumnMap(messages="messages", system="system")


# ------------------------------------------------------------------ row validation


@pytest.mark.parametrize(
    "raw, error, field, words",
    [
        ("{not json", "invalid_json", None, "not valid JSON"),
        ("[1, 2]", "invalid_json", None, "expected a JSON object per row, got list"),
        ('{"text": "hi"}', "missing_prompt", "prompt", "the row has columns ['text']"),
        ('{"prompt": null}', "missing_prompt", "prompt", "expected a prompt in column 'prompt' or 'messages'"),
        ('{"prompt": ""}', "empty_prompt", "prompt", "expected a non-empty string"),
        ('{"prompt": ["a"]}', "non_text_prompt", "prompt", "got list"),
        ('{"messages": "hi"}', "malformed_messages", "messages", "expected a non-empty list"),
        ('{"messages": []}', "malformed_messages", "messages", "expected a non-empty list"),
        ('{"messages": ["hi"]}', "malformed_messages", "messages", "messages[0]: expected an object"),
        (
            '{"messages": [{"role": "user", "content": 3}]}',
            "malformed_messages",
            "messages",
            "messages[0].content: expected a string, got int 3",
        ),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}, '
            '{"role": "user", "content": "b"}]}',
            "malformed_messages",
            "messages",
            "messages[1]: a system turn may only come first",
        ),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}',
            "malformed_messages",
            "messages",
            "the last turn must be the user's",
        ),
        ('{"messages": [{"role": "user", "content": " "}]}', "empty_prompt", "messages", "the last user turn is empty"),
        ('{"prompt": "q", "reference": {"a": 1}}', "invalid_reference", "reference", "expected a string or number"),
        ('{"prompt": "q", "id": 1.5}', "invalid_id", "id", "expected a string or integer, got float"),
        ('{"prompt": "q", "id": true}', "invalid_id", "id", "got bool"),
        ('{"prompt": "q", "system": 5}', "invalid_system", "system", "expected a string"),
    ],
)
def test_bad_rows_name_the_field_and_what_was_expected(raw, error, field, words):
    with pytest.raises(RowError) as e:
        normalize(raw, COLS)
    assert (e.value.error, e.value.field) == (error, field)
    assert words in e.value.detail


def test_good_rows_normalize():
    p = normalize('{"messages": [{"role": "user", "content": "q"}], "id": 12, "reference": 2.5, "source": "gsm"}', COLS)
    assert (p.prompt_id, p.reference, p.source, p.id_given, p.field) == ("12", "2.5", "gsm", True, "messages")
    # system prompt: the row's own wins over the config's; a messages list with its own system turn keeps it
    p = normalize('{"prompt": "q", "system": "row sys"}', COLS, system_prompt="cfg sys")
    assert p.messages[0] == {"role": "system", "content": "row sys"}
    p = normalize('{"prompt": "q"}', COLS, system_prompt="cfg sys", default_source="fallback")
    assert p.messages[0]["content"] == "cfg sys" and p.source == "fallback"
    # an empty id falls back to the content hash, which covers the system turn too
    a = normalize('{"prompt": "q", "id": ""}', COLS)
    b = normalize('{"prompt": "q"}', COLS, system_prompt="cfg sys")
    assert a.prompt_id.startswith("h-") and not a.id_given and a.prompt_id != b.prompt_id


# --------------------------------------------------------------------------- ids


def test_ids_are_stable_and_sensitive_to_each_part():
    # pinned: a change here changes every sample_id of every dataset ever written
    assert sample_id("p1", "think", 200, 0, "fp") == "3b7e63356f29fd79387af10f"
    assert sample_seed(0, "p1", "think", 0) == 1779911278
    base = sample_id("p1", "think", 200, 0, "fp")
    variants = [
        sample_id("p2", "think", 200, 0, "fp"),
        sample_id("p1", "no_think", 200, 0, "fp"),
        sample_id("p1", "think", None, 0, "fp"),
        sample_id("p1", "think", 200, 1, "fp"),
        sample_id("p1", "think", 200, 0, "fp2"),
    ]
    assert len({base, *variants}) == 6
    assert 0 <= sample_seed(0, "p1", "think", 0) < 2**31
    assert content_prompt_id([{"role": "user", "content": "x"}]) != content_prompt_id(
        [{"role": "user", "content": "y"}]
    )


def _plan(cfg):
    return plan_samples(cfg.generation, cfg.teacher.model, cfg.teacher.dialect)


def test_generation_fingerprint_follows_the_mode_settings():
    base = {"input": {"path": "p"}, "teacher": {"model": "m"}}
    a = _plan(load_config(data=base))
    b = _plan(load_config(data=base, overrides=["generation.seed=1"]))
    c = _plan(load_config(data={**base, "generation": {"samples_per_prompt": 3}}))
    assert len(a) == 2 and len(c) == 6
    assert a[0].generation_fp != b[0].generation_fp  # another seed is another sample
    assert a[0].generation_fp == c[0].generation_fp  # drawing more samples keeps the first ones' ids
    assert a[0].generation_fp != a[1].generation_fp  # modes differ


# ---------------------------------------------------------------- input resolution


def test_resolve_input_globs_folders_and_saved_datasets(tmp_path: Path):
    import datasets

    for i in range(2):
        (tmp_path / f"p{i}.jsonl").write_text('{"prompt": "q"}\n')
    assert resolve_input(str(tmp_path / "*.jsonl")).paths == [str(tmp_path / "p0.jsonl"), str(tmp_path / "p1.jsonl")]
    pq.write_table(pa.table({"prompt": ["q"]}), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="several formats"):
        resolve_input(str(tmp_path))
    assert resolve_input(str(tmp_path / "x.parquet")).format == "parquet"
    datasets.Dataset.from_dict({"prompt": ["a", "b"]}).save_to_disk(str(tmp_path / "saved"))
    files = resolve_input(str(tmp_path / "saved"))
    assert files.format == "hf_saved" and files.paths[0].endswith(".arrow")
    with pytest.raises(InputError, match="nothing at"):
        resolve_input(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError, match="no JSONL, Parquet"):
        resolve_input(str(tmp_path / "*.csv"))


def test_count_rows_matches_each_format(tmp_path: Path):
    import datasets

    from pipeline.runs.plan import count_rows

    (tmp_path / "a.jsonl").write_text('{"prompt": "q"}\n\nnot json\n{"prompt": "r"}\n')
    pq.write_table(pa.table({"prompt": ["q"] * 5}), tmp_path / "b.parquet")
    datasets.Dataset.from_dict({"prompt": ["a", "b", "c"]}).save_to_disk(str(tmp_path / "saved"))
    assert count_rows(resolve_input(str(tmp_path / "a.jsonl"))) == 3  # blank lines are not rows
    assert count_rows(resolve_input(str(tmp_path / "b.parquet"))) == 5
    assert count_rows(resolve_input(str(tmp_path / "saved"))) == 3


# ------------------------------------------------------------------------- parse


def _parse_stage():
    from pipeline.stages.parse import Parse, ParseSettings

    cfg = load_config(data={"input": {"path": "p"}, "teacher": {"model": str(ARTIFACT_DIR), "dialect": "qwen3"}})
    return Parse(ParseSettings.of(cfg))


def _row(tok, generated: str, prefill: str = "", finish: str = "stop", budget: int | None = None) -> dict:
    return {
        "status": "pending",
        "messages": [{"role": "user", "content": "q"}],
        "prefill": prefill,
        "generated": generated,
        "completion_token_ids": tok.encode(generated, add_special_tokens=False),
        "finish_reason": finish,
        "thinking_budget": budget,
    }


@pytest.mark.parametrize(
    "generated, prefill, finish, expect",
    [
        # closed block, natural stop
        (
            "<think>\n1+1=2\n</think>\n\n\\boxed{2}",
            "",
            "stop",
            dict(thinking="1+1=2", answer="\\boxed{2}", extracted_answer="2", thinking_tokens=7),
        ),
        # unclosed and cut by length: all thinking, no answer (the format filter rejects it)
        ("<think>\n1+1=", "", "length", dict(answer="", thinking="1+1=", answer_tokens=0, finish_reason="length")),
        # no-think: the empty block is in the prompt, the completion keeps it
        ("\\boxed{2}", "<think>\n\n</think>\n\n", "stop", dict(thinking="", answer="\\boxed{2}", thinking_tokens=0)),
        # empty thinking
        ("<think>\n\n</think>\n\n2", "", "stop", dict(thinking="", answer="2", thinking_tokens=2)),
        # two think blocks: answer after the last, thinking from the first
        ("<think>\na\n</think>\n\nx<think>\nb\n</think>\n\n2", "", "stop", dict(thinking="a", answer="2")),
        # a stray closing tag inside the answer
        ("<think>\na\n</think>\n\n2 </think> 3", "", "stop", dict(thinking="a", answer=" 3")),
    ],
)
def test_parse_table(tiny_tokenizer, generated, prefill, finish, expect):
    out = _parse_stage().parse(_row(tiny_tokenizer, generated, prefill, finish))
    assert out["status"] == "parsed"
    for k, v in expect.items():
        assert out[k] == v, (k, out[k])
    assert out["messages"][-1] == {"role": "assistant", "content": prefill + generated}
    assert out["completion_tokens"] == len(tiny_tokenizer.encode(generated, add_special_tokens=False))
    if generated.startswith("<think>") and "</think>" in generated:  # every token is in exactly one part
        assert out["thinking_tokens"] + out["answer_tokens"] + 2 == out["completion_tokens"]


def test_parse_detects_the_forced_budget_end(tiny_tokenizer):
    from pipeline.dialects import get_dialect

    stage = _parse_stage()
    thought = "3+4=7, 7*2=14"
    n = len(tiny_tokenizer.encode("\n" + thought, add_special_tokens=False))
    forced = "<think>\n" + thought + get_dialect("qwen3").budget_end_str() + "\n\n\\boxed{14}"
    hit = stage.parse(_row(tiny_tokenizer, forced, budget=n))
    assert hit["budget_hit"] and hit["thinking_tokens"] == n and hit["answer"] == "\\boxed{14}"
    natural = stage.parse(_row(tiny_tokenizer, "<think>\n" + thought + "\n</think>\n\n\\boxed{14}", budget=n + 5))
    assert not natural["budget_hit"] and natural["thinking_tokens"] == n + 1


# ------------------------------------------------------------ replica error handling

SAMPLING = {
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": -1,
    "min_p": 0.0,
    "presence_penalty": 0.0,
    "repetition_penalty": 1.0,
    "max_tokens": 8,
}


class IdsTokenizer:
    """Token ids written out as text: what a stand-in engine needs of a tokenizer."""

    def encode(self, text, add_special_tokens=False):
        return [int(t) for t in text.split()] if text.strip() and text.split()[0].isdigit() else [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


class FakeEngine:
    """A stand-in engine (``pipeline.engine.Engine``): fails the request whose prompt starts with 666."""

    tokenizer = IdsTokenizer()

    async def complete(self, prompt_ids, params, request_id):
        from pipeline.engine import Completion

        if prompt_ids[0] == 666:
            raise ValueError("token id 666 is out of vocabulary")
        return Completion("ok", [1, 2], "stop")

    def shutdown(self):
        pass


def generate_stage(engine, deaths=None, **settings):
    from pipeline.stages.generate import Generate, GenerateSettings

    s = dict(engine_args={}, dialect="qwen3", modes=(), max_in_flight=4, max_model_len=1024) | settings
    return Generate(GenerateSettings(**s), engine=engine, name="fake:1", deaths=deaths)


def test_a_failed_request_becomes_an_error_row_and_the_batch_goes_on():
    from pipeline.schema import to_table

    rep = generate_stage(FakeEngine())
    rows = [
        {
            "status": "pending",
            "sample_id": f"s{i}",
            "prompt_token_ids": [ids, 5],
            "sampling": SAMPLING,
            "seed": 1,
            "thinking_budget": None,
            "messages": [{"role": "user", "content": "q"}],
            "reference": None,
        }
        for i, ids in enumerate([5, 666, 7])
    ]
    rows.append({"status": "error", "sample_id": "s3", "error": "empty_prompt"})

    async def go():
        return [t async for t in rep(to_table(rows))]

    out = asyncio.run(go())[0].to_pylist()
    assert [r["status"] for r in out] == ["pending", "error", "pending", "error"]
    assert out[1]["error"] == "engine_error" and "out of vocabulary" in out[1]["detail"]
    assert out[1]["stage"] == "generate" and json.loads(out[1]["input"])["messages"][0]["content"] == "q"
    assert out[0]["generated"] == "ok" and out[0]["finish_reason"] == "stop" and out[0]["replica"] == "fake:1"
    assert out[3]["error"] == "empty_prompt"  # rows that were already errors pass through untouched


def test_stop_loops_reaches_every_request_and_a_stopped_loop_is_counted_with_the_tokens_it_saved():
    from pipeline.engine import Completion
    from pipeline.schema import to_table
    from pipeline.tally import Tally

    class LoopingEngine(FakeEngine):
        seen = []

        async def complete(self, prompt_ids, params, request_id):
            self.seen.append(params.stop_loops)
            return Completion("<think>\nagain again", [1] * 120, "repetition")

    rep = generate_stage(LoopingEngine(), stop_loops=(8, 64, 6))
    sampling = {**SAMPLING, "max_tokens": 400}
    # a budgeted two-stage sample: a loop stopped in its first stage is final, no continuation
    rows = [
        {
            "status": "pending",
            "sample_id": "s0",
            "prompt_token_ids": [5, 5],
            "sampling": sampling,
            "seed": 1,
            "thinking_budget": 50,
            "budget_strategy": "two_stage",
            "prefill": "",
            "messages": [{"role": "user", "content": "q"}],
            "reference": None,
        }
    ]

    async def go():
        return [t async for t in rep(to_table(rows))]

    out = asyncio.run(go())[0].to_pylist()
    assert LoopingEngine.seen == [(8, 64, 6)] and out[0]["finish_reason"] == "repetition"
    t = Tally.of(
        to_table(
            [
                {
                    "status": "rejected",
                    "reject_reason": "repetition",
                    "finish_reason": "repetition",
                    "sampling": sampling,
                    "thinking_tokens": 100,
                    "answer_tokens": 0,
                    "mode": "think",
                }
            ]
        )
    )
    assert (t.loops_stopped, t.loop_tokens_saved) == (1, 300)


def test_a_stage_names_the_columns_a_batch_lacks():
    from pipeline.stages import MissingColumns

    rep = generate_stage(FakeEngine())
    with pytest.raises(
        MissingColumns,
        match=r"stage 'generate' reads columns \[.*'prompt_token_ids'.*\]"
        r".*present: \['sample_id', 'status'\]",
    ):
        asyncio.run(anext(rep(pa.table({"status": ["pending"], "sample_id": ["s"]}))))


def test_the_stage_lists_chain_their_columns():
    from pipeline.stages import FILTER_JOB, GENERATION, Context, MissingColumns, Stage, stages_for
    from pipeline.stages.parse import Parse

    cfg = load_config(
        data={
            "input": {"path": "p"},
            "teacher": {"model": "m"},
            "generation": {"adaptive": {}, "samples_per_prompt": 2},
        }
    )
    assert [s.name for s in stages_for(GENERATION, Context(cfg))] == [
        "prepare",
        "generate",
        "parse",
        "filter",
        "select",
    ]
    plain = load_config(data={"input": {"path": "p"}, "teacher": {"model": "m"}})
    assert [s.name for s in stages_for(GENERATION, Context(plain))][-1] == "filter"  # select only when adaptive
    from pipeline.config import FilterJobConfig

    assert [s.name for s in stages_for(FILTER_JOB, Context(FilterJobConfig()))] == ["load", "filter"]
    # a stage that needs a column nothing before it writes is refused before anything runs
    import pipeline.stages as stages

    class NeedsVerdicts(Stage):
        name, reads = "needs_verdicts", ("verdicts",)

    stages.needs_verdicts = type("M", (), {"STAGE": NeedsVerdicts})
    import sys

    sys.modules["pipeline.stages.needs_verdicts"] = stages.needs_verdicts
    try:
        with pytest.raises(MissingColumns, match="'needs_verdicts' reads columns \\['verdicts'\\]"):
            stages_for(("needs_verdicts", "prepare"), Context(plain))
        assert (
            stages_for(("prepare", "generate", "parse", "filter", "needs_verdicts"), Context(plain))[-1]
            is NeedsVerdicts
        )
    finally:
        del sys.modules["pipeline.stages.needs_verdicts"]
    assert Parse.reads  # every stage declares what it reads
    # and a stage whose writes the schema does not hold (to_table would drop them) is refused too
    from pipeline.stages import UnknownColumns

    class WritesScore(Stage):
        name, reads, writes = "writes_score", ("status",), ("status", "my_score")

    sys.modules["pipeline.stages.writes_score"] = type("M", (), {"STAGE": WritesScore})
    try:
        with pytest.raises(UnknownColumns, match="'writes_score' writes columns \\['my_score'\\]"):
            stages_for(("prepare", "writes_score"), Context(plain))
    finally:
        del sys.modules["pipeline.stages.writes_score"]


# ------------------------------------------------------------------ sink tally, CLI


def test_tally_counts_every_row_once():
    from pipeline.schema import to_table
    from pipeline.tally import Tally

    rows = [
        {
            "status": "accepted",
            "mode": "think",
            "source": "s",
            "thinking_tokens": 5,
            "completion_tokens": 9,
            "replica": "r1",
            "t_submit": 1.0,
            "t_done": 3.0,
        },
        {
            "status": "rejected",
            "reject_reason": "truncated",
            "mode": "think",
            "source": "s",
            "replica": "r1",
            "t_submit": 2.0,
            "t_done": 5.0,
            "completion_tokens": 4,
        },
        {"status": "error", "error": "empty_prompt"},
        {"status": "pending"},
    ]
    t = Tally.total([Tally.of(to_table(rows[:2])), Tally.of(to_table(rows[2:]))])
    assert t.rows == 4 and sum(t.status.values()) == 4
    assert t.rejected == {"truncated": 1} and t.errors == {"empty_prompt": 1, "unfinished": 1}
    assert t.tokens["thinking_tokens"] == 5 and t.by_mode == {("think", "accepted"): 1, ("think", "rejected"): 1}
    w = t.replicas["r1"]
    assert (w.start, w.end, w.tokens, t.t_first, t.t_last) == (1.0, 5.0, 13, 1.0, 5.0)


@pytest.mark.parametrize("config", ["configs/local.yaml", "configs/qwen3-32b.yaml"])
def test_dry_run_prints_the_plan_and_starts_nothing(config, capsys, tmp_path):
    from jobs.generate import main

    argv = ["--config", config, "--dry-run"]
    if "qwen3" in config:  # the cluster config reads from object storage; point it at a local file
        (tmp_path / "p.jsonl").write_text('{"messages": [{"role": "user", "content": "q"}]}\n' * 3)
        argv += ["--set", f"input.path={tmp_path / 'p.jsonl'}"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "plan (dry run: nothing started)" in out and "resolved config" in out
    if "local" in config:
        assert "256 prompts" in out and "1024 expected" in out and "2 replica(s)" in out
    else:
        assert "3 prompts" in out and "8 replica(s)" in out and "num_gpus=2" in out


@pytest.mark.parametrize("tp", [1, 2, 8])
def test_a_replica_of_tp_gpus_asks_ray_for_one_bundle_per_tp_worker(tp, ray_session, tmp_path, capsys):
    """GPU path (not run on a GPU here): what each replica requests from Ray, checked on a real Ray.
    The placement group Ray is asked for stays pending (this machine has no GPU) and is removed."""
    import ray

    from jobs.generate import main
    from pipeline.runs.plan import make_plan
    from pipeline.stages import Context
    from pipeline.stages.generate import Generate, engine_kwargs

    (tmp_path / "p.jsonl").write_text('{"prompt": "q"}\n')
    sets = [
        f"input.path={tmp_path / 'p.jsonl'}",
        "teacher.device=gpu",
        f"teacher.engine.tensor_parallel_size={tp}",
        "teacher.replicas=3",
        f"output.path={tmp_path}",
    ]
    cfg = load_config("configs/local.yaml", sets)
    opts = Generate.ray_options(Context(cfg, make_plan(cfg)))
    backend = engine_kwargs(cfg.teacher, cfg.generation.modes).get("distributed_executor_backend")
    assert opts["compute"].max_size == 3 and opts["num_cpus"] == 1
    if tp == 1:  # one GPU: the actor holds it, vLLM's single-process executor
        assert opts["num_gpus"] == 1 and "ray_remote_args_fn" not in opts and backend is None
    else:  # the GPUs belong to a placement group per replica; vLLM's Ray executor fills it
        assert opts["num_gpus"] == 0 and backend == "ray"
        strategy = opts["ray_remote_args_fn"]()["scheduling_strategy"]
        group = strategy.placement_group
        try:
            assert group.bundle_specs == [{"CPU": 1, "GPU": 1}] * tp
            assert strategy.placement_group_capture_child_tasks
        finally:
            ray.util.remove_placement_group(group)
    assert main(["--config", "configs/local.yaml", "--dry-run", *[a for s in sets for a in ("--set", s)]]) == 0
    out = capsys.readouterr().out
    expected = (
        f"3 replica(s), each a placement group of {tp} bundles"
        if tp > 1
        else "3 replica(s), each an actor with num_cpus=1, num_gpus=1"
    )
    assert f"placement {expected}" in out


def test_replicas_run_at_normal_cpu_priority_and_the_cpu_stages_below_them(ray_session, tmp_path):
    """Ray starts its workers at niceness 15. A replica (and the engine processes it starts) runs
    with the generate stage's own runtime environment at 0, so the CPU stages (at Ray's 15) yield
    to the engines' scheduling loops; checked on real Ray actors started with those options."""
    import os

    import ray

    from pipeline.runs.plan import make_plan
    from pipeline.stages import Context
    from pipeline.stages.generate import REPLICA_NICENESS, Generate

    (tmp_path / "p.jsonl").write_text('{"prompt": "q"}\n')
    cfg = load_config("configs/local.yaml", [f"input.path={tmp_path / 'p.jsonl'}", f"output.path={tmp_path}"])
    env = Generate.ray_options(Context(cfg, make_plan(cfg)))["runtime_env"]

    @ray.remote(num_cpus=0)
    class Probe:
        def niceness(self):
            return os.nice(0)

    replica, stage = Probe.options(runtime_env=env).remote(), Probe.remote()
    try:
        assert ray.get(replica.niceness.remote()) == REPLICA_NICENESS == 0
        assert ray.get(stage.niceness.remote()) > REPLICA_NICENESS
    finally:
        for actor in (replica, stage):
            ray.kill(actor)


def test_requests_ask_vllm_for_their_final_output_only():
    """``LLM.generate`` does this itself; the async engine otherwise builds each running request's
    cumulative output at every step, which the replicas never read."""
    from vllm.sampling_params import RequestOutputKind

    from pipeline.engine import Params, vllm_sampling

    sp = vllm_sampling(Params(0.6, 0.95, 20, 0.0, 0.0, 1.0, 32, seed=1))
    assert sp.output_kind == RequestOutputKind.FINAL_ONLY and sp.max_tokens == 32 and sp.seed == 1


def test_a_bad_teacher_path_or_output_fails_before_anything_starts(capsys, tmp_path):
    from jobs.generate import main

    assert (
        main(
            [
                "--config",
                "configs/local.yaml",
                "--set",
                f"teacher.model={tmp_path}/none",
                "--set",
                f"output.path={tmp_path}/out",
            ]
        )
        == 2
    )
    assert "teacher.model: nothing at" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    assert (
        main(
            [
                "--config",
                "configs/local.yaml",
                "--set",
                f"teacher.model={tmp_path}/half",
                "--set",
                f"output.path={tmp_path}/out",
            ]
        )
        == 2
    )
    assert "no tokenizer.json / tokenizer_config.json at" in capsys.readouterr().err
    assert main(["--config", "configs/local.yaml", "--set", "output.path=/proc/thinkmill-test"]) == 2
    assert "output.path: cannot write the run folder /proc/thinkmill-test/local" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # the teacher was refused before the run folder was made


def test_cli_rejects_bad_config_and_input_with_exit_2(capsys, tmp_path):
    from jobs.generate import main

    assert main(["--config", "configs/local.yaml", "--set", "teacher.replica=3", "--dry-run"]) == 2
    assert "teacher.replica: unknown key" in capsys.readouterr().err
    assert main(["--config", "configs/local.yaml", "--set", f"input.path={tmp_path}/none.jsonl", "--dry-run"]) == 2
    assert "input.path: nothing at" in capsys.readouterr().err
    assert (
        main(
            [
                "--config",
                "configs/local.yaml",
                "--set",
                "filters.order=[format, contamination]",
                "--set",
                f"filters.contamination.eval_files=[{tmp_path}/gsm8k.jsonl]",
                "--dry-run",
            ]
        )
        == 2
    )
    assert "filters.contamination.eval_files.0: nothing at" in capsys.readouterr().err


# ------------------------------------------------------------- the read stage on Ray


def test_read_stage_reads_every_format_with_row_locations(ray_session, tmp_path: Path):
    import datasets

    from pipeline.read import read_input

    rows = [{"prompt": f"q{i}", "reference": i} for i in range(3)]
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n{broken\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))

    jsonl = read_input(resolve_input(f"file://{tmp_path}/j/*.jsonl")).take_all()
    assert [r["_row"] for r in jsonl] == [1, 2, 3, 5]  # line numbers; the blank line is skipped
    assert jsonl[-1]["_raw"] == "{broken"  # kept raw: prepare turns it into an error row
    for spec in (str(tmp_path / "b.parquet"), str(tmp_path / "saved")):
        got = sorted(read_input(resolve_input(spec)).take_all(), key=lambda r: r["_row"])
        assert [json.loads(r["_raw"]) for r in got] == rows and [r["_row"] for r in got] == [0, 1, 2]
    assert len(read_input(resolve_input(str(tmp_path / "b.parquet")), limit=2).take_all()) == 2


# ----------------------------------------------------------- two-stage budget (fake engine)


class ScriptedEngine:
    """A stand-in engine whose 'model' always writes FULL for the base prompt and ANSWER after a forced end."""

    THINK, END, EOS = 1, 2, 99
    FULL = [1] + list(range(10, 20)) + [2, 50, 51, 52]  # <think>, 10 thinking tokens, </think>, answer
    FORCED = [7, 8, 2]  # early-stop text ids ending in </think>
    ANSWER = [60, 61]

    class Tokenizer(IdsTokenizer):
        def encode(self, text, add_special_tokens=False):  # the dialect's forced text and </think>
            return ScriptedEngine.FORCED if "Considering" in text else [ScriptedEngine.END]

    tokenizer = Tokenizer()

    def __init__(self):
        self.requests = []

    async def complete(self, prompt_ids, params, request_id):
        from pipeline.engine import Completion

        prefix = prompt_ids[1:]  # the base prompt is one token
        self.requests.append((list(prefix), params.max_tokens, params.seed))
        out = self.ANSWER if prefix[-len(self.FORCED) :] == self.FORCED else self.FULL[len(prefix) :]
        finish = "stop" if len(out) <= params.max_tokens else "length"
        out = out[: params.max_tokens]
        return Completion(" ".join(map(str, out)), out, finish)

    def shutdown(self):
        pass


def _two_stage(budget: int, max_tokens: int = 100):
    rep = generate_stage(ScriptedEngine())
    row = {
        "sample_id": "s",
        "prompt_token_ids": [0],
        "prefill": "",
        "thinking_budget": budget,
        "budget_strategy": "two_stage",
        "sampling": {**SAMPLING, "max_tokens": max_tokens},
        "seed": 5,
    }
    return asyncio.run(rep._two_stage(row, row["prompt_token_ids"], row["prefill"], row["seed"])), rep.engine.requests


def test_two_stage_under_budget_is_one_request_and_untouched():
    c, reqs = _two_stage(budget=30)
    assert c.token_ids == ScriptedEngine.FULL and c.finish_reason == "stop" and len(reqs) == 1


def test_two_stage_forces_the_end_when_thinking_is_still_open():
    c, reqs = _two_stage(budget=4)
    assert c.token_ids == [1, 10, 11, 12, 13] + ScriptedEngine.FORCED + ScriptedEngine.ANSWER
    assert reqs[0][1] == 5  # <think> + 4 thinking tokens
    assert reqs[1][0] == [1, 10, 11, 12, 13] + ScriptedEngine.FORCED and reqs[1][2] == 6  # own seed


def test_two_stage_lets_a_closed_thinking_answer_without_forcing():
    c, reqs = _two_stage(budget=11)  # thinking (10) + </think> fit; the answer crosses the budget
    assert c.token_ids == ScriptedEngine.FULL and len(reqs) == 2
    assert ScriptedEngine.FORCED[0] not in c.token_ids


def test_two_stage_respects_max_tokens():
    c, _ = _two_stage(budget=4, max_tokens=7)
    assert len(c.token_ids) <= 7 and c.finish_reason == "length"


class ForcingEngine:
    """A stand-in 'model' for s1's forcing: it thinks 4 tokens and ends its thinking; after a
    "Wait" it thinks 3 more and ends again; after an end of thinking it answers. It honours
    ``stop_token_ids`` (the stop token is in the output, as in vLLM) and ``max_tokens``."""

    THINK, END, WAIT, EOS = 1, 2, 3, 99
    FORCED = [7, 8, 2]  # the early-stop text, ending in </think>
    ANSWER = [60, 61, 99]

    class Tokenizer(IdsTokenizer):
        def encode(self, text, add_special_tokens=False):
            return {"Wait": [3], "<think>": [1], "</think>": [2]}.get(text, ForcingEngine.FORCED)

    tokenizer = Tokenizer()

    def __init__(self):
        self.requests = []

    async def complete(self, prompt_ids, params, request_id):
        from pipeline.engine import Completion

        prefix = prompt_ids[1:]  # the base prompt is one token
        self.requests.append((list(prefix), params.max_tokens, params.seed, params.stop_token_ids))
        if not prefix:
            out = [1, 10, 11, 12, 13, 2] + self.ANSWER
        elif prefix[-1] == self.WAIT:
            out = [20 + len(prefix), 21 + len(prefix), 22 + len(prefix), 2] + self.ANSWER
        else:
            out = self.ANSWER
        stop = next((i for i, t in enumerate(out) if t in (params.stop_token_ids or ())), None)
        out = out[: stop + 1] if stop is not None else out
        finish = "stop" if len(out) <= params.max_tokens else "length"
        out = out[: params.max_tokens]
        return Completion(" ".join(map(str, out)), out, finish)

    def shutdown(self):
        pass


def _forced(least: int, budget: int | None = None, max_tokens: int = 100, max_extensions: int = 4):
    from pipeline.config import ModeConfig

    mode = ModeConfig(name="s1", min_thinking_tokens=least, max_extensions=max_extensions, thinking_budget=budget)
    rep = generate_stage(ForcingEngine(), modes=(mode,))
    row = {
        "sample_id": "s",
        "prompt_token_ids": [0],
        "prefill": "",
        "thinking_budget": budget,
        "mode": "s1",
        "min_thinking_tokens": least,
        "budget_strategy": "two_stage",
        "sampling": {**SAMPLING, "max_tokens": max_tokens},
        "seed": 5,
    }
    c = asyncio.run(rep._generate(row, row["prompt_token_ids"], row["prefill"], row["seed"]))
    return c, row, rep.engine.requests


def test_forcing_leaves_thinking_that_is_long_enough_as_it_is():
    c, row, reqs = _forced(least=3)
    assert c.token_ids == [1, 10, 11, 12, 13, 2, 60, 61, 99] and c.finish_reason == "stop"
    assert (row["extensions"], row["unforced_thinking_tokens"]) == (0, 4)
    assert [r[3] for r in reqs] == [(2,), None]  # the thinking stops at its end; the answer does not


def test_forcing_replaces_an_early_end_of_thinking_by_wait_and_goes_on():
    c, row, reqs = _forced(least=6)
    assert c.token_ids == [1, 10, 11, 12, 13, 3, 26, 27, 28, 2, 60, 61, 99]
    assert (row["extensions"], row["unforced_thinking_tokens"]) == (1, 4)
    assert reqs[1][0] == [1, 10, 11, 12, 13, 3]  # the continuation: the thinking so far, then "Wait"
    assert len({r[2] for r in reqs}) == len(reqs)  # each request its own seed


def test_forcing_stops_extending_after_max_extensions():
    c, row, reqs = _forced(least=50, max_extensions=2)
    assert c.token_ids.count(ForcingEngine.WAIT) == 2 and c.token_ids[-3:] == ForcingEngine.ANSWER
    assert row["extensions"] == 2 and len(reqs) == 4  # think, 2 extensions, answer


def test_forcing_with_a_budget_forces_the_end_when_the_extension_reaches_it():
    c, row, _ = _forced(least=5, budget=6)
    # <think> + 4 + Wait = 6 thinking positions, one more token fits the budget, then the early stop
    assert c.token_ids == [1, 10, 11, 12, 13, 3, 26] + ForcingEngine.FORCED + [60, 61, 99]
    assert row["extensions"] == 1


def test_forcing_respects_max_tokens():
    c, row, _ = _forced(least=6, max_tokens=8)
    assert c.token_ids == [1, 10, 11, 12, 13, 3, 26, 27] and c.finish_reason == "length"


def test_only_the_engine_strategy_passes_an_engine_budget():
    from pipeline.engine import request_params

    row = {"sampling": SAMPLING, "seed": 3, "thinking_budget": 32}
    assert request_params({**row, "budget_strategy": "engine"}).thinking_token_budget == 32
    assert request_params({**row, "budget_strategy": "two_stage"}).thinking_token_budget is None
    assert request_params(row, max_tokens=5, seed=9).but(top_k=3) == request_params(row).but(
        max_tokens=5, seed=9, top_k=3
    )


class SlowEngine(FakeEngine):
    """Answers at once, except prompts starting with 9, which never finish."""

    def __init__(self):
        self.cancelled = []

    async def complete(self, prompt_ids, params, request_id):
        if prompt_ids[0] == 9:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled.append(request_id)
                raise
        return await super().complete(prompt_ids, params, request_id)


def test_a_request_over_its_time_bound_is_aborted_and_an_error_row():
    from pipeline.schema import to_table

    engine = SlowEngine()
    rep = generate_stage(engine, request_timeout_s=0.5)
    rows = [
        {
            "status": "pending",
            "sample_id": f"s{i}",
            "prompt_token_ids": [first, 5],
            "sampling": SAMPLING,
            "seed": 1,
            "thinking_budget": None,
            "messages": [{"role": "user", "content": "q"}],
            "reference": None,
        }
        for i, first in enumerate([5, 9, 7])
    ]

    async def go():
        return [t async for t in rep(to_table(rows))]

    out = asyncio.run(go())[0].to_pylist()
    assert [r["status"] for r in out] == ["pending", "error", "pending"]
    assert out[1]["error"] == "request_timeout" and "0.5 s" in out[1]["detail"]
    assert engine.cancelled and engine.cancelled[0].startswith("s1-")  # the engine was told to stop it


def test_a_cluster_too_small_for_the_plan_is_refused_naming_what_is_missing(ray_session, tmp_path):
    import json as _json

    from pipeline.cluster import ClusterError
    from pipeline.loading import load_config
    from pipeline.runs.generate import run

    (tmp_path / "p.jsonl").write_text(_json.dumps({"prompt": "What is 1+1?"}) + "\n")
    cfg = load_config(
        "configs/local.yaml",
        [f"input.path={tmp_path / 'p.jsonl'}", f"output.path={tmp_path}/out", "teacher.replicas=12"],
    )
    with pytest.raises(ClusterError, match=r"needs at least 16 CPU \(the cluster has 8\): 12 replica\(s\) x 1 CPU"):
        run(cfg)  # the session's Ray has 8 logical CPUs; nothing was started on it
    # a custom resource no node has: refused at plan time too (Ray Data would wait for it forever)
    cfg = load_config(
        "configs/local.yaml",
        [
            f"input.path={tmp_path / 'p.jsonl'}",
            f"output.path={tmp_path}/out",
            "teacher.resources.custom.teacher_slot=1",
        ],
    )
    with pytest.raises(
        ClusterError,
        match=r"needs at least 2 teacher_slot \(the cluster has 0\): 2 replica\(s\) x "
        r"1 CPU, 0 GPU, 1 teacher_slot \(teacher.resources\)",
    ):
        run(cfg)


class PoisonEngine(FakeEngine):
    """Dies (as vLLM's engine does: EngineDead) whenever a prompt starting with 13 is in it."""

    def __init__(self, log):
        self.log = log

    async def complete(self, prompt_ids, params, request_id):
        from pipeline.engine import EngineDead

        self.log.append(request_id.rsplit("-", 1)[0])
        await asyncio.sleep(0.01)
        if prompt_ids[0] == 13:
            raise EngineDead("EngineCore died")
        return await super().complete(prompt_ids, params, request_id)


class ReplicaDied(BaseException):
    """Stands in for the replica process exiting (os._exit) in a test."""


def test_a_request_that_kills_its_engine_is_found_and_becomes_one_error_row(monkeypatch):
    from pipeline.schema import to_table
    from pipeline.stages.generate import Generate
    from pipeline.stages.generate.suspects import DeathBook

    def die():
        raise ReplicaDied

    monkeypatch.setattr(Generate, "_exit", staticmethod(die))
    book = DeathBook()
    rows = [
        {
            "status": "pending",
            "sample_id": f"s{i}",
            "prompt_token_ids": [first, 5],
            "sampling": SAMPLING,
            "seed": 1,
            "thinking_budget": None,
            "messages": [{"role": "user", "content": "q"}],
            "reference": None,
        }
        for i, first in enumerate([5, 13, 7])
    ]

    def attempt():  # what Ray does after a replica died: a fresh replica, the same batch again
        sent = []
        rep = generate_stage(PoisonEngine(sent), deaths=book)

        async def go():
            return [t async for t in rep(to_table(rows))]

        try:
            return asyncio.run(go())[0].to_pylist(), sent
        except ReplicaDied:
            return None, sent

    out, sent = attempt()
    assert out is None and set(sent) == {"s0", "s1", "s2"}  # all three in flight: all suspects
    out, sent = attempt()
    assert out is None  # suspects run alone: the engine died with s1 alone
    assert book.deaths["s1"][1] == 1 and book.deaths.get("s2", [0, 0])[1] == 0 and "s0" not in book.deaths
    out, sent = attempt()
    assert [r["status"] for r in out] == ["pending", "error", "pending"]
    assert out[1]["error"] == "engine_died" and "alone" in out[1]["detail"] and "s1" not in sent
    assert out[0]["generated"] == out[2]["generated"] == "ok"
    # the same replica started three times: two restarts, after two engine deaths (summary.json)
    assert book.stats() == {
        "replica_restarts": 2,
        "engine_deaths": 2,
        "engine_cores": {},
        "start_failures": [],
        "failed_starts": 0,
    }


def test_after_the_deadline_no_request_is_sent_and_prepare_takes_no_new_rows(tiny_tokenizer):
    import json as _json
    import time as _time

    import pyarrow as pa

    from pipeline.committed import TRANSIENT
    from pipeline.loading import load_config
    from pipeline.schema import to_table
    from pipeline.stages.prepare import Prepare, PrepareSettings
    from tests.tiny_teacher import ARTIFACT_DIR

    sent = []
    rep = generate_stage(PoisonEngine(sent), deadline=_time.time() - 1)
    rows = [
        {
            "status": "pending",
            "sample_id": "s0",
            "prompt_token_ids": [5, 5],
            "sampling": SAMPLING,
            "seed": 1,
            "thinking_budget": None,
            "messages": [{"role": "user", "content": "q"}],
            "reference": None,
        }
    ]

    async def go():
        return [t async for t in rep(to_table(rows))]

    out = asyncio.run(go())[0].to_pylist()
    assert not sent and out[0]["error"] == "deadline_reached" and "deadline_reached" in TRANSIENT
    cfg = load_config(data={"input": {"path": "p"}, "teacher": {"model": str(ARTIFACT_DIR)}})
    raws = pa.Table.from_pylist(
        [{"_path": "in.jsonl", "_row": 1, "_raw": _json.dumps({"prompt": "1+1?"}), "_error": None}]
    )
    assert Prepare(PrepareSettings.of(cfg, deadline=_time.time() + 600))(raws).num_rows > 0
    assert Prepare(PrepareSettings.of(cfg, deadline=_time.time() - 1))(raws).num_rows == 0
