"""The generation job: read -> prepare -> generate -> parse -> filter [-> select] -> write.

``run`` claims the run folder, joins or starts Ray, streams the input through the stages of
``stages.GENERATION`` into the Parquet sink, and writes what the tallies say: the summary (last),
the budget plot of a sweep, the unsolved prompts of an adaptive run.
"""

from __future__ import annotations

import time

from .. import summary as summaries
from ..cluster import init_ray
from ..config import JobConfig
from ..run_folder import RunFolder
from ..stages import GENERATION, Context, chain
from ..stages.read import read_input
from .plan import RunPlan, make_plan


def run(cfg: JobConfig, p: RunPlan | None = None) -> dict:
    """Run the job; returns the summary (also written to ``summary.json``)."""
    from ..budget_report import plot_png
    from ..sink import SplitParquetSink

    p = p or make_plan(cfg)
    folder = RunFolder(p.run_url)
    folder.claim(cfg.output.overwrite)
    init_ray(cfg.ray.address, p.ray_cpus)
    sink = SplitParquetSink(folder, cfg.output.rows_per_file)
    started = time.time()
    chain(read_input(p.files, cfg.input.limit), GENERATION, Context(cfg, p)).write_datasink(sink)
    t = sink.tally
    summary = summaries.build(cfg, p.inputs, p.samples_per_input, p.run_url, t, time.time() - started)
    if any(len(m.budgets) > 1 for m in cfg.generation.modes):  # a sweep: plot it beside the data
        summary["budget_plot"] = folder.write_bytes(
            "budget_report.png", plot_png(summary["budget_report"], f"thinking budget sweep: {summary['teacher']}"))
    if cfg.generation.adaptive:
        unsolved = folder.write_jsonl("unsolved.jsonl", sorted(t.unsolved, key=lambda u: u["prompt_id"]))
        summary["adaptive"] = summaries.adaptive_summary(cfg.generation.adaptive, cfg.generation.samples_per_prompt,
                                                         t, unsolved)
    folder.finish(summary)
    return summary
