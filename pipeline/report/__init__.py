"""What a run says about itself, together: ``summary.json`` (``summary``: built once from the tally
and the run's facts), the console's summary (``console``), the thinking-control report and plot
(``budget``), the dataset card (``card``) and, in this module, ``report.html``.

``report.html``: one self-contained page per run folder, for the morning after a night's run.

The page renders from the run's summary dict (``summary.json``), so its counts are the
summary's (each in an element with its key path, ``page.num``); what it reads beside the summary
is bounded: a few example rows per rejection and error reason (``RunFolder.examples``), the
budget plot, ``run.json``. Inline style and inline SVG only: it opens offline from any copy of
the folder, nothing is fetched and nothing runs.

``write`` is what a job calls at the end of a run: a report that cannot be made is a warning in
the log, never a failed job (the data is what matters). ``jobs.report`` re-renders a report from
a completed folder and compares two runs (``compare``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from . import cost, counts, detail, operations
from .compare import compare
from .page import document, esc

__all__ = ["REPORT", "Beside", "compare", "gather", "render", "resolved_config", "write"]

log = logging.getLogger(__name__)

REPORT = "report.html"
#: Example rows shown per rejection / error reason.
PER_REASON = 3
_REJECTED = [
    "sample_id",
    "mode",
    "source",
    "thinking_budget",
    "reject_reason",
    "prompt_text",
    "messages",
    "thinking",
    "answer",
    "reference",
    "extracted_answer",
    "verdicts",
    "thinking_tokens",
    "answer_tokens",
    "finish_reason",
]
_ERRORS = ["error", "stage", "field", "detail", "location", "input"]


@dataclass
class Beside:
    """What the page shows that is not in the summary: read from the run folder, bounded."""

    rejected: dict = field(default_factory=dict)  # reason -> a few rejected rows
    errors: dict = field(default_factory=dict)  # error reason -> a few error rows
    budget_png: bytes | None = None
    created: float | None = None  # run.json: when the run was started
    config: dict | None = None
    config_note: str = ""


def resolved_config(cfg) -> dict:
    """A job config as ``--dry-run`` prints it: resolved, the storage options' secrets masked."""
    from ..storage import masked

    out = json.loads(cfg.model_dump_json())
    if "storage_options" in out:
        out["storage_options"] = masked(out["storage_options"])
    return out


def gather(folder, summary: dict, config: dict | None = None) -> Beside:
    """Read what the page needs beside ``summary`` from ``folder`` (a ``RunFolder``). ``config``:
    the job's resolved config; without it, the run's identity from ``run.json``."""
    run = json.loads(folder.read_bytes("run.json") or b"{}")
    note = "as resolved for this run (storage options' secrets masked)"
    if config is None and run.get("identity"):
        config = {**run["identity"]["config"], "input files": run["identity"].get("input")}
        note = (
            "run.json: what makes this run (speed settings such as replicas, and storage options, are not part of it)"
        )
    return Beside(
        rejected=folder.examples("rejected", "reject_reason", summary["rejected"]["by_reason"], PER_REASON, _REJECTED),
        errors=folder.examples(
            "error", "error", summary["errors"]["by_reason"], PER_REASON, _ERRORS, distinct="location"
        ),
        budget_png=folder.read_bytes("budget_report.png"),
        created=run.get("created"),
        config=config,
        config_note=note,
    )


_CONTENTS = [
    ("funnel", "funnel"),
    ("groups", "per mode / source"),
    ("filters", "filters"),
    ("lengths", "lengths"),
    ("budgets", "budgets"),
    ("verified", "until verified"),
    ("cost", "cost"),
    ("adaptive", "adaptive"),
    ("fusion", "fusion"),
    ("throughput", "throughput"),
    ("examples", "examples"),
    ("provenance", "provenance"),
]


def render(summary: dict, beside: Beside | None = None) -> str:
    """The report page of one run."""
    s, b = summary, beside or Beside()
    parts = {
        "funnel": counts.funnel(s),
        "groups": counts.groups(s),
        "filters": counts.filters(s),
        "lengths": detail.lengths(s),
        "budgets": detail.budgets(s, b.budget_png),
        "adaptive": detail.adaptive(s),
        "verified": cost.verified_section(s),
        "cost": cost.cost_section(s),
        "fusion": detail.fusion(s),
        "examples": detail.examples(s, b.rejected, b.errors),
        "throughput": operations.throughput(s),
        "provenance": operations.provenance(s, b.config, b.config_note, b.created),
    }
    nav = " · ".join(f'<a href="#{k}">{esc(label)}</a>' for k, label in _CONTENTS if parts[k])
    title = f"thinkmill run {s['run_id']}" if s.get("run_id") else f"thinkmill filter run {s.get('output', '')}"
    sub = " · ".join(
        esc(x)
        for x in (
            s.get("teacher"),
            s.get("dialect") and f"dialect {s['dialect']}",
            s.get("input") and f"input {s['input']}",
        )
        if x
    )
    return document(title, f"{sub}<br>{nav}", counts.overview(s) + "".join(parts[k] for k, _ in _CONTENTS))


def write(folder, summary: dict, config: dict | None = None) -> str | None:
    """Render ``report.html`` into ``folder``; returns its URL, or None (and a warning in the log)
    where it could not be made: a report never fails the job that made the data."""
    try:
        page = render(summary, gather(folder, summary, config))
        return folder.write_bytes(REPORT, page.encode("utf-8"))
    except Exception as e:  # noqa: BLE001 - any failure of the report is the report's, not the run's
        log.warning(
            "report: could not write %s/%s (%s: %s); the run's data and summary.json are complete",
            getattr(folder, "url", folder),
            REPORT,
            type(e).__name__,
            e,
        )
        return None
