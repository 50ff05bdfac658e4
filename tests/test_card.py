"""The dataset card (``pipeline/report/card.py``): its header is a Hugging Face dataset card's YAML, its
counts are the summary's, and the columns a run kind leaves empty are marked. The card of a real
run, and ``datasets.load_dataset`` on its folder, are checked in ``tests/test_generate_job.py``."""

from __future__ import annotations

import logging

import yaml

from pipeline.loading import load_config
from pipeline.report.card import COLUMNS, render
from pipeline.schema import SAMPLE


def config(**generation):
    return load_config(
        data={
            "input": {"path": "p.jsonl"},
            "teacher": {"model": "/models/t", "name": "org/Teacher"},
            "output": {"license": "apache-2.0"},
            "generation": generation,
        }
    )


def summary(**counts):
    return {
        "run_id": "night-1",
        "teacher": "org/Teacher",
        "output": "/data/out/night-1",
        "inputs": 10,
        "samples_per_input": 2,
        "expected_samples": 20,
        "accepted": counts.get("accepted", 12),
        "rejected": {"total": 5, "by_reason": {"wrong_answer": 4, "repetition": 1}},
        "errors": {"total": 3, "by_reason": {"prompt_too_long": 3}},
        "earlier": {"prompts": 0},
        "fingerprint": "f",
    }


def header(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_the_header_is_a_dataset_card_header_with_the_configs_license():
    parts = {"accepted": ["part-a.parquet"], "rejected": ["part-b.parquet"]}
    meta = header(render(config(), summary(), parts))
    assert meta["license"] == "apache-2.0" and meta["size_categories"] == ["n<1K"]
    files = {f["split"]: f["path"] for f in meta["configs"][0]["data_files"]}
    assert files == {"train": "accepted/*.parquet", "rejected": "rejected/*.parquet"}
    # a folder with no parts is no split (datasets refuses a pattern matching nothing); the config
    # is named by the parts, so datasets' cache tells two runs with the same card text apart
    only = header(render(config(), summary(), {"accepted": ["part-a.parquet"], "rejected": []}))["configs"][0]
    assert [f["split"] for f in only["data_files"]] == ["train"]
    assert only["config_name"] != meta["configs"][0]["config_name"]
    assert (
        header(render(load_config(data={"input": {"path": "p"}, "teacher": {"model": "/m"}}), summary()))["license"]
        == "unknown"
    )


def test_counts_and_reasons_are_the_summarys():
    card = render(config(), summary(accepted=12))
    assert "| accepted | 12 |" in card and "| rejected | 5 |" in card and "| errors | 3 |" in card
    assert "`wrong_answer` 4" in card and "`prompt_too_long` 3" in card and "org/Teacher" in card


def test_every_written_column_is_described_and_run_kinds_mark_their_empty_ones():
    assert [c for c, _, _ in COLUMNS] == SAMPLE.names

    def empty(card):
        return {line.split("`")[1] for line in card.splitlines() if line.endswith("empty in this run |")}

    plain = empty(render(config(), summary()))
    assert {"acc_think", "chosen_mode", "turns", "flag", "thinking_budget", "prompt_text"} <= plain
    assert not plain & {"messages", "prompt", "completion", "verdicts"}
    swept = empty(render(config(modes=[{"name": "think", "thinking_budget": [64, None], "flag": "/think"}]), summary()))
    assert "thinking_budget" not in swept and "flag" not in swept and "turns" in swept


def test_a_card_that_cannot_be_made_leaves_the_run_complete(tmp_path, caplog, monkeypatch):
    import pipeline.report.card
    from pipeline.run_folder import RunFolder
    from pipeline.runs.generate import write_card

    folder = RunFolder(str(tmp_path / "run"))
    folder.open({"config": {}, "input": {}}, overwrite=False)
    monkeypatch.setattr(pipeline.report.card, "render", lambda cfg, s, parts=None: 1 / 0)
    with caplog.at_level(logging.WARNING):
        write_card(config(), folder, summary())
    assert "README.md) was not written: ZeroDivisionError" in caplog.text
    assert not (tmp_path / "run" / "README.md").exists()
