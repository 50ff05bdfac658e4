"""A node lost mid-pass with no room left for what it held: stop the pass, redo what it lost.

When a node dies (a spot VM reclaimed, every process of it gone), Ray restarts the pipeline's
actors that lived there (Ray Data makes its pools' actors with ``max_restarts=-1``) on the nodes
that remain, or on a node that joins, and retries their tasks there: with room somewhere, the
pass goes on by itself. With no room, those actors stay ``RESTARTING`` and the tasks they held
wait for them for ever: Ray Data does not hand a stuck actor's work to the others, and its pool
does not shrink. That is the hang this module ends.

``NodeLoss`` (a thread on the driver, beside the engines' start watch) looks every few seconds
at Ray's node and actor tables. Once a node has died during the pass and some of this job's
actors have been ``RESTARTING`` for ``ray.node_loss_grace_s`` (time for a replacement node to
join), it kills them (no restart: they would otherwise take the room of the next pass's actors
when a node joins) and stops the pass, as ``Watch`` does, by interrupting the driver's main
thread. ``runs.generate`` then does what a resume does: it reconciles the committed parts (a
half-committed prompt is dropped, each row kept once) and makes what is missing in a new pass,
on the nodes that remain (a pool that cannot have all its actors goes on with those it has).
Work in flight on the surviving replicas when the pass stopped is redone too: a node loss costs
at most one pass's uncommitted work and one start of the engines. Before the new pass,
``end_stopped_pass`` ends the stopped pass's pool actors that still live, so that their resources
are the new pass's.

The actor table and the kill by id are Ray's internal driver APIs (``ray._private.state``, the
core worker): Ray has no public call to kill an actor whose handle only Ray Data holds. A look
that fails is retried at the next; a kill that fails is logged and the pass is stopped anyway.
"""

from __future__ import annotations

import _thread
import logging
import sys
import threading
import time

log = logging.getLogger(__name__)

POLL_S = 2.0  # seconds between two looks at Ray's tables


class NodeLoss:
    """Watches one pass (a context manager around the dataset's execution); ``tripped`` says why
    it stopped the pass (when, the lost nodes, how many actors, how long they waited), or None."""

    def __init__(self, grace_s: float, poll_s: float | None = None, stream=None, look=None, kill=None):
        self.grace, self.poll, self.stream = grace_s, poll_s or POLL_S, stream or sys.stderr
        self._look, self._kill = look or _look, kill or _kill  # Ray's tables; replaced in unit tests
        self.tripped: dict | None = None
        self._alive: dict[str, str] = {}  # node id -> address, every node seen alive in this pass
        self._dead: dict[str, float] = {}  # node id -> when first seen dead
        self._since: dict[str, float] = {}  # actor id -> when first seen RESTARTING after a node died
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the pass's end and the interrupt: one or the other, never both
        self._thread = threading.Thread(target=self._loop, name="thinkmill-node-loss", daemon=True)

    def __enter__(self) -> NodeLoss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                nodes, restarting = self._look()
            except Exception as e:  # noqa: BLE001 - a missed look is retried at the next
                log.debug("node loss: look failed: %s", e)
                continue
            if (why := self.step(nodes, restarting, time.time())) is None:
                continue
            with self._lock:
                if self._stop.is_set():  # the pass ended meanwhile: nothing to stop
                    return
                # what summary.json's nodes_lost lists (the actors' ids are of no use after this pass)
                self.tripped = {
                    "at": why["at"],
                    "nodes": why["nodes"],
                    "actors": len(why["actor_ids"]),
                    "waited_s": why["waited_s"],
                }
                _thread.interrupt_main()
            self.stream.write(
                f"node(s) {', '.join(why['nodes'])} lost; {len(why['actor_ids'])} pipeline "
                f"actor(s) found no room on the other nodes within ray.node_loss_grace_s = "
                f"{self.grace:g} s: stopping this pass, to make what it had not committed in a "
                f"new pass on the nodes that remain\n"
            )
            self.stream.flush()
            for actor in why["actor_ids"]:  # after the interrupt: their tasks' errors must not end the pass first
                try:
                    self._kill(actor)
                except Exception as e:  # noqa: BLE001 - the pass stops anyway; the job's end kills it
                    log.warning("node loss: could not kill actor %s: %s", actor, e)
            return

    def step(self, nodes: dict[str, tuple[bool, str]], restarting: dict[str, str], now: float) -> dict | None:
        """One look: ``nodes`` (node id -> (alive, address)), the job's ``RESTARTING`` actors (id ->
        the node Ray's table names for them). -> why to stop the pass now, or None. Every one counts,
        wherever the table places it: a lost node's actor waiting for room is shown on a live node
        (where its placement waits), seen on the cluster test. (The job's actors are quick to start:
        a replica starts its engine after its constructor, so a restart with room is soon ALIVE.)

        >>> w = NodeLoss(grace_s=60)
        >>> w.step({"a": (True, "h"), "b": (True, "w")}, {}, 0.0) is None  # all well
        True
        >>> w.step({"a": (True, "h"), "b": (False, "w")}, {"x": "b"}, 10.0) is None  # b died; x waits for room
        True
        >>> w.step({"a": (True, "h"), "b": (False, "w")}, {"x": "b", "y": "", "z": "a"}, 65.0) is None
        True
        >>> w.step({"a": (True, "h"), "b": (False, "w")}, {"x": "b", "y": "", "z": "a"}, 70.0)
        {'nodes': ['w'], 'actor_ids': ['x'], 'waited_s': 60.0, 'at': 70.0}
        >>> NodeLoss(grace_s=1).step({"a": (True, "h")}, {"q": ""}, 99.0) is None  # restarting, no node lost
        True
        """
        for node, (alive, address) in nodes.items():
            if alive:
                self._alive[node] = address
            elif node in self._alive:
                self._dead.setdefault(node, now)
        if not self._dead:  # an actor restarting on a live node (its process died) is Ray's to restart
            return None
        self._since = {a: t for a, t in self._since.items() if a in restarting}
        for a in restarting:
            self._since.setdefault(a, now)
        stuck = sorted(a for a, t in self._since.items() if now - t >= self.grace)
        if not stuck:
            return None
        return {
            "nodes": sorted(self._alive[n] for n in self._dead),
            "actor_ids": stuck,
            "waited_s": round(now - min(self._since[a] for a in stuck), 1),
            "at": round(now, 3),
        }


