"""The KubeRay manifests (`configs/kuberay/`) against the KubeRay v1.7.0 CRD schemas, and against
the job config they run: what the API server would accept, and what the job would need."""

from __future__ import annotations

import functools
import gzip
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline.loading import load_config

ROOT = Path(__file__).resolve().parents[1]
CRDS = Path(__file__).with_name("kuberay")
MANIFESTS = {
    "RayJob": ROOT / "configs/kuberay/rayjob-qwen3-32b.yaml",
    "RayCronJob": ROOT / "configs/kuberay/raycronjob-qwen3-32b.yaml",
}


@functools.cache
def schema(kind: str) -> dict:
    with gzip.open(CRDS / f"ray.io_{kind.lower()}s.yaml.gz", "rt", encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return v1["schema"]["openAPIV3Schema"]


def manifest(kind: str) -> dict:
    return yaml.safe_load(MANIFESTS[kind].read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", list(MANIFESTS))
def test_the_manifest_is_valid_for_the_kuberay_crd(kind):
    m = manifest(kind)
    assert (m["apiVersion"], m["kind"]) == ("ray.io/v1", kind)
    jsonschema.validate(m, schema(kind))


def test_a_manifest_with_a_wrong_field_is_refused():  # the check can fail
    m = manifest("RayJob")
    m["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(m, schema("RayJob"))
    m = manifest("RayCronJob")
    del m["spec"]["schedule"]
    with pytest.raises(jsonschema.ValidationError, match="schedule"):
        jsonschema.validate(m, schema("RayCronJob"))


def test_the_nightly_runs_exactly_the_one_off_job():
    assert manifest("RayCronJob")["spec"]["jobTemplate"] == manifest("RayJob")["spec"]


def test_the_cluster_fits_the_job_it_runs():
    spec = manifest("RayJob")["spec"]
    cmd = shlex.split(spec["entrypoint"])
    assert cmd[:3] == ["python", "-m", "jobs.generate"]
    cfg = load_config(ROOT / cmd[cmd.index("--config") + 1])
    gpus = sum(
        int(g["replicas"]) * int(g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
        for g in spec["rayClusterSpec"]["workerGroupSpecs"]
    )
    assert gpus >= cfg.teacher.replicas * cfg.teacher.engine.tensor_parallel_size
    assert spec["rayClusterSpec"]["rayVersion"] == "2.60.0"
    assert (
        "://" in cfg.output.path
        and "{date}" in yaml.safe_load((ROOT / cmd[cmd.index("--config") + 1]).read_text())["output"]["run_id"]
    )  # object storage, one run per night
    assert cfg.ray.deadline_s and cfg.ray.deadline_s < 24 * 3600  # a night ends before the next begins
