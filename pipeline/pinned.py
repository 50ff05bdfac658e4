"""Where the job's bookkeeping actors live: on the driver's node, which outlives every other."""

from __future__ import annotations


def on_driver_node() -> dict:
    """Actor options that keep one of the job's bookkeeping actors (the progress and death books,
    the duplicate-id ledger) on the driver's node: work on any other node may be lost with it (a
    spot VM reclaimed) and is redone, but the books must outlive it, or every task that asks them
    fails (``ActorUnavailableError``) and Ray Data aborts the run. The driver's node going away
    ends the job anyway."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {
        "num_cpus": 0,
        "max_restarts": 0,
        "scheduling_strategy": NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
    }
