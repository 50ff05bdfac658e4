"""Sample until verified (``generation.accepted_per_prompt``), without the engine: which samples
each round makes, what a resume keeps, the accounting and what the prepare stage emits. The
same on the real engine (a k-run against the fixed-n run it is a subset of, and its resume) is
in ``tests/test_capabilities_job.py``."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline import rounds
from pipeline.committed import file_name
from pipeline.config import GenerationConfig
from pipeline.run_folder import FOLDERS, RunFolder
from pipeline.samples import plan_samples
from pipeline.schema import ERROR, SAMPLE, to_table
from tests.tiny_teacher import ARTIFACT_DIR

K, N = 2, 8
G = GenerationConfig(samples_per_prompt=N, accepted_per_prompt=K, modes=[{"name": "think"}])
SPECS = plan_samples(G, "teacher", "qwen3")


def sid(prompt: str, i: int) -> str:
    return SPECS[i].sample_id(prompt)


def write(folder: RunFolder, status: str, rows: list[tuple[str, int, str | None]]) -> None:
    """Committed rows ``(prompt, index, error)`` of ``status`` as one part."""
    schema = ERROR if status == "error" else SAMPLE
    t = to_table(
        [
            {
                "status": status,
                "prompt_id": p,
                "sample_id": sid(p, i) if p else None,
                "mode": "think",
                "sample_index": i,
                "error": e,
                "location": f"in.jsonl:{p}",
            }
            for p, i, e in rows
        ]
    )
    t = t.select(schema.names).cast(schema)
    folder.write_part(FOLDERS[status], file_name(t), t)


@pytest.fixture
def folder(tmp_path) -> RunFolder:
    f = RunFolder(str(tmp_path / "run"))
    write(f, "accepted", [("a", 0, None), ("a", 1, None), ("b", 0, None), ("d", 2, None)])
    write(f, "rejected", [("b", 1, None), ("d", 0, None), ("d", 1, None)])
    write(f, "error", [("c", 0, "prompt_too_long"), ("c", 1, "prompt_too_long"), (None, 0, "invalid_json")])
    return f


def test_a_later_round_makes_the_next_samples_of_the_groups_short_of_k(folder):
    r = rounds.next_round(folder, 1, K, N, SPECS)
    # a: 2 of 2 passed; c: none reached the filters (errors would repeat); b and d: short of k
    # (d's sample 2, committed by an earlier attempt, is not made again)
    want = {sid("b", 2), sid("b", 3), sid("d", 3)}
    assert (r.index, r.cut, len(r.wanted)) == (1, 4, 3) and all(r.wanted.has(s) for s in want)
    assert not r.wanted.has(sid("d", 2))
    assert not any(r.wanted.has(sid(p, i)) for p in ("a", "c") for i in range(N))
    assert r.takes(3, sid("b", 3)) and not r.takes(3, sid("a", 3))
    assert rounds.Round(0, K).takes(1, "any") and not rounds.Round(0, K).takes(2, "any")
    assert rounds.next_round(folder, 3, K, N, SPECS) is None  # past the last cut
    # a round with nothing left to make (a resume holds it) is skipped for the next
    write(folder, "rejected", [("b", 2, None), ("b", 3, None), ("d", 3, None)])
    r2 = rounds.next_round(folder, 1, K, N, SPECS)
    assert r2.index == 2 and r2.wanted.has(sid("b", 4)) and len(r2.wanted) == 8  # b and d: 4..7


def test_a_second_copy_of_a_row_counts_once_and_a_group_holding_more_than_the_rule_makes_is_not_missing(folder):
    write(folder, "accepted", [("b", 0, None)])  # a retried write's second copy: b still has 1 of 2 accepted
    assert rounds.next_round(folder, 1, K, N, SPECS).wanted.has(sid("b", 2))
    # f passed twice in round 0 yet holds samples 2-3 too (a resume redid a transient error that then passed)
    write(folder, "accepted", [("f", 0, None), ("f", 1, None)])
    write(folder, "rejected", [("f", 2, None), ("f", 3, None)])
    o = rounds.outcome(folder, K, N)
    got = {r["prompt_id"]: (r["made"], r["expected"]) for r in o.groups.to_pylist()}
    assert got["b"] == (2, N) and got["f"] == (4, 4) and got["a"] == (2, 2)


def test_a_resume_goes_past_a_first_round_it_holds(folder):
    # a and b hold samples 0-1, c its two errors, d its 0-1; "invalid_json" is an input row of its own
    assert rounds.first_round_held(folder, K, N, per_input=N, inputs=5)
    assert not rounds.first_round_held(folder, K, N, per_input=N, inputs=6)  # a sixth row made nothing yet


def test_the_accounting_expects_what_the_rule_makes_of_each_group(folder):
    o = rounds.outcome(folder, K, N)
    expected = {r["prompt_id"]: r["expected"] for r in o.groups.to_pylist()}
    # a reached k at 2; c stopped on errors at 2; b and d are not settled: n
    assert expected == {"a": 2, "b": N, "c": 2, "d": N}
    s = rounds.summary(o, K, N, None)
    assert (s["groups"], s["reached_k"], s["stopped_on_errors"], s["samples_made"]) == (4, 1, 1, 9)
    assert s["samples_saved"] == 2 * (N - 2) and s["samples_by_round"] == [8, 1, 0]
    assert s["pass_rates"] == {"0.0": 1, "0.3": 1, "0.5": 1, "1.0": 1}  # c 0/2, d 1/3, b 1/2, a 2/2
    stamped = rounds.stamp_table(
        pa.table(
            {
                c: [v]
                for c, v in (
                    ("prompt_id", "d"),
                    ("mode", "think"),
                    ("thinking_budget", None),
                    ("min_thinking_tokens", None),
                    ("reasoning_effort", None),
                )
            }
        ),
        o,
    )
    assert stamped.to_pylist()[0] | {} == {
        "prompt_id": "d",
        "mode": "think",
        "thinking_budget": None,
        "min_thinking_tokens": None,
        "reasoning_effort": None,
        "prompt_samples": 3,
        "prompt_accepted": 1,
        "prompt_pass_rate": 0.3333,
    }
    assert rounds.unsolved(o, K, N) == []  # none has n samples yet


def test_a_resume_keeps_every_committed_sample_once_and_redoes_transient_errors(folder):
    write(folder, "accepted", [("a", 0, None)])  # a retried write's second copy
    write(folder, "error", [("e", 0, "engine_died"), ("e", 1, "unfinished")])  # transient: made again
    done, samples, dropped, _ = folder.reconcile_samples()
    assert dropped == 3
    assert all(samples.has(sid(p, i)) for p, i in (("a", 0), ("a", 1), ("b", 1), ("c", 0), ("d", 2)))
    assert not samples.has(sid("e", 0)) and not samples.has(sid("e", 1))
    assert done.has("@in.jsonl:None") and not done.has("a")  # the row without a prompt is whole; a is not
    assert sum(t.num_rows for _, t in folder.tables(["sample_id"])) == 10


def test_plan_time_errors_say_what_it_does_not_combine_with():
    with pytest.raises(ValueError, match=r"accepted_per_prompt \(3\) must be <= samples_per_prompt \(2\)"):
        GenerationConfig(samples_per_prompt=2, accepted_per_prompt=3)
    with pytest.raises(ValueError, match="does not combine with adaptive"):
        GenerationConfig(
            samples_per_prompt=4,
            accepted_per_prompt=1,
            adaptive={},
            modes=[{"name": "think"}, {"name": "no_think", "thinking": False}],
        )


def test_the_fingerprint_of_a_run_without_it_is_unchanged():
    from pipeline.catalog import fingerprint

    base = {"teacher": {"model": "m", "dialect": "qwen3"}, "generation": {"seed": 0, "modes": []}}
    off = {**base, "generation": {**base["generation"], "accepted_per_prompt": None}}
    on = {**base, "generation": {**base["generation"], "accepted_per_prompt": 2}}
    assert fingerprint(base) == fingerprint(off) != fingerprint(on)


def test_prepare_makes_a_rounds_samples_only_and_skips_those_a_resume_holds(tiny_tokenizer):
    from pipeline.committed import DoneSet
    from pipeline.loading import load_config
    from pipeline.stages.prepare import Prepare, PrepareSettings

    cfg = load_config(
        data={
            "input": {"path": "p"},
            "teacher": {"model": str(ARTIFACT_DIR)},
            "generation": {"samples_per_prompt": 4, "accepted_per_prompt": 2, "modes": [{"name": "think"}]},
        }
    )
    raws = pa.Table.from_pylist(
        [
            {"_path": "/in/a.jsonl", "_row": i, "_raw": json.dumps(r), "_error": None}
            for i, r in enumerate([{"id": "p", "prompt": "What is 2+2?"}, {"id": "bad"}], 1)
        ]
    )
    specs = plan_samples(cfg.generation, cfg.teacher.model, cfg.teacher.dialect)

    def made(**kw):
        return [
            (r["prompt_id"], r["sample_index"], r["status"])
            for r in Prepare(PrepareSettings.of(cfg), **kw)(raws).to_pylist()
        ]

    first = made(round=rounds.Round(0, 2))
    assert first == [
        ("p", 0, "pending"),
        ("p", 1, "pending"),
        (None, 0, "error"),
        (None, 1, "error"),
        (None, 2, "error"),
        (None, 3, "error"),
    ]  # a bad row: as many errors as n samples
    later = rounds.Round(1, 4, DoneSet.of([specs[2].sample_id("p"), specs[3].sample_id("p")]))
    assert made(round=later) == [("p", 2, "pending"), ("p", 3, "pending")]  # the bad row's errors: in round 0
    assert made(round=later, done_samples=DoneSet.of([specs[2].sample_id("p")])) == [("p", 3, "pending")]
