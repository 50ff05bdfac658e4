"""End to end: the generation job on the real engine (tiny teacher, both modes, 2 replicas then 1).

One input file mixes good prompts with planted bad rows; the job runs twice with the same
config (two run ids) and everything below reads the Parquet output back with `datasets`. A third,
incremental run over that file and a new one (the next night) generates only the new prompts.
"""

from __future__ import annotations

import json

import pytest

from pipeline.dialects import EARLY_STOP
from tests.generate_runs import BUDGET, BUDGETS, GOOD, LOOSE_BUDGET, PER_PROMPT, SAMPLES, job_config, load
from tests.tiny_teacher import ARTIFACT_DIR, PROMPTS_PATH

pytestmark = pytest.mark.engine


def test_every_input_is_accounted_for(runs, planted_input):
    s = runs["summaries"]["a"]
    assert s["inputs"] == planted_input["inputs"]
    assert s["expected_samples"] == planted_input["inputs"] * PER_PROMPT
    assert s["accounted"] and s["missing"] == 0
    rows = {f: load(runs["out"], "a", f) for f in ("accepted", "rejected", "errors")}
    assert sum(len(v) for v in rows.values()) == s["expected_samples"]
    assert len(rows["accepted"]) == s["accepted"] and len(rows["errors"]) == s["errors"]["total"]
    summary_file = json.loads((runs["out"] / "a" / "summary.json").read_text())
    assert summary_file == s
    assert not (runs["out"] / "a" / "_tmp").exists()


def test_by_default_no_process_is_moved_off_the_engines_cores(runs):
    """``teacher.isolate_cores`` is off by default (``tests/test_object_store.py`` runs a job with it on):
    no replica recorded cores it moved the job off."""
    assert [s["engine_cores"] for s in runs["summaries"].values()] == [{}, {}]


def test_planted_bad_rows_land_in_errors_with_reasons(runs, planted_input):
    errors = load(runs["out"], "a", "errors")
    by_line: dict[int, list[dict]] = {}
    for e in errors:
        by_line.setdefault(int(e["location"].rsplit(":", 1)[1]), []).append(e)
    assert set(by_line) == set(planted_input["errors"])
    for line, (error, field) in planted_input["errors"].items():
        got = by_line[line]
        assert len(got) == PER_PROMPT, line  # one error row per sample the row would have made
        assert {e["error"] for e in got} == {error}, (line, got[0]["detail"])
        assert {e["field"] for e in got} == {field}
        assert all(e["detail"] and e["input"] for e in got)
    dup = by_line[max(planted_input["errors"])][0]
    assert "already came from" in dup["detail"] and dup["detail"].endswith("unique")


def generated(runs, run_id="a"):
    return load(runs["out"], run_id, "accepted") + load(runs["out"], run_id, "rejected")


def test_samples_follow_the_data_contract(runs, tiny_tokenizer):
    rows = generated(runs)
    assert rows and load(runs["out"], "a", "accepted")
    for r in rows:
        final = r["messages"][-1]
        assert final["role"] == "assistant"
        # TRL's prompt-completion view: the same conversation, split before the teacher's turn
        assert r["prompt"] + r["completion"] == r["messages"] and r["completion"] == [final]
        if r["mode"] == "no_think":
            assert final["content"].startswith("<think>\n\n</think>\n\n") and r["thinking"] == ""
            assert r["thinking_tokens"] == 0 and r["thinking_budget"] is None
        else:
            assert final["content"].startswith("<think>\n")
            assert r["thinking_budget"] in BUDGETS[r["mode"]]
            assert r["budget_strategy"] == (None if r["thinking_budget"] is None else "two_stage")
        assert r["prompt_tokens"] == len(tiny_tokenizer.encode(r["prompt_text"], add_special_tokens=False))
        assert r["thinking_tokens"] + r["answer_tokens"] < r["completion_tokens"] or r["mode"] == "no_think"
        assert r["finish_reason"] in ("stop", "length") and r["run_id"] == "a"


