"""What the report tests check on a page, shared by the unit tests (a run folder made by hand)
and the real-run tests: its counts against ``summary.json``, that it loads nothing, and how a
headless Chromium draws it."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_COUNT = re.compile(r'data-(key|sum)="([^"]*)"(?: data-run="([^"]*)")?>([^<]*)<')
CHROMIUM = "/usr/bin/chromium"


def counts(page: str) -> list[tuple[str, list[str], str | None, int]]:
    """Every count the page shows with its summary key path: (key / sum, path, run, value)."""
    return [
        (kind, json.loads(html.unescape(path)), run or None, int(text.replace(",", "")))
        for kind, path, run, text in _COUNT.findall(page)
    ]


def lookup(summary, path: list[str]):
    for k in path:
        summary = summary[int(k)] if isinstance(summary, list) else summary[k]
    return summary


def mismatches(page: str, summaries: dict) -> list[str]:
    """Counts on the page that are not the summary's (``summaries``: run -> summary; a run's own
    page has run None)."""
    bad = []
    for kind, path, run, value in counts(page):
        try:
            want = lookup(summaries[run], path)
        except (KeyError, IndexError, TypeError):
            bad.append(f"{run} {path}: on the page ({value}) but not in the summary")
            continue
        if kind == "sum":
            want = sum(want.values())
        if want != value:
            bad.append(f"{run} {path}: page {value}, summary {want}")
    return bad


def shown(page: str) -> set[tuple]:
    return {tuple(path) for kind, path, _, _ in counts(page) if kind == "key"}


def must_show(summary: dict) -> set[tuple]:
    """The count keys a run's page must show: the funnel, every reason, filter and group."""
    keys = {("inputs",), ("expected_samples",), ("accepted",), ("rejected", "total"), ("errors", "total")}
    if (summary.get("earlier") or {}).get("prompts"):
        keys |= {("earlier", "samples"), ("earlier", "prompts")} | {
            ("earlier", "by_run", r) for r in summary["earlier"]["by_run"]
        }
    for block in ("rejected", "errors"):
        keys |= {(block, "by_reason", r) for r in summary[block]["by_reason"]}
    for name, f in summary["filters"].items():
        keys |= {("filters", name, o) for o in ("passed", "failed", "skipped")}
        keys |= {("filters", name, "reasons", r) for r in f["reasons"]}
    for group in ("by_mode", "by_source"):
        keys |= {(group, g, status) for g, d in summary[group].items() for status in d}
        keys |= {("rejected", group, g, r) for g, d in summary["rejected"].get(group, {}).items() for r in d}
    keys |= {
        ("filters_by_mode", m, f, o)
        for m, d in summary.get("filters_by_mode", {}).items()
        for f in d
        for o in ("passed", "failed", "skipped")
    }
    return keys


def external_loads(page: str) -> list[str]:
    """Anything the page would fetch or run: src / href / url() / @import of anything but a local
    anchor or an inline data: image, and any script."""
    loads = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page, re.I) + re.findall(r"url\(([^)]*)\)", page, re.I)
    bad = [u for u in loads if not (u.startswith("#") or u.startswith("data:image/png;base64,"))]
    return bad + re.findall(r"<script|@import|<link|<iframe", page, re.I)


def chromium() -> str:
    """Headless Chromium, installed (Debian's ``chromium`` package) when it is missing and this
    machine can: as root with apt. Skips the test, saying why, only where it cannot be."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    why = "not root" if os.geteuid() != 0 else ("no apt-get" if not shutil.which("apt-get") else None)
    if why is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "fonts-droid-fallback"]
        for cmd in (install, ["apt-get", "update"], install):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if cmd[1] == "install" and done.returncode == 0 and os.access(CHROMIUM, os.X_OK):
                return CHROMIUM
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]
    pytest.skip(f"headless Chromium ({CHROMIUM}) is missing and cannot be installed here: {why}")


def screenshot(page_path: Path, png: Path, height: int = 2000) -> Path:
    """``page_path`` drawn by headless Chromium into ``png`` (1280 px wide), offline."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size=1280,{height}",
                page_path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert png.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return png


def picture(png: Path) -> dict:
    """What is in a screenshot: distinct colours, the share of pixels that are not near-white,
    and whether the report's dark header and outcome colours are drawn."""
    import numpy as np
    from PIL import Image

    px = np.asarray(Image.open(png).convert("RGB")).astype(int)

    def drawn(rgb) -> bool:
        return bool((np.abs(px - np.array(rgb)).max(axis=2) < 24).any())

    return {
        "size": (px.shape[1], px.shape[0]),
        "colours": len(np.unique(px.reshape(-1, 3), axis=0)),
        "ink": float((px.min(axis=2) < 230).mean()),
        "header": bool((np.abs(px[5, 5] - np.array((0x26, 0x32, 0x38))) < 24).all()),
        "accepted_green": drawn((0x2E, 0x7D, 0x32)),
        "rejected_orange": drawn((0xEF, 0x6C, 0x00)),
    }
