"""Ray: an embedded local Ray, or the cluster the job joins (``ray.address`` / ``ray job submit``)."""

from __future__ import annotations

import math
import os

from .stages import CPU_STAGE_CPUS


def embedded_ray_cpus(ray_cfg, replica_cpus: float = 0) -> int | None:
    """Logical CPUs for an embedded Ray, or None when the job joins a cluster (``ray.address``, or
    the one ``ray job submit`` runs it in): enough for the replicas, the CPU stages, reads, writes."""
    if ray_cfg.address or os.environ.get("RAY_ADDRESS"):
        return None
    needed = replica_cpus + 2 * ray_cfg.cpu_stage_actors * CPU_STAGE_CPUS + 2
    return ray_cfg.num_cpus or max(os.cpu_count() or 1, math.ceil(needed))


class ClusterError(ValueError):
    """The Ray cluster cannot run the plan (too few CPUs or GPUs): it would wait forever."""


def check_resources(needs: dict[str, float], what: str) -> None:
    """Fail at once, naming what is missing, when the cluster has fewer CPUs / GPUs than the
    pipeline's actor pools reserve: Ray Data would otherwise wait forever on pending demands."""
    import ray

    have = ray.cluster_resources()
    short = {k: (have.get(k, 0), n) for k, n in needs.items() if n and have.get(k, 0) < n}
    if short:
        lacking = ", ".join(f"{n:g} {k} (the cluster has {h:g})" for k, (h, n) in short.items())
        raise ClusterError(
            f"ray: the plan needs at least {lacking}: {what}; add nodes, or lower "
            f"teacher.replicas / teacher.resources / ray.cpu_stage_actors"
        )


def init_ray(
    address: str, embedded_cpus: int | None, storage_options: dict | None = None, verbose: bool = True
) -> None:
    """Start or join Ray. ``storage_options`` reach every worker of the job through its runtime
    environment (``pipeline.storage``); under ``ray job submit`` they join the job's own. Not
    ``verbose`` (``ray.verbose``): the workers' output stays in the log files and Ray Data prints no
    progress blocks (``pipeline.progress``)."""
    import logging

    import ray

    from .progress import quiet
    from .storage import env_vars

    quiet(verbose)
    if ray.is_initialized():
        if storage_options:
            import warnings

            warnings.warn(
                "storage_options: Ray was already started in this process, so its workers get them only "
                "if they were started with the FSSPEC_<PROTOCOL> variables (pipeline.storage.env_vars)",
                stacklevel=2,
            )
        return
    runtime_env = {"env_vars": env_vars(storage_options)} if storage_options else None
    console = {} if verbose else {"log_to_driver": False, "logging_level": logging.WARNING}
    if embedded_cpus is None:  # a cluster: given address, or the one `ray job submit` runs us in
        ray.init(address=address or None, runtime_env=runtime_env, **console)
    else:
        ray.init(num_cpus=embedded_cpus, include_dashboard=False, runtime_env=runtime_env, **console)
