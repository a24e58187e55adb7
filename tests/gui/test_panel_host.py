"""The panels' side of the window: they reach it through PanelHost only, their actions are
declared in their own specs, and short file work takes the job queue's light lane."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import lesion_studio.gui.panels as panels_pkg
from lesion_studio.gui.host import PanelHost
from lesion_studio.gui.job_queue import LIGHT, JobState

PANEL_FILES = sorted(Path(panels_pkg.__file__).parent.glob("*.py"))
#: what the window holds but a panel may not reach into (PanelHost offers what they need)
PRIVATE = {"canvas", "loader", "controller", "docks", "browser", "tools", "actions_by_key", "panels"}
HOST_NAMES = {"window", "window_", "main", "host"}


def test_panels_use_the_host_protocol_and_never_import_the_window() -> None:
    offences = []
    for path in PANEL_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "lesion_studio.gui.app":
                offences.append(f"{path.name}: imports gui.app")
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
                base = node.value
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name in HOST_NAMES:
                    offences.append(f"{path.name}:{node.lineno}: {name}.{node.attr}")
    assert PANEL_FILES and not offences, offences


def test_every_panel_keeps_its_host_under_one_name_typed_as_the_protocol() -> None:
    """``host: PanelHost`` in, ``self.host`` kept: not window, window_ or main, nor ``Any``."""
    offences = []
    for path in PANEL_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                for arg in node.args.args:
                    annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                    if arg.arg in HOST_NAMES - {"host"} or (arg.arg == "host") != (annotation == "PanelHost"):
                        offences.append(f"{path.name}:{node.lineno}: {arg.arg}: {annotation or '(none)'}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
                    and node.attr in {"window_", "main"}:  # (a "window" attribute is a synthesis window box)
                offences.append(f"{path.name}:{node.lineno}: self.{node.attr}")
    assert not offences, offences


def test_the_window_is_a_panel_host_and_builds_every_panel_action(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.gui import actions
    from lesion_studio.gui.docks import PANELS

    for name in [n for n in dir(PanelHost) if not n.startswith("_")] + list(PanelHost.__annotations__):
        assert hasattr(window, name), name
    assert not hasattr(actions, "register")  # nothing is added to a global table at import time
    keys = {s.key for s in window.action_specs}
    for spec in PANELS:
        for action in spec.actions:
            assert action.key in keys
            # menu actions become the window's QActions; a panel's own keys are bound by the panel
            assert (action.key in window.actions_by_key) == (action.context in ("window", "viewer"))
    assert len(keys) == len(window.action_specs)


def test_file_work_takes_the_light_lane_beside_a_heavy_job(qtbot, window) -> None:  # noqa: ANN001
    queue = window.job_queue
    release = threading.Event()

    def heavy(progress, cancel):  # noqa: ANN001, ANN202
        while not release.wait(0.01):
            cancel.raise_if_cancelled()

    training = queue.submit(heavy, "a long training", "cpu")
    exported = window.export_annotations(window.session.folder / "exports" / "csv", "csv")
    assert exported.device == LIGHT
    with qtbot.waitSignal(exported.finished, timeout=20_000):
        pass  # it did not wait for the heavy job
    assert exported.state == JobState.DONE and training.state == JobState.RUNNING
    assert "Exported" in window.banner.text.text()
    release.set()
    with qtbot.waitSignal(training.finished, timeout=10_000):
        pass
