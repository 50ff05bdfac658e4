"""Teacher logprobs for logit distillation (``output.logprobs``), on the real engine: the shared
session runs keep the top-8 beside ``accepted/``. They must be the teacher's own (an independent
re-scoring of the same tokens by ``jobs.score`` agrees), mark the tokens the pipeline forced, and
serve a student: the tiny teacher as its own student has a forward KL of ~0, a perturbed one not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.generate_runs import LOGPROB_K, load
from tests.tiny_teacher import ARTIFACT_DIR

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]


def _sidecar(run_dir: Path) -> dict[str, dict]:
    rows = [r for p in sorted((run_dir / "logprobs").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return {r["sample_id"]: r for r in rows}


def test_every_accepted_sample_has_the_teachers_top_k_and_forced_tokens_are_marked(runs, tiny_tokenizer):
    out, s = runs["out"], runs["summaries"]["a"]
    side = _sidecar(out / "a")
    accepted = {r["sample_id"]: r for r in load(out, "a", "accepted")}
    assert set(side) == set(accepted) and s["logprobs"]["samples"] == len(accepted) > 0
    assert s["logprobs"]["tokens"] == sum(len(r["token_ids"]) for r in side.values())
    meta = json.loads(pq.read_schema(next((out / "a" / "logprobs").glob("*.parquet"))).metadata[b"thinkmill.logprobs"])
    assert (
        meta["top_k"] == LOGPROB_K and len(meta["tokenizer_sha256"]) == 64 and meta["logprobs_mode"] == "raw_logprobs"
    )
    from pipeline.dialects import get_dialect

    forced_text = tiny_tokenizer.encode(get_dialect("qwen3").budget_end_str(), add_special_tokens=False)
    hit = 0
    for sid, r in side.items():
        a = accepted[sid]
        n = len(r["token_ids"])
        assert len(r["forced"]) == len(r["logprob"]) == len(r["top_ids"]) == len(r["top_logprobs"]) == n
        assert r["prompt_token_ids"] and n == a["completion_tokens"]
        # the completion is what the template renders for the teacher's turn
        text = tiny_tokenizer.decode(r["token_ids"], skip_special_tokens=True)
        assert a["messages"][-1]["content"].endswith(text.strip()[-20:])
        for j, (f, lp, ids, top) in enumerate(zip(r["forced"], r["logprob"], r["top_ids"], r["top_logprobs"])):
            if f:
                continue
            assert top == sorted(top, reverse=True) and len(set(ids)) == LOGPROB_K
            assert lp <= top[0] + 1e-2  # the sampled token is at most as likely as the best
            assert lp >= top[-1] - 1e-2 or r["token_ids"][j] not in ids
        if a["budget_hit"]:  # two-stage: the early-stop text is the pipeline's, not the teacher's
            hit += 1
            marked = [t for t, f in zip(r["token_ids"], r["forced"]) if f]
            assert marked == forced_text, sid
        else:
            assert not any(r["forced"]), sid
    assert hit > 0


@pytest.fixture(scope="module")
def rescored(runs, tmp_path_factory) -> dict[str, dict]:
    """``jobs.score`` on run a: the same token ids, scored again in one pass (prompt logprobs)."""
    dest = tmp_path_factory.mktemp("score") / "rescored"
    cfg = dest.parent / "teacher.json"
    cfg.write_text(
        json.dumps(
            {
                "input": {"path": "x"},
                "teacher": {
                    "model": str(ARTIFACT_DIR),
                    "device": "cpu",
                    "engine": {"dtype": "float32", "max_model_len": 1024, "kv_cache_gib": 0.5, "enforce_eager": True},
                },
            }
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.score",
            "--config",
            str(cfg),
            "--input",
            str(runs["out"] / "a"),
            "--output",
            str(dest),
            "--top-k",
            str(LOGPROB_K),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((dest / "score.json").read_text())["exact_ids"] is True
    return _sidecar(dest)


def test_logprobs_stored_while_generating_agree_with_an_independent_rescoring(runs, rescored):
    side = _sidecar(runs["out"] / "a")
    assert set(rescored) == set(side)
    diffs, same_top, scored = [], 0, 0
    for sid, r in side.items():
        again = rescored[sid]
        assert again["token_ids"] == r["token_ids"] and again["prompt_token_ids"] == r["prompt_token_ids"]
        for f, lp, lp2, ids, ids2 in zip(r["forced"], r["logprob"], again["logprob"], r["top_ids"], again["top_ids"]):
            if f:
                continue
            scored += 1
            diffs.append(abs(lp - lp2))
            same_top += ids[0] == ids2[0]
    diffs.sort()
    # float16 storage (~1e-3) and another batch shape: close, never far
    assert diffs[len(diffs) // 2] < 0.01 and diffs[int(0.99 * len(diffs))] < 0.1, diffs[-5:]
    assert same_top >= 0.98 * scored


def test_the_teacher_as_its_own_student_has_kl_zero_and_a_perturbed_one_does_not(runs):
    import torch
    from transformers import AutoModelForCausalLM

    from pipeline.distill import batches, forward_kl

    student = AutoModelForCausalLM.from_pretrained(ARTIFACT_DIR, dtype=torch.float32).eval()

    def kl() -> float:
        losses, n = 0.0, 0
        with torch.no_grad():
            for b in batches(str(runs["out"] / "a"), batch_size=8):
                logits = student(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                losses += forward_kl(logits, b).item()
                n += 1
        return losses / n

    itself = kl()
    torch.manual_seed(0)
    with torch.no_grad():  # noise of half each weight tensor's spread (measured: KL ~0.6; 0.1 of it: ~0.0015)
        for p in student.parameters():
            p.add_(0.5 * torch.randn_like(p) * p.std())
    perturbed = kl()
    assert abs(itself) < 0.01, itself  # measured: ~1e-8 (the stored float16 values are the model's)
    assert perturbed > 0.1 and perturbed > 100 * abs(itself), (itself, perturbed)