def test_the_run_folder_is_a_dataset_with_a_card(runs):
    import datasets
    import yaml

    s, folder = runs["summaries"]["a"], runs["out"] / "a"
    card = (folder / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "unknown" and "thinkmill" in meta["tags"]
    assert f"| accepted | {s['accepted']} |" in card and f"| rejected | {s['rejected']['total']} |" in card
    assert s["teacher"] == str(ARTIFACT_DIR) and s["teacher"] in card  # an absolute path
    # the card's configs make the folder itself loadable: train = accepted/, and rejected/
    loaded = datasets.load_dataset(str(folder))
    assert len(loaded["train"]) == s["accepted"] and len(loaded["rejected"]) == s["rejected"]["total"]
    assert sorted(loaded["train"]["sample_id"]) == sorted(r["sample_id"] for r in load(runs["out"], "a", "accepted"))


def test_budget_caps_thinking_and_hit_samples_still_answer(runs):
    for mode in ("think",):
        capped = [r for r in generated(runs) if r["mode"] == mode and r["thinking_budget"] is not None]
        hit = [r for r in capped if r["budget_hit"]]
        assert hit, f"{mode}: budget {BUDGET} is below the tiny teacher's typical thinking; some samples must hit it"
        assert all(r["thinking_tokens"] <= r["thinking_budget"] for r in capped)
        for r in hit:
            assert r["thinking_tokens"] == r["thinking_budget"]
            assert r["thinking"].endswith(EARLY_STOP)
            assert r["answer"].strip(), r["sample_id"]


def test_two_stage_never_forces_the_early_stop_into_an_answer(runs):
    think = [r for r in generated(runs) if r["mode"] == "think" and r["thinking_budget"] is not None]
    late = [r for r in think if EARLY_STOP in r["messages"][-1]["content"].split("</think>", 1)[1]]
    assert not late and len(think) == 2 * SAMPLES * (GOOD + 1)


def test_a_sample_that_finishes_under_budget_is_the_unbounded_sample(runs):
    """The same draw (prompt, index) at budget 100 and unbounded: when the whole completion fits in
    the budget, the budget changed nothing."""
    rows = {
        (r["prompt_id"], r["sample_index"], r["thinking_budget"]): r for r in generated(runs) if r["mode"] == "think"
    }
    compared = 0
    for (pid, idx, budget), r in rows.items():
        if budget is not None and r["completion_tokens"] <= budget + 1:
            assert r["messages"][-1]["content"] == rows[(pid, idx, None)]["messages"][-1]["content"]
            compared += 1
    assert compared > 0


def test_budget_report_and_plot(runs):
    s = runs["summaries"]["a"]
    report = {(r["mode"], r["budget"]): r for r in s["budget_report"]}
    assert set(report) == {(m, b) for m, bs in BUDGETS.items() for b in bs}
    for r in report.values():
        assert r["samples"] == SAMPLES * (GOOD + 1)  # every good prompt, incl. the messages row
        assert 0 <= r["budget_hit_rate"] <= 1 and r["accuracy"] is not None
    assert report[("think", BUDGET)]["budget_hit_rate"] > report[("think", LOOSE_BUDGET)]["budget_hit_rate"]
    assert report[("think", BUDGET)]["accuracy"] < report[("think", None)]["accuracy"]
    assert report[("think", BUDGET)]["mean_thinking_tokens"] <= BUDGET
    png = runs["out"] / "a" / "budget_report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and s["budget_plot"].endswith("budget_report.png")


def test_every_sample_is_judged_by_every_filter(runs):
    from filters import FiltersConfig

    order = FiltersConfig().order
    summary = runs["summaries"]["a"]
    rejected = load(runs["out"], "a", "rejected")
    for r in generated(runs):
        assert [v["filter"] for v in r["verdicts"]] == order
        first_fail = next((v["reason"] for v in r["verdicts"] if v["passed"] is False), None)
        assert r["reject_reason"] == first_fail
    assert sum(summary["rejected"]["by_reason"].values()) == len(rejected)
    for name in order:
        f = summary["filters"][name]
        assert f["passed"] + f["failed"] + f["skipped"] == len(generated(runs))
    # the tiny teacher is weak without thinking: wrong answers must be among the rejections
    assert summary["filters"]["wrong_answer"]["failed"] > 0


def test_round_trip_through_the_chat_template(runs, tiny_tokenizer):
    """Rendering ``messages`` gives back exactly the prompt the engine saw + what it wrote."""
    accepted = load(runs["out"], "a", "accepted")
    bad = []
    for r in accepted:
        rendered = tiny_tokenizer.apply_chat_template(r["messages"], tokenize=False)
        assistant = r["messages"][-1]["content"]
        prefill = "<think>\n\n</think>\n\n" if r["mode"] == "no_think" else ""
        expected = r["prompt_text"] + assistant[len(prefill) :] + "<|im_end|>\n"
        if rendered != expected:
            bad.append(r["sample_id"])
    assert not bad, f"{len(bad)}/{len(accepted)} samples do not round-trip, e.g. {bad[:3]}"


def test_ids_are_unique_and_stable_across_runs(runs):
    a = {f: load(runs["out"], "a", f) for f in ("accepted", "rejected", "errors")}
    b = {f: load(runs["out"], "b", f) for f in ("accepted", "rejected", "errors")}
    ids_a = [r["sample_id"] for f in ("accepted", "rejected") for r in a[f]]
    assert len(ids_a) == len(set(ids_a))
    assert sorted(ids_a) == sorted(r["sample_id"] for f in ("accepted", "rejected") for r in b[f])
    assert sorted(r["prompt_id"] for r in a["accepted"]) == sorted(r["prompt_id"] for r in b["accepted"])
    assert all(r["run_id"] == "b" for r in b["accepted"])


def test_same_seed_gives_the_same_text_on_the_cpu_engine(runs):
    """Per-sample seeds make a sample independent of batching and of which replica ran it."""
    a = {r["sample_id"]: r["messages"][-1]["content"] for r in generated(runs, "a")}
    b = {r["sample_id"]: r["messages"][-1]["content"] for r in generated(runs, "b")}
    assert set(a) == set(b)
    differ = [k for k in a if k in b and a[k] != b[k]]
    assert not differ, f"{len(differ)}/{len(a)} samples differ between two identical runs"


def test_a_completed_run_is_not_rerun_and_another_config_is_refused(runs, planted_input):
    from pipeline.run_folder import OutputError
    from pipeline.runs.generate import run

    before = sorted(p.name for p in (runs["out"] / "a" / "accepted").iterdir())
    again = run(job_config(planted_input["path"], runs["out"], "a"))
    assert again["already_complete"] and again["accepted"] == runs["summaries"]["a"]["accepted"]
    assert sorted(p.name for p in (runs["out"] / "a" / "accepted").iterdir()) == before
    other = job_config(planted_input["path"], runs["out"], "a").model_copy(
        update={
            "generation": job_config(planted_input["path"], runs["out"], "a").generation.model_copy(update={"seed": 8})
        }
    )
    with pytest.raises(OutputError, match=r"another config or input \(config.generation.seed differ"):
        run(other)


class _NoEngine:
    """An engine factory that refuses: a replica started with it fails its start (and the job)."""

    def __call__(self):
        raise RuntimeError("an engine was started for a run with nothing left to generate")


def test_a_run_killed_after_its_last_commit_finishes_without_starting_an_engine(runs, planted_input, tmp_path):
    """Every row committed, the summary not yet written (the driver died in between): the same
    command writes the summary from what is committed and makes no pass, so no replica loads the
    teacher. A copy of run b (its output path is not part of its identity)."""
    import shutil

    from pipeline.runs.generate import run

    shutil.copytree(runs["out"] / "b", tmp_path / "b")
    (tmp_path / "b" / "summary.json").unlink()
    summary = run(
        job_config(planted_input["path"], tmp_path, "b", incremental=False, replicas=1), engine_factory=_NoEngine()
    )
    want = runs["summaries"]["b"]
    assert summary["accounted"] and summary["resumed"]["prompts_kept"] == planted_input["inputs"]
    assert (summary["accepted"], summary["rejected"], summary["errors"]) == (
        want["accepted"],
        want["rejected"],
        want["errors"],
    )
    for folder in ("accepted", "rejected", "errors"):
        assert [r["sample_id"] for r in load(tmp_path, "b", folder)] == [
            r["sample_id"] for r in load(runs["out"], "b", folder)
        ], folder


def test_wrong_answer_verdicts_agree_with_an_independent_check(runs):
    """Precision on the tiny teacher's real outputs: every wrong_answer rejection is truly wrong and
    every accepted sample is right, judged by plain integer comparison of the last boxed value."""
    import re

    def truly_right(r) -> bool:
        m = re.findall(r"\\boxed\{(-?\d+)\}", r["answer"])
        return bool(m) and int(m[-1]) == int(r["reference"])

    rows = [r for r in generated(runs) if r["reference"] is not None]
    rejected_wrong = [r for r in rows if r["reject_reason"] == "wrong_answer"]
    accepted = [r for r in rows if r["reject_reason"] is None]
    assert rejected_wrong and accepted
    assert [r["sample_id"] for r in rejected_wrong if truly_right(r)] == []
    assert [r["sample_id"] for r in accepted if not truly_right(r)] == []


def test_rejudging_the_output_reproduces_its_verdicts(runs, tmp_path):
    """jobs.filter over what the job wrote (Parquet, the data contract) gives the same verdicts."""
    from pipeline.loading import load_filter_config
    from pipeline.runs.filter import run as rejudge

    src = runs["out"] / "a"
    cfg = load_filter_config(str(CONFIG_FOR_FILTER(tmp_path)), [])
    before = {r["sample_id"]: r for r in generated(runs)}
    for folder in ("accepted", "rejected"):
        s = rejudge(cfg, str(src / folder), str(tmp_path / folder))
        assert s["accounted"] and s["errors"]["total"] == 0
        after = load(tmp_path, folder, "accepted") + load(tmp_path, folder, "rejected")
        assert len(after) == s["inputs"]
        for r in after:
            old = before[r["sample_id"]]
            assert r["reject_reason"] == old["reject_reason"], r["sample_id"]
            assert [v["reason"] for v in r["verdicts"]] == [v["reason"] for v in old["verdicts"]]
            assert r["prompt_id"] == old["prompt_id"] and r["thinking_tokens"] == old["thinking_tokens"]


def CONFIG_FOR_FILTER(tmp_path):
    p = tmp_path / "filter.yaml"
    p.write_text("dialect: qwen3\nray: {batch_size: 16}\nfilters: {wrong_answer: {timeout_s: 60}}\n")
    return p


NEW = 3  # prompts in the next night's file


@pytest.fixture(scope="session")
def next_night(runs, planted_input, tmp_path_factory):
    """The next night: last night's file delivered again (another path) beside a new file."""
    from pipeline.runs.generate import run

    folder = tmp_path_factory.mktemp("nightly-input")
    (folder / "day1.jsonl").write_text(planted_input["path"].read_text(encoding="utf-8"), encoding="utf-8")
    new = PROMPTS_PATH.read_text(encoding="utf-8").splitlines()[GOOD : GOOD + NEW]
    (folder / "day2.jsonl").write_text("\n".join(new) + "\n", encoding="utf-8")
    # one replica: 3 new prompts need no second engine start (replicas is not part of the fingerprint)
    summary = run(job_config(folder, runs["out"], "c", replicas=1))
    return {"summary": summary, "new_ids": [json.loads(line)["id"] for line in new]}


def test_an_incremental_run_generates_only_new_prompts_and_accounts_for_the_rest(runs, planted_input, next_night):
    from collections import Counter

    c = next_night["summary"]
    errors_a = load(runs["out"], "a", "errors")
    # every prompt a decided (the good ones, and one too long for the engine, an error it would make again)
    decided = {r["prompt_id"] for r in generated(runs, "a") + errors_a if r["prompt_id"] is not None}
    assert len(decided) == GOOD + 2
    assert c["accounted"] and c["inputs"] == planted_input["inputs"] + NEW
    assert c["earlier"]["prompts"] == len(decided) and c["earlier"]["samples"] == len(decided) * PER_PROMPT
    # the oldest completed run holding a prompt is named (b holds them too); both were consulted
    assert c["earlier"]["by_run"] == {"a": len(decided)} and c["earlier"]["runs_consulted"] == ["a", "b"]
    assert c["accepted"] + c["rejected"]["total"] == NEW * PER_PROMPT
    # rows that never became a prompt are still bad: reported again, tonight
    assert c["errors"]["by_reason"] == dict(Counter(r["error"] for r in errors_a if r["prompt_id"] is None))
    made = generated(runs, "c")
    assert sorted({r["prompt_id"] for r in made}) == sorted(next_night["new_ids"])
    assert not {r["sample_id"] for r in made} & {r["sample_id"] for r in generated(runs, "a")}
    earlier = load(runs["out"], "c", "earlier")
    assert {r["prompt_id"] for r in earlier} == decided and {r["generated_by"] for r in earlier} == {"a"}
    assert all(r["location"].split(":")[0].endswith("day1.jsonl") for r in earlier)


def test_the_manifest_loads_everything_accepted_to_date_in_one_call(runs, next_night):
    import datasets

    from pipeline.catalog import read_manifest

    m = read_manifest(str(runs["out"]))
    assert [r["run_id"] for r in m["runs"]] == ["a", "b", "c"]
    assert len({r["fingerprint"] for r in m["runs"]}) == 1
    assert next_night["summary"]["fingerprint"] == m["runs"][0]["fingerprint"]
    ds = datasets.load_dataset("parquet", data_files=m["accepted"], split="train")
    per_run = {rid: load(runs["out"], rid, "accepted") for rid in ("a", "b", "c")}
    assert len(ds) == sum(len(v) for v in per_run.values()) == sum(r["accepted"] for r in m["runs"])
    assert sorted(ds["sample_id"]) == sorted(r["sample_id"] for v in per_run.values() for r in v)
    # the files are named relative to the root too, so a copied root still resolves
    assert all((runs["out"] / f).is_file() for r in m["runs"] for f in r["files"])
