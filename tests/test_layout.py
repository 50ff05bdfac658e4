"""The layering the architecture promises (docs/architecture.md), checked on the source itself:
``filters`` stands alone, ``pipeline`` uses ``filters`` but never an entrypoint, the benchmarks
(``bench/``) stay out of everything shipped, nothing shipped imports the tests' tiny teacher, and
no module grows past a size a reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> top-level packages it may import (besides the standard library and third parties)
ALLOWED = {
    "filters": {"filters"},
    "pipeline": {"pipeline", "filters"},
    "jobs": {"jobs", "pipeline", "filters"},
    # the benchmarks sit on top: they run the entrypoints' code and the pipeline, never ship
    "bench": {"bench", "jobs", "pipeline", "filters"},
}
MAX_LINES = 350


def imports(path: Path, package: str) -> set[str]:
    """Top-level project packages a module imports (relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
    return found & {"filters", "pipeline", "jobs", "bench", "tests"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_their_layer_allows(package):
    bad = {str(p.relative_to(ROOT)): sorted(imports(p, package) - ALLOWED[package]) for p in modules(package)}
    assert not {k: v for k, v in bad.items() if v}


def test_the_checker_sees_a_forbidden_import(tmp_path):
    (tmp_path / "m.py").write_text("from pipeline.config import JobConfig\nfrom . import base\nimport tests.x\n")
    assert imports(tmp_path / "m.py", "filters") == {"pipeline", "filters", "tests"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_module_is_too_long_to_read(package):
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules(package)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long


def test_every_stage_in_the_lists_is_a_module_with_its_declaration():
    from pipeline.stages import FILTER_JOB, GENERATION, Stage, stage_class

    for name in {*GENERATION, *FILTER_JOB}:
        cls = stage_class(name)
        assert issubclass(cls, Stage) and cls.name == name and cls.reads, name


def test_every_registered_filter_has_its_settings_section():
    from filters import REGISTRY, FiltersConfig

    cfg = FiltersConfig()
    for name, cls in REGISTRY.items():
        assert isinstance(cfg.settings(name), cls.Config) and cls.name == name
    assert cfg.order == [n for n, c in REGISTRY.items() if c.default_on]


def test_every_filter_is_in_a_file_of_its_name_and_the_helpers_are_no_filters():
    from filters import REGISTRY

    for name, cls in REGISTRY.items():
        assert cls.__module__ == f"filters.{name}", (name, cls.__module__)
    helpers = {p.stem for p in (ROOT / "filters" / "lib").glob("*.py")} - {"__init__"}
    assert helpers and not helpers & set(REGISTRY)


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at module level or inside a function (a lazy
    import still ties the two together), relative imports resolved."""

    def name(p: Path) -> str:
        parts = list(p.relative_to(root).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    mods = {name(p): p for pkg in packages for p in (root / pkg).rglob("*.py")}

    def known(dotted: str) -> str | None:
        while dotted and dotted not in mods:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph = {}
    for mod, path in mods.items():
        here = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                target = (base + ("." + node.module if node.module else "")) if node.level else node.module or ""
                deps |= {
                    known(f"{target}.{a.name}") if f"{target}.{a.name}" in mods else known(target) for a in node.names
                }
        graph[mod] = deps - {None, mod}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_anywhere():
    assert circles(import_graph(ROOT, tuple(sorted(ALLOWED)))) == []


def test_the_circle_finder_sees_one_through_a_lazy_import(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from .b import f\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from pkg.a import g\n")
    (tmp_path / "pkg" / "c.py").write_text("from . import a\n")
    assert circles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b"]]


#: floors inside ``pipeline``: a module of the left imports nothing of the right (the stages run
#: what the plan says; the run modules drive the stages, the report reads what a run wrote)
FLOORS = {"pipeline.stages": ("pipeline.runs", "pipeline.report"), "filters.lib": ("filters.base",)}


def test_no_import_up_a_floor():
    graph = import_graph(ROOT, tuple(sorted(ALLOWED)))
    up = {
        m: sorted(d for d in deps if d.startswith(above))
        for low, aboves in FLOORS.items()
        for above in aboves
        for m, deps in graph.items()
        if m.startswith(low) and any(d.startswith(above) for d in deps)
    }
    assert not up
