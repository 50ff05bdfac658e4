"""Replicas that do not come up (``teacher.min_replicas``, ``teacher.start_timeout_s``): the real
pipeline on the embedded Ray with the stand-in engine (``bench.simulate``), whose start is made
to fail or hang for some replicas. The same on a ``ray start`` cluster with vLLM and a node whose
environment breaks its engine: ``tests/test_cluster_submit.py``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.tiny_teacher import ARTIFACT_DIR, PROMPTS_PATH

PROMPTS = 40


class StartFault:
    """The stand-in engine's factory with a start fault, decided across the replicas' processes by
    files in ``folder``: ``first_only`` (the first start wins, every later one fails), ``once`` (the
    first start fails, every later one works), ``always`` (every start fails), ``hang`` (the first
    start wins, every later one hangs)."""

    def __init__(self, spec, folder: str, fault: str):
        self.spec, self.folder, self.fault = spec, Path(folder), fault

    def _first(self, name: str) -> bool:
        try:
            os.close(os.open(self.folder / name, os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            return False

    def __call__(self):
        from bench.simulate import SimEngine

        first = self._first("first")
        if self.fault == "always" or (self.fault == "first_only" and not first) or (self.fault == "once" and first):
            raise RuntimeError("injected start fault: CUDA out of memory")
        if self.fault == "hang" and not first:
            time.sleep(3600)
        return SimEngine(self.spec)


def _run(tmp: Path, fault: str, *overrides: str, time_scale: float = 4):
    from bench.simulate import SimSpec
    from pipeline.loading import load_config
    from pipeline.runs.generate import run

    lines = PROMPTS_PATH.read_text(encoding="utf-8").splitlines()[:PROMPTS]
    (tmp / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp / "fault").mkdir()
    cfg = load_config(
        "configs/local.yaml",
        [
            f"input.path={tmp / 'in.jsonl'}",
            "input.limit=null",
            f"output.path={tmp / 'out'}",
            "output.run_id=starts",
            "teacher.replicas=2",
            "teacher.resources.num_cpus=0.5",
            "teacher.engine.max_num_seqs=4",
            "generation.samples_per_prompt=1",
            "filters.order=[]",
            "ray.batch_size=8",
            *overrides,
        ],
    )
    # requests of about 1.2 s each at time_scale 4, 4 at a time per engine: a replica whose start is
    # retried after 5 s still finds work
    spec = SimSpec(
        str(ARTIFACT_DIR), max_num_seqs=4, tokens_per_s=30, median_tokens=150, sigma=0.3, time_scale=time_scale
    )
    return run(cfg, engine_factory=StartFault(spec, str(tmp / "fault"), fault))


def test_a_start_that_fails_is_retried_and_the_replica_joins(tmp_path, ray_session):
    s = _run(tmp_path, "once")
    assert s["accounted"] and s["accepted"] == 2 * PROMPTS
    assert s["failed_starts"] == 1 and "injected start fault" in s["start_failures"][0]["reason"]
    assert s["replicas_seen"] == 2, s["replica_work"]  # the retried one came up 5 s later and served


def test_a_replica_that_never_starts_costs_its_share_not_the_night(tmp_path, ray_session):
    s = _run(tmp_path, "first_only")
    assert s["accounted"] and s["accepted"] == 2 * PROMPTS and s["replicas_seen"] == 1
    assert s["failed_starts"] >= 2  # retried with backoff (5 s, 10 s, ...) while the other worked
    assert all("CUDA out of memory" in f["reason"] for f in s["start_failures"])
    page = (tmp_path / "out" / "starts" / "report.html").read_text(encoding="utf-8")
    assert f"{s['failed_starts']} engine start(s) failed and were retried" in page and "CUDA out of memory" in page


def test_a_start_that_hangs_counts_as_failed_and_the_job_goes_on(tmp_path, ray_session):
    # the timeout leaves a loaded machine time to start the good engine; the work (about 40 s on one
    # engine: 80 requests of ~2 s, 4 at a time) outlasts it, so the hung start is reported while the job runs
    s = _run(tmp_path, "hang", "teacher.start_timeout_s=15", time_scale=2.5)
    assert s["accounted"] and s["accepted"] == 2 * PROMPTS and s["replicas_seen"] == 1
    assert s["failed_starts"] == 1
    assert s["start_failures"][0]["reason"].startswith("no engine within teacher.start_timeout_s = 15 s")


def test_too_few_replicas_up_fails_the_job_with_the_engines_errors(tmp_path, ray_session):
    from pipeline.stages.generate.starts import ReplicasDown

    t0 = time.time()
    with pytest.raises(ReplicasDown) as e:
        _run(tmp_path, "always")
    # every replica failed twice (at 0 s and after the 5 s backoff): no waiting for start_timeout_s
    assert time.time() - t0 < 120
    assert "0 of the 2 teacher replica(s) up" in str(e.value) and "CUDA out of memory" in str(e.value)


def test_min_replicas_not_reached_after_the_timeout_fails_the_job(tmp_path, ray_session):
    from pipeline.stages.generate.starts import ReplicasDown

    with pytest.raises(ReplicasDown) as e:
        _run(tmp_path, "hang", "teacher.start_timeout_s=20", "teacher.min_replicas=2")
    assert "1 of the 2 teacher replica(s) up, 2 needed" in str(e.value)
    assert "after teacher.start_timeout_s = 20 s" in str(e.value)
