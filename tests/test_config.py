"""Config loading: every error path names its key; the shipped configs validate."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from pipeline.config import JobConfig
from pipeline.loading import ConfigError, load_config

MIN = {"input": {"path": "p.jsonl"}, "teacher": {"model": "m"}}


def load(data, overrides=()):
    import copy

    return load_config(data=copy.deepcopy(data), overrides=list(overrides))


def test_minimal_config_gets_documented_defaults():
    cfg = load(MIN)
    assert isinstance(cfg, JobConfig)
    assert [m.name for m in cfg.generation.modes] == ["think", "no_think"]
    assert cfg.teacher.engine.trust_remote_code is False


@pytest.mark.parametrize(
    "data, key, words",
    [
        ({**MIN, "outptu": {}}, "outptu", ["unknown key", "allowed keys at <root>", "output"]),
        (
            {**MIN, "teacher": {"model": "m", "engine": {"max_model_lenn": 5}}},
            "teacher.engine.max_model_lenn",
            ["unknown key", "max_model_len"],
        ),
        (
            {**MIN, "teacher": {"model": "m", "engine": {"max_model_len": "long"}}},
            "teacher.engine.max_model_len",
            ["integer", "'long'"],
        ),
        (
            {**MIN, "teacher": {"model": "m", "engine": {"max_model_len": 0}}},
            "teacher.engine.max_model_len",
            ["greater than 0"],
        ),
        ({**MIN, "teacher": {"model": "m", "device": "tpu"}}, "teacher.device", ["'cpu' or 'gpu'", "'tpu'"]),
        (
            {**MIN, "generation": {"modes": [{"name": "a", "sampling": {"top_p": 1.5}}]}},
            "generation.modes.0.sampling.top_p",
            ["less than or equal to 1", "1.5"],
        ),
        ({**MIN, "generation": {"modes": [{"name": "a"}, {"name": "a"}]}}, "generation.modes", ["unique", "['a']"]),
        (
            {**MIN, "generation": {"modes": [{"name": "nt", "thinking": False, "thinking_budget": 10}]}},
            "generation.modes.0",
            ["thinking_budget needs thinking"],
        ),
        (
            {**MIN, "generation": {"samples_per_prompt": 0}},
            "generation.samples_per_prompt",
            ["greater than or equal to 1"],
        ),
        ({**MIN, "output": {"run_id": "a/b"}}, "output.run_id", ["pattern"]),
        ({"teacher": {"model": "m"}}, "input", ["Field required"]),
        (
            {**MIN, "teacher": {"model": "m", "dialect": "llama"}},
            "teacher.dialect",
            ["dialect must be one of ['gpt-oss', 'qwen3', 'r1'], got 'llama'"],
        ),
        (
            {**MIN, "teacher": {"model": "m", "device": "cpu", "engine": {"tensor_parallel_size": 2}}},
            "teacher",
            ["tensor_parallel_size must be 1 on device 'cpu', got 2"],
        ),
        (
            {**MIN, "teacher": {"model": "m", "device": "gpu", "isolate_cores": True}},
            "teacher",
            ["isolate_cores applies to device 'cpu' only", "got device 'gpu'"],
        ),
        (
            {**MIN, "teacher": {"model": "m", "replicas": 2, "min_replicas": 3}},
            "teacher",
            ["min_replicas (3) is more than replicas (2)"],
        ),
        ({**MIN, "teacher": {"model": "m", "start_timeout_s": 0}}, "teacher.start_timeout_s", ["greater than 0"]),
        (
            {**MIN, "teacher": {"model": "m", "resources": {"custom": {"GPU": 1}}}},
            "teacher.resources.custom",
            ["['GPU'] are not custom resources (use num_cpus / num_gpus"],
        ),
        (
            {**MIN, "teacher": {"model": "m", "resources": {"custom": {"slot": 0}}}},
            "teacher.resources.custom.slot",
            ["greater than 0"],
        ),
    ],
)
def test_errors_name_the_key_path(data, key, words):
    with pytest.raises(ConfigError) as exc:
        load(data)
    msg = str(exc.value)
    assert f"  {key}: " in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def test_overrides_apply_and_are_validated():
    cfg = load(MIN, ["generation.samples_per_prompt=4", "teacher.replicas=3", "output.run_id=nightly-1"])
    assert (cfg.generation.samples_per_prompt, cfg.teacher.replicas, cfg.output.run_id) == (4, 3, "nightly-1")
    with pytest.raises(ConfigError, match=r"generation.samples_per_prompt: .*got 'x'"):
        load(MIN, ["generation.samples_per_prompt=x"])
    with pytest.raises(ConfigError, match="key.path=value"):
        load(MIN, ["novalue"])


def test_yaml_errors_are_config_errors(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["local.yaml", "qwen3-32b.yaml", "sweep.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(CONFIGS / name)
    assert {"think", "no_think"} <= {m.name for m in cfg.generation.modes}  # sweep.yaml adds think_longer


def test_local_config_points_at_the_committed_teacher():
    from pipeline.dialects import get_dialect
    from tests.tiny_teacher import ARTIFACT_DIR, PROMPTS_PATH

    cfg = load_config(CONFIGS / "local.yaml")
    root = CONFIGS.parent
    assert (root / cfg.teacher.model).resolve() == ARTIFACT_DIR
    assert (root / cfg.input.path).resolve() == PROMPTS_PATH
    assert cfg.teacher.device == "cpu" and cfg.teacher.replicas == 2
    get_dialect(cfg.teacher.dialect)


def test_qwen3_32b_uses_qwen3_recommended_sampling():
    modes = {m.name: m for m in load_config(CONFIGS / "qwen3-32b.yaml").generation.modes}
    t, n = modes["think"].sampling, modes["no_think"].sampling
    assert (t.temperature, t.top_p, t.top_k) == (0.6, 0.95, 20)
    assert (n.temperature, n.top_p, n.top_k) == (0.7, 0.8, 20)


def test_budget_sweeps_and_strategies_validate():
    from pipeline.config import ModeConfig

    m = ModeConfig(name="think", thinking_budget=[16, 64, None])
    assert m.budgets == [16, 64, None] and m.budget_strategy == "two_stage"
    assert ModeConfig(name="t", thinking_budget=32).budgets == [32] and ModeConfig(name="t").budgets == [None]
    for bad, words in (([16, 16], "distinct budgets"), ([0, 8], "must be > 0"), ([], "distinct budgets")):
        with pytest.raises(ConfigError, match=words):
            load_config(
                data={
                    "input": {"path": "p"},
                    "teacher": {"model": "m"},
                    "generation": {"modes": [{"name": "t", "thinking_budget": bad}]},
                }
            )
    with pytest.raises(ConfigError, match=r"generation.modes.0.budget_strategy: .*'two_stage' or 'engine'"):
        load_config(
            data={
                "input": {"path": "p"},
                "teacher": {"model": "m"},
                "generation": {"modes": [{"name": "t", "budget_strategy": "forced"}]},
            }
        )


def test_overrides_reach_into_lists(tmp_path):
    cfg = load_config(
        "configs/local.yaml", ["generation.modes.0.thinking_budget=null", "generation.modes.1.sampling.max_tokens=32"]
    )
    assert cfg.generation.modes[0].thinking_budget is None and cfg.generation.modes[1].sampling.max_tokens == 32
    with pytest.raises(ConfigError, match="is not an index of that list"):
        load_config("configs/local.yaml", ["generation.modes.5.thinking_budget=8"])


def test_run_id_fills_in_the_date_for_a_nightly_schedule():
    from datetime import datetime

    before = datetime.now(UTC).strftime("%Y-%m-%d")
    cfg = load_config(CONFIGS / "qwen3-32b.yaml")
    after = datetime.now(UTC).strftime("%Y-%m-%d")  # the clock may pass midnight in between
    assert cfg.output.run_id in {f"qwen3-32b-{before}", f"qwen3-32b-{after}"}
    with pytest.raises(ConfigError, match=r"output.run_id.*only \{date\} and \{hour\}"):
        load_config(CONFIGS / "qwen3-32b.yaml", ["output.run_id=night-{night}"])


def test_a_relative_output_path_is_refused_when_joining_a_cluster(tmp_path, monkeypatch):
    from pipeline.runs.plan import make_plan

    (tmp_path / "p.jsonl").write_text('{"prompt": "What is 1+1?"}\n')
    cfg = load_config(CONFIGS / "local.yaml", [f"input.path={tmp_path / 'p.jsonl'}", "output.path=out"])
    assert make_plan(cfg).run_url.endswith("out/local")  # embedded Ray: relative to where it runs
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    with pytest.raises(ConfigError, match=r"output.path: 'out' is relative, and this job joins a Ray cluster"):
        make_plan(cfg)
    absolute = load_config(CONFIGS / "local.yaml", [f"input.path={tmp_path / 'p.jsonl'}", f"output.path={tmp_path}/o"])
    assert make_plan(absolute).run_url == f"{tmp_path}/o/local"
