"""The shape the code is kept in: thin panels over a core both faces share (docs/architecture.md).

No file in ``gui/`` over 500 lines, no function over 80 lines, and no re-export alias left: a name
is imported from the module that defines it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lesion_studio

ROOT = Path(lesion_studio.__file__).parent
MAX_GUI_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(ROOT.rglob("*.py"))]


def test_no_gui_file_is_over_500_lines() -> None:
    long = {str(p.relative_to(ROOT)): len(text.splitlines()) for p, text in _sources()
            if "gui" in p.relative_to(ROOT).parts and len(text.splitlines()) > MAX_GUI_FILE_LINES}
    assert long == {}


def test_no_function_is_over_80_lines() -> None:
    long = set()
    for path, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                    node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.add(f"{path.relative_to(ROOT).as_posix()} {node.name}")
    assert long == set()


def test_no_re_export_aliases() -> None:
    """``from x import y as y`` and ``# re-exported`` imports hide where a name lives: callers
    import it from its home. (Package ``__init__`` files, which are a package's public face, are
    the exception.)"""
    found = []
    for path, text in _sources():
        if path.name == "__init__.py":
            continue
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and any(a.asname and a.asname == a.name for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} __all__")
        found += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(text.splitlines(), 1)
                  if "re-export" in line and line.lstrip().startswith(("from ", "import "))]
    assert found == []