#: Ray Data's pool actors (their class in Ray's actor table); the job's own actors (its books, the
#: id ledger) live on across passes
POOL_CLASS = "MapWorker"


def end_stopped_pass(timeout_s: float = 60.0, poll_s: float = 0.5, live=None, kill=None) -> list[str]:
    """After a pass the watch stopped: kill the pass's pool actors still alive (every state but
    DEAD) and wait, at most ``timeout_s``, until Ray's table shows them dead. -> their ids.

    Ray Data ends a stopped dataset's actors by dropping its handles, not by killing them; the
    exception that stopped the pass holds those handles in a reference cycle (its traceback's
    frames), freed only when Python's cycle collector happens to run. Until then the replicas that
    survived keep their resources (a GPU, a ``teacher_slot``) and the new pass's replicas wait for
    them (seen in a stand-in run: 2 pool actors still alive after the stop and a collection).

    >>> table = {"a": ("MapWorker", "ALIVE"), "b": ("DeathBook", "ALIVE"), "c": ("MapWorker", "DEAD")}
    >>> def live():
    ...     return {k: v for k, v in table.items() if v[1] != "DEAD"}
    >>> def kill(a):
    ...     table[a] = (table[a][0], "DEAD")
    >>> end_stopped_pass(1, 0.01, live, kill), table["a"][1], table["b"][1]
    (['a'], 'DEAD', 'ALIVE')
    """
    import gc

    live, kill = live or _live, kill or _kill
    gc.collect()  # what only the cycle collector frees: the stopped pass's handles
    ours = sorted(a for a, (cls, _) in live().items() if cls.startswith(POOL_CLASS))
    for actor in ours:
        try:
            kill(actor)
        except Exception as e:  # noqa: BLE001 - gone already, or the wait below says so
            log.debug("node loss: could not kill actor %s: %s", actor, e)
    end = time.time() + timeout_s
    while (left := [a for a in live() if a in ours]) and time.time() < end:
        time.sleep(poll_s)
    if left:
        log.warning("%d actor(s) of the stopped pass still not dead after %g s", len(left), timeout_s)
    elif ours:
        log.warning(
            "the stopped pass's %d pool actor(s) still alive ended: their resources are the new pass's", len(ours)
        )
    return ours


def _live() -> dict[str, tuple[str, str]]:
    """The job's actors not DEAD: id -> (class, state)."""
    return {a: (info["ActorClassName"], info["State"]) for a, info in _job_actors().items() if info["State"] != "DEAD"}


def _look() -> tuple[dict[str, tuple[bool, str]], dict[str, str]]:
    import ray

    nodes = {n["NodeID"]: (bool(n["Alive"]), n.get("NodeManagerAddress", n["NodeID"][:8])) for n in ray.nodes()}
    restarting = _job_actors("RESTARTING")
    return nodes, {a: (info.get("Address") or {}).get("NodeID", "") for a, info in restarting.items()}


def _job_actors(state_name: str | None = None) -> dict[str, dict]:
    """This job's actors in Ray's actor table (in one state, if given): id -> Ray's record."""
    import ray
    from ray._private import state

    job = ray.JobID.from_hex(ray.get_runtime_context().get_job_id())
    return state.actors(job_id=job, actor_state_name=state_name)


def _kill(actor_id: str) -> None:
    import ray
    from ray._private.worker import global_worker

    # ray.kill(handle, no_restart=True) by id: the driver's core worker holds Ray Data's handles
    global_worker.core_worker.kill_actor(ray.ActorID.from_hex(actor_id), True)
