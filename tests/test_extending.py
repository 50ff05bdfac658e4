"""docs/architecture.md says adding a filter or a stage is one file plus one line. Here both of
its examples are taken from the page as written, applied to a copy of the packages, and run in a
fresh interpreter: the file and the line are all it takes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def blocks(heading: str) -> list[str]:
    """The python code blocks of one section of the page."""
    section = DOC.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def copy_packages(tmp_path: Path) -> Path:
    for pkg in ("filters", "pipeline"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run(tmp_path: Path, code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_adding_a_filter_is_its_file_and_one_line(tmp_path):
    module, line = blocks("Adding a filter: one file plus one line")
    path = module.splitlines()[0].removeprefix("# ").strip()
    root = copy_packages(tmp_path)
    (root / path).write_text(module, encoding="utf-8")
    init = root / "filters" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    last = [m for m in re.finditer(r"^from \. import \w+.*$", text, re.M)][-1]
    init.write_text(text[: last.end()] + "\n" + line.strip() + text[last.end() :], encoding="utf-8")
    out = run(
        root,
        """
import filters
from filters import FiltersConfig, Judge, Sample
cfg = FiltersConfig(order=["format", "answer_length"], answer_length={"max_chars": 10})
verdicts, reason = Judge(cfg)(Sample("<think>\\nwork\\n</think>\\n\\n" + "x" * 50, True))
print(reason, verdicts[-1].detail, "answer_length" in FiltersConfig().order, FiltersConfig().answer_length.max_chars)
""",
    )
    assert out.split() == ["answer_too_long", "50", "chars,", "at", "most", "10", "False", "4000"]


def test_adding_a_stage_is_its_file_and_one_line(tmp_path):
    module, line = blocks("Adding a stage: one file plus one line")
    path = module.splitlines()[0].removeprefix("# ").strip()
    root = copy_packages(tmp_path)
    (root / path).write_text(module, encoding="utf-8")
    init = root / "pipeline" / "stages" / "__init__.py"
    text, n = re.subn(r"^GENERATION = .*$", line.strip(), init.read_text(encoding="utf-8"), count=1, flags=re.M)
    assert n == 1
    init.write_text(text, encoding="utf-8")
    out = run(
        root,
        """
from pipeline.config import JobConfig
from pipeline.schema import to_table
from pipeline.stages import GENERATION, Context, stages_for
cfg = JobConfig.model_validate({"input": {"path": "p"}, "teacher": {"model": "m"}})
chain = stages_for(GENERATION, Context(cfg))
print(" ".join(s.name for s in chain))
rows = [{"status": "accepted", "prompt_id": "p", "messages": [{"role": "assistant", "content": c}]} for c in "aab"]
print(" ".join(r["status"] for r in chain[-1]()(to_table(rows)).to_pylist()))
""",
    )
    assert out.splitlines() == ["prepare generate parse filter dedup", "accepted rejected accepted"]
