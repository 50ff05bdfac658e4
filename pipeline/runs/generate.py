"""The generation job: read -> prepare -> generate -> parse -> filter [-> select] -> write.

``run`` opens the run folder (new, resume, or already complete), holds its lock, streams the
input through the stages of ``stages.GENERATION`` into the Parquet sink, and then writes what
the folder holds: the summary (last, counted from the committed parts), the budget plot of a
sweep, the unsolved prompts of an adaptive run.

Re-running the same command after a crash resumes: the prompts already committed are kept and
skipped, half-written ones are redone (``pipeline.committed``). With ``output.incremental`` the
prompts that other runs under the same output path (completed, or unfinished and not running)
generated with the same settings are skipped too (``pipeline.catalog``); every run that ends,
completed or not, rebuilds the output root's ``manifest.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace

from .. import catalog, progress, report, rounds
from ..cluster import check_resources, init_ray
from ..committed import DoneSet
from ..config import JobConfig
from ..cores import restored
from ..identity import identity_config
from ..ledger import IdLedger, Locations
from ..logprobs import tokenizer_meta
from ..node_loss import NodeLoss, end_stopped_pass
from ..read import read_input
from ..report import modes
from ..report import summary as summaries
from ..run_folder import SAMPLES, RunFolder
from ..samples import plan_samples
from ..stages import GENERATION, Context, chain
from ..stages.generate.starts import ReplicasDown, Watch
from ..stages.generate.suspects import call
from ..tally import Tally
from .plan import RunPlan, check_teacher, make_plan, resource_needs

log = logging.getLogger(__name__)


def identity(cfg: JobConfig, p: RunPlan) -> dict:
    """What makes a run this run: its config (less the speed settings) and its input files."""
    # less the settings marked SPEED in pipeline/config.py (storage options and their secrets among them)
    c = identity_config(json.loads(cfg.model_dump_json()))
    fs = p.files.filesystem
    files = [{"path": path, "bytes": fs.size(path)} for path in p.files.paths]
    return {"config": c, "input": {"files": files, "rows": p.inputs}}


def run(cfg: JobConfig, p: RunPlan | None = None, engine_factory=None) -> dict:
    """Run (or resume) the job; returns the summary (also written to ``summary.json``). A run
    already complete is not run again: its summary comes back with ``"already_complete": true``.
    ``engine_factory``: the replicas' engines are made by it, not vLLM (the benchmarks' stand-in,
    ``bench.simulate``)."""
    from ..logprobs import settle
    from ..sink import SplitParquetSink

    p = p or make_plan(cfg)
    check_teacher(cfg.teacher)
    folder = RunFolder(p.run_url)
    ident = identity(cfg, p)
    state = folder.open(ident, cfg.output.overwrite)
    if state == "complete":
        catalog.write_manifest(cfg.output.path)  # idempotent: a manifest lost or older than the run
        return {**folder.read_summary(), "already_complete": True}
    if cfg.output.overwrite:  # a completed run this one replaces leaves the manifest now
        catalog.write_manifest(cfg.output.path)
    with folder.lock():
        locations = Locations(p.files.paths)
        k = cfg.generation.accepted_per_prompt
        done, done_samples, dropped, owners = DoneSet.of([]), None, 0, None
        if state == "resume" and k:  # sample until verified: a resume keeps every committed sample
            done, done_samples, dropped, owners = folder.reconcile_samples(locations.pack_all)
        elif state == "resume":
            done, dropped, owners = folder.reconcile(p.samples_per_input, locations.pack_all)
        fp = catalog.fingerprint(ident["config"])
        earlier, earlier_runs = (
            catalog.earlier_prompts(cfg.output.path, fp, cfg.output.run_id) if cfg.output.incremental else (None, [])
        )
        init_ray(cfg.ray.address, p.ray_cpus, cfg.storage_options, cfg.ray.verbose)
        check_resources(*resource_needs(cfg, p))
        ledger = IdLedger.start(p.files.paths, p.inputs, seed=owners)
        started = time.time()
        sink = SplitParquetSink(folder, cfg.output.rows_per_file, attempt=started, logprobs=logprob_settings(cfg))
        deadline = started + cfg.ray.deadline_s if cfg.ray.deadline_s else None
        first = rounds.Round(0, rounds.cuts(k, cfg.generation.samples_per_prompt)[0]) if k else None
        start = Context(cfg, p, done, ledger, deadline, earlier, engine_factory, round=first, done_samples=done_samples)
        if k and state == "resume":
            ctx = first_round(start, folder, deadline)
        elif state == "resume":  # killed after its last commit, before its summary: no pass
            ctx = unless_all_committed(start)
        else:
            ctx = start
        passes, stats, lost = 0, None, []
        # restored: isolate_cores moves the driver off the engines' cores (pipeline.cores); it may start others after
        with restored(), progress.shown(start, p.expected_samples, len(done) * p.samples_per_input):
            while ctx is not None:  # one pass; with k, one per round (each decided from the last one's verdicts)
                sink.before = (stats["engine_deaths"], stats["replica_restarts"]) if stats else (0, 0)
                tripped = stream(ctx, sink, cfg)
                passes += 1
                stats = summaries.add_stats(
                    stats, call(ctx.shared["deaths"], "stats") if "deaths" in ctx.shared else None
                )
                if tripped is not None:  # a node lost, no room for its actors: this pass again, less its commits
                    lost.append(tripped)
                    ctx = redo(ctx, folder, locations, deadline, len(lost))
                    if ctx is not None:  # the progress line counts from what is committed again
                        committed = len(ctx.done) * p.samples_per_input + (len(ctx.done_samples) if k else 0)
                        call(ctx.shared["progress"], "rebase", committed - len(done) * p.samples_per_input)
                    continue
                ctx = later_round(ctx, folder, deadline)
        folder.reconcile(None)  # a write task Ray retried may have left a second copy: drop it
        kept_logprobs = settle(folder) if cfg.output.logprobs else None  # logprobs/: the accepted samples'
        t = Tally.of_committed(folder)  # every attempt's rows, and engine timings (in the parts' metadata)
        facts = summaries.RunFacts(
            time.time() - started,
            summaries.over_attempts(t, started, stats),
            resumed={"prompts_kept": len(done), "rows_dropped": dropped} if state == "resume" else None,
            fingerprint=fp,
            runs_consulted=tuple(earlier_runs),
            logprobs={"top_k": cfg.output.logprobs.top_k, **kept_logprobs} if kept_logprobs is not None else None,
            deadline_passed=deadline is not None and time.time() >= deadline,
            passes=passes,
            verified=verified_block(cfg, folder) if k else None,
            nodes_lost=tuple(lost),
        )
        if summaries.stopped_at_deadline(t, p.inputs, p.samples_per_input, facts):
            # not complete: no summary.json (a re-run resumes); what it got to, for the log
            summary = summaries.build(cfg, p.inputs, p.samples_per_input, p.run_url, t, facts)
            folder.write_bytes("summary.partial.json", json.dumps(summary, indent=1).encode())
        else:
            summary = complete(cfg, p, folder, t, facts)
    # after the lock is gone: an unfinished run's committed samples are in the manifest too (marked so)
    catalog.write_manifest(cfg.output.path)
    return summary


def stream(ctx: Context, sink, cfg: JobConfig) -> dict | None:
    """One pass of the input through the stages into the sink, under the engines' start watch and
    the node-loss watch. -> None, or why the node-loss watch stopped the pass (``NodeLoss.tripped``)."""
    ds = chain(read_input(ctx.plan.files, cfg.input.limit), GENERATION, ctx)
    sink.deaths = ctx.shared.get("deaths")  # made with the generate stage
    w = Watch(sink.deaths, cfg.teacher.replicas, cfg.teacher.min_replicas, cfg.teacher.start_timeout_s)
    lost = NodeLoss(cfg.ray.node_loss_grace_s)
    try:  # around the watches' exits too: an interrupt sent as the pass ended arrives while they stop
        with w, lost:
            ds.write_datasink(sink)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt) and w.failure:  # too few engines came up: the watch stopped the dataset
            raise ReplicasDown(w.failure) from None
        if lost.tripped:  # a lost node's actors found no room: the watch stopped the pass (or their tasks failed)
            sink.folder.settle()  # its last write tasks may still commit
            end_stopped_pass()  # its surviving replicas hold what the new pass's need
            return lost.tripped
        raise
    return None


MAX_REDONE_PASSES = 10  # node losses one run redoes a pass for before it gives up (a re-run resumes)


def redo(ctx: Context, folder: RunFolder, locations: Locations, deadline: float | None, times: int) -> Context | None:
    """The pass a node loss stopped, again: what it committed is kept, as a resume keeps it (half-
    committed prompts dropped, each row once, transient errors redone), and the rest is made; a
    k-run goes on from round 0 as a resumed one does. None when the deadline is up (the run is
    then unfinished, and resumes later) or, in a k-run, when nothing is left to make."""
    if deadline is not None and time.time() >= deadline:
        return None
    if times > MAX_REDONE_PASSES:
        raise RuntimeError(
            f"{times} passes stopped by lost nodes in one run; giving up (running the same command "
            f"again resumes: what is committed is kept)"
        )
    g = ctx.job.generation
    if not g.accepted_per_prompt:
        done, dropped, _ = folder.reconcile(ctx.plan.samples_per_input, locations.pack_all)
        again = unless_all_committed(replace(ctx, done=done))  # the stopped pass may have committed it all
        if again is not None:
            log.warning(
                "redoing the pass a lost node stopped: %d prompt(s) done, %d half-committed row(s) dropped",
                len(done),
                dropped,
            )
        return again
    # a k-run starts over from round 0 as a resume does: the transient errors reconcile drops, of any
    # round, are made again there (a later round makes only its own draws)
    done, done_samples, dropped, _ = folder.reconcile_samples(locations.pack_all)
    log.warning(
        "redoing the pass a lost node stopped: %d sample(s) kept, %d row(s) dropped", len(done_samples), dropped
    )
    return first_round(replace(ctx, done=done, done_samples=done_samples), folder, deadline)


def unless_all_committed(ctx: Context) -> Context | None:
    """``ctx``, or None (no pass) when every input row is committed: a pass would start the engines
    (a model load per replica) to make nothing. Each input row is one key of the done set (its prompt
    id, or its location for a row of bad input), so ``len(done) == plan.inputs`` means all of them."""
    if len(ctx.done) < ctx.plan.inputs:
        return ctx
    log.warning("nothing left to generate: all %d input row(s) are committed; no engine is started", len(ctx.done))
    return None


def first_round(ctx: Context, folder: RunFolder, deadline: float | None) -> Context | None:
    """A k-run that goes on from what is committed (a resume, a pass a lost node stopped): round 0,
    or, when round 0 is all committed, the next round that needs anything (no pass, and no engine
    start, for round 0); None when none does."""
    g = ctx.job.generation
    ctx = replace(ctx, round=rounds.Round(0, rounds.cuts(g.accepted_per_prompt, g.samples_per_prompt)[0]))
    if rounds.first_round_held(
        folder, g.accepted_per_prompt, g.samples_per_prompt, ctx.plan.samples_per_input, ctx.plan.inputs
    ):
        return later_round(ctx, folder, deadline)
    return ctx


def later_round(ctx: Context, folder: RunFolder, deadline: float | None) -> Context | None:
    """Sample until verified: the next round's context (the groups short of k accepted), or None
    when no group needs more, the deadline is up, or the run makes every sample in one pass."""
    g = ctx.job.generation
    if ctx.round is None or (deadline is not None and time.time() >= deadline):
        return None
    nxt = rounds.next_round(
        folder,
        ctx.round.index + 1,
        g.accepted_per_prompt,
        g.samples_per_prompt,
        plan_samples(g, ctx.job.teacher.model, ctx.job.teacher.dialect),
    )
    if nxt is None:
        return None
    log.info(
        "round %d: %d samples of the prompts short of %d accepted", nxt.index, len(nxt.wanted), g.accepted_per_prompt
    )
    return replace(ctx, round=nxt)


def complete(cfg: JobConfig, p: RunPlan, folder: RunFolder, t: Tally, facts: summaries.RunFacts) -> dict:
    """What a completed run writes beside its data (the budget plot, the adaptive choice's
    unsolved prompts, the report, the dataset card), and ``summary.json`` last; returns it."""
    from ..report.budget import budget_rows, plot_png

    if any(m.sweep or m.forces_thinking for m in cfg.generation.modes):  # plot it beside the data
        facts = replace(
            facts,
            budget_plot=folder.write_bytes(
                "budget_report.png", plot_png(budget_rows(t.budgets), f"thinking control: {cfg.teacher.label}")
            ),
        )
    if cfg.generation.adaptive:
        facts = replace(facts, adaptive=adaptive(cfg, folder))
    if cfg.generation.accepted_per_prompt:  # every sample gets its prompt's pass rate; unsolved.jsonl
        facts = replace(facts, verified=verified_block(cfg, folder, stamp=True))
    # report.html beside summary.json, rendered from it (a report that cannot be made is a warning)
    where = f"{folder.url}/{report.REPORT}"
    summary = summaries.build(cfg, p.inputs, p.samples_per_input, p.run_url, t, replace(facts, report=where))
    if report.write(folder, summary, report.resolved_config(cfg)) is None:
        summary = summaries.build(cfg, p.inputs, p.samples_per_input, p.run_url, t, replace(facts, report=None))
    write_card(cfg, folder, summary)
    folder.finish(summary)
    return summary


def logprob_settings(cfg: JobConfig) -> tuple[int, dict] | None:
    """``output.logprobs``: (top-k, the tokenizer's and chat template's hashes) for the sidecar."""
    if cfg.output.logprobs is None:
        return None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cfg.teacher.model, trust_remote_code=cfg.teacher.engine.trust_remote_code)
    return cfg.output.logprobs.top_k, tokenizer_meta(tok)


def adaptive(cfg: JobConfig, folder: RunFolder) -> dict:
    """The adaptive block, recounted from the committed rows of each prompt."""
    from ..stages.select import SelectSettings, recount

    g = cfg.generation
    order = {m.name: (i, m.budgets) for i, m in enumerate(g.modes)}
    groups: dict[str, list[dict]] = {}
    for status, t in folder.tables(
        ["prompt_id", "mode", "verdicts", "source", "reference", "messages", "thinking_budget", "sample_index"], SAMPLES
    ):
        for r in t.to_pylist():
            if r["prompt_id"] is not None:
                groups.setdefault(r["prompt_id"], []).append({**r, "status": status})

    def made(r):  # the order prepare made a prompt's samples in
        i, budgets = order.get(r["mode"], (len(order), []))
        return i, budgets.index(r["thinking_budget"]) if r["thinking_budget"] in budgets else 0, r["sample_index"]

    counts, unsolved = recount((sorted(rows, key=made) for rows in groups.values()), SelectSettings.of(cfg))
    path = folder.write_jsonl("unsolved.jsonl", sorted(unsolved, key=lambda u: u["prompt_id"]))
    return modes.adaptive_summary(g.adaptive, g.samples_per_prompt, counts, path)


def verified_block(cfg: JobConfig, folder: RunFolder, stamp: bool = False) -> dict:
    """Sample until verified: the summary's block from the committed samples; with ``stamp``, also
    each sample's ``prompt_*`` columns and ``unsolved.jsonl`` (a completed run)."""
    k, n = cfg.generation.accepted_per_prompt, cfg.generation.samples_per_prompt
    o = rounds.outcome(folder, k, n)
    path = None
    if stamp:
        folder.restamp(("accepted", "rejected"), lambda t: rounds.stamp_table(t, o))
        path = folder.write_jsonl("unsolved.jsonl", rounds.unsolved(o, k, n, folder))
    return rounds.summary(o, k, n, path)


def write_card(cfg: JobConfig, folder: RunFolder, summary: dict) -> None:
    """The dataset card (``README.md``). The data is what matters: a card that cannot be made is
    a warning, never a failed run."""
    from ..report.card import render

    try:
        parts = {name: folder.part_names(name) for name in ("accepted", "rejected")}
        folder.write_bytes("README.md", render(cfg, summary, parts).encode("utf-8"))
    except Exception as e:  # noqa: BLE001 - any failure of the card leaves the run complete
        log.warning("the dataset card (README.md) was not written: %s: %s", type(e).__name__, e)
