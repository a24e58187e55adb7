"""The data path runs one way: a package never imports one above it, and no modules form a cycle.

Read from the source (every import, the lazy ones inside functions and ``TYPE_CHECKING`` blocks
included), so a shortcut that works at run time but ties a lower room to a higher one fails here,
not in a later refactor. The GUI is held to the same rule as the core: it used to have one loop
(``gui/app.py`` re-exported ``gui/application.py``, which imports the window).
"""

from __future__ import annotations

import ast
from pathlib import Path

import lesion_studio

ROOT = Path(lesion_studio.__file__).parent

#: Rooms from the ground up. Inference (classifier scoring, synthesis, samples) sits below the
#: trainers, so viewing, synthesis and scoring never load training code. Packages not listed
#: (evaluate, demo, ...) and top-level modules (errors, files, jobs, ...) are not ranked.
ROOMS = ("io", "store", "dataset", "patches", "models", "classifier", "synthesis", "samples", "training",
         "experiment", "gui", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """lesion_studio module → lesion_studio modules it imports (anywhere in the file)."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lesion_studio"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in files)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("lesion_studio"))
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in ROOMS else None


def test_no_room_imports_a_higher_room() -> None:
    upward = []
    for module, deps in _imports().items():
        here = _room(module)
        for dep in deps:
            there = _room(dep)
            if here and there and ROOMS.index(there) > ROOMS.index(here):
                upward.append(f"{module} -> {dep}")
    assert upward == []


def test_modules_form_no_import_cycle() -> None:
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
