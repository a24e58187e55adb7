"""Results view: runs of the project, the Table-2-style AUC table and ROC curves, open folder.

The results folder is written by the experiment's own report writer (``write_report``) from
results with made-up numbers, so the view reads exactly the files a real run leaves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lesion_studio.experiment.report import write_report


def _auc(a: float) -> dict:
    return {"auc": a, "ci_low": a - 0.08, "ci_high": min(1.0, a + 0.07), "n_resamples": 200}


def _roc(power: float) -> dict:
    fpr = np.linspace(0, 1, 11)
    return {"fpr": fpr.round(5).tolist(), "tpr": (fpr ** power).round(5).tolist()}


def _entry(target: str, kind: str, auc: float | None, line: str = "headline", **extra) -> dict:  # noqa: ANN003
    e = {"target": target, "type": kind, "t": None if kind == "Baseline" else 0.5, "line": line,
         "augmented_samples": 0 if kind == "Baseline" else 40, "model_name": f"{target}-{kind}", "sha256": "x",
         "val_auc": 0.8, "transfer_from": "tibia" if kind == "TL" else None,
         "test": {"images": 30, "lesion": 12, "normal": 18, "synthetic": 0},
         "auc": _auc(auc) if auc is not None else None,
         "status": "baseline" if kind == "Baseline" else ("accepted" if auc is not None else "no samples kept"),
         **extra}
    if auc is not None:
        e["roc"] = _roc(1 / (2 * auc - 0.5))
        e["auc_spread"] = {"mean": auc, "sd": 0.02, "min": auc - 0.02, "max": auc + 0.02, "n": 3}
        if kind != "Baseline":
            e["delta_vs_baseline"] = {"delta": auc - 0.80, "ci_low": auc - 0.85, "ci_high": auc - 0.74}
            e["delta_spread"] = {"mean": auc - 0.80, "sd": 0.01, "min": 0, "max": 0, "n": 3}
    return e


def write_results(out: Path, name: str = "synthetic-numbers") -> Path:
    evaluations = [
        _entry("femur", "Baseline", 0.80), _entry("femur", "Augmented", 0.85), _entry("femur", "TL", 0.83, status="rejected on validation"),
        _entry("tibia", "Baseline", 0.75), _entry("tibia", "Augmented", None),
        _entry("femur", "Baseline", 0.78, line="including hardware"),
        _entry("femur", "Augmented", 0.82, line="including hardware"),
    ]
    results = {"name": name, "config": {"name": name, "bootstrap": {"resamples": 200, "confidence": 0.95, "seed": 0}},
               "models": {}, "studies": [], "evaluations": evaluations, "test_set": "project-test-split",
               "seconds": 12.5}
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, results, project=None)
    return out


def test_results_table_roc_and_open_folder(qtbot, demo_project, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from tests.gui.conftest import dispose, open_window

    project = demo_project
    out = write_results(project.folder / "results" / "exp1")
    assert (out / "results.json").exists() and (out / "roc-femur.png").exists()
    run = project.start_run("experiment", name="exp1", output_dir=out)
    project.update_run(run, status="finished", finished=True)
    project.start_run("experiment", name="never-finished", output_dir=project.folder / "results" / "nothing")
    opened = []
    monkeypatch.setattr("lesion_studio.gui.panels.results.QDesktopServices.openUrl",
                        lambda url: opened.append(url.toLocalFile()) or True)
    w = open_window(qtbot, project.folder)
    try:
        panel = w.panels["results"]
        w.docks["results"].show()
        w.docks["results"].raise_()
        assert panel.runs_model.rowCount() == 1  # the run without results.json is not listed
        assert "exp1" in panel.runs_model.item(0).text()
        assert panel.folder == out.resolve()

        table = panel.table.model()
        assert table.rowCount() == 5 and table.columnCount() == 13
        cells = [[table.cell(r, c) for c in range(10)] for r in range(table.rowCount())]
        assert cells[0][:7] == ["femur", "Baseline", "baseline", "–", "0", "0.800 (0.720–0.870)",
                                "0.800 ± 0.020 (n=3)"]
        assert cells[1][1:4] == ["Augmented", "accepted", "0.5"] and cells[1][7].startswith("+0.050")
        assert cells[1][8] == "+0.050 ± 0.010 (n=3)"
        # A model rejected on validation is shown for reference, greyed, and says the baseline stands.
        assert cells[2][1:3] == ["TL (from tibia)", "rejected on validation: baseline stands"]
        grey = table.data(table.index(2, 5), Qt.ItemDataRole.ForegroundRole)
        assert grey is not None and grey.red() == grey.green() == grey.blue()
        assert table.data(table.index(1, 5), Qt.ItemDataRole.ForegroundRole) is None
        assert cells[4][2] == "no samples kept: baseline stands" and cells[4][5] == "n/a (no model)"

        # ROC curves of the chosen body part: baseline vs augmented vs transfer, with AUC in the legend
        assert panel.target_combo.currentData() == "femur"
        names = panel.roc_curve_names()
        assert len(names) == 3 and names[0].startswith("Baseline") and "AUC 0.850±0.020" in names[1]
        assert names[2].startswith("TL (from tibia) t=0.5")
        augmented = next(c for c in panel.curves if c.name() == names[1])
        x, y = augmented.getData()
        assert np.allclose(x, _roc(1 / 1.2)["fpr"]) and np.allclose(y, _roc(1 / 1.2)["tpr"])
        panel.target_combo.setCurrentIndex(panel.target_combo.findData("tibia"))
        assert len(panel.roc_curve_names()) == 1  # the skipped augmented model has no curve
        panel.line_combo.setCurrentIndex(panel.line_combo.findData("including hardware"))
        assert table.rowCount() == 2

        qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
        assert opened == [str(out.resolve())]

        # a results folder from elsewhere can be added (and is remembered)
        other = write_results(tmp_path / "elsewhere" / "exp2", name="exp2")
        assert panel.add_folder(other)
        assert panel.runs_model.rowCount() == 2 and panel.folder == other.resolve()
        assert not panel.add_folder(tmp_path)  # no results.json: a warning, nothing added
        assert "no results.json" in w.banner.text.text()
    finally:
        from lesion_studio.gui import settings as prefs
        from lesion_studio.gui.panels.results import FOLDERS_KEY

        prefs.app_settings().remove(FOLDERS_KEY)  # remembered per session: later tests must not see it
        w.close()
        dispose(w)


@pytest.mark.parametrize("broken", ["{not json", '{"name": "x"}'])
def test_unreadable_results_are_a_message(qtbot, window, tmp_path, broken) -> None:  # noqa: ANN001
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "results.json").write_text(broken)
    panel = window.panels["results"]
    panel.show_folder(folder)
    assert panel.results is None and panel.table.model().rowCount() == 0
    assert "Cannot read the results" in window.banner.text.text()


def test_arm_rows_show_their_delta_against_each_control() -> None:
    from lesion_studio.gui.panels.results import COLUMNS, AucTableModel

    model = AucTableModel()
    d = {"delta": 0.021, "ci_low": -0.01, "ci_high": 0.05}
    model.set_rows([{"target": "hand", "type": "unit x0.5", "status": "accepted",
                     "delta_vs_controls": {"oversample": d, "copy_paste": {**d, "delta": -0.004}}},
                    {"target": "hand", "type": "Baseline", "status": "baseline"}])
    vs_over, vs_paste = COLUMNS.index("ΔAUC vs oversample"), COLUMNS.index("ΔAUC vs copy_paste")
    assert model.cell(0, vs_over) == "+0.021 (-0.010–+0.050)"
    assert model.cell(0, vs_paste).startswith("-0.004")
    assert model.cell(1, vs_over) == "–"


def test_rows_show_the_pointing_game_with_its_chance_and_strict_rate() -> None:
    from PySide6.QtCore import Qt

    from lesion_studio.gui.panels.results import COLUMNS, AucTableModel

    model = AucTableModel()
    rate = {"rate": 0.6, "ci_low": 0.4, "ci_high": 0.8, "n": 20}
    model.set_rows([{"target": "hand", "type": "Baseline", "status": "baseline",
                     "pointing": {"map": "lesion_map", "tolerance_px": 15, "detected": rate,
                                  "all": {**rate, "rate": 0.61, "n": 28},
                                  "strict": {"detected": {**rate, "rate": 0.3}, "all": {**rate, "rate": 0.32}},
                                  "chance": {"tolerance": 0.021, "strict": 0.005}}},
                    {"target": "hand", "type": "unit x0.5", "status": "rejected on validation"}])
    col = COLUMNS.index("Pointing game, detected lesions (95% CI)")
    assert model.cell(0, col) == "60% (40%–80%), n=20; chance 2%"
    assert model.cell(1, col) == "–"
    tip = model.data(model.index(0, col), Qt.ItemDataRole.ToolTipRole)
    assert "within 15 px" in tip and "Strictly inside a box: 30%" in tip and "all boxed test lesions: 61%" in tip


def _lesion(path: Path, box: list[float], peak: list[float], probability: float) -> dict:
    x0, y0, x1, y1 = box
    dx = max(x0 - peak[0], 0, peak[0] - x1)
    dy = max(y0 - peak[1], 0, peak[1] - y1)
    d = float(np.hypot(dx, dy))
    return {"image_id": 1, "sha256": path.stem, "path": str(path), "size": [300, 200], "boxes": [box],
            "peak": peak, "distance_px": d, "hit": d <= 15, "probability": probability}


def test_where_it_looks_shows_each_lesion_with_its_box_and_peak(qtbot, demo_project, tmp_path) -> None:  # noqa: ANN001
    """The chosen row's boxed test lesions as thumbnails, misses first, with the radiologist's box
    and the map's peak drawn where they are; a file gone since the run is said so, not raised."""
    from PIL import Image

    from tests.gui.conftest import dispose, open_window

    files = []
    for k in range(2):
        f = tmp_path / f"lesion{k}.png"
        Image.fromarray(np.full((200, 300), 90, np.uint8)).save(f)
        files.append(f)
    lesions = [_lesion(files[0], [40, 40, 80, 80], [60.0, 60.0], 0.9),      # a hit
               _lesion(files[1], [40, 40, 80, 80], [240.0, 160.0], 0.8),    # a miss, far away
               _lesion(tmp_path / "moved.png", [10, 10, 20, 20], [15.0, 15.0], 0.3)]
    pointing = {"map": "lesion_map", "tolerance_px": 15.0, "lesions": lesions,
                "detected": {"rate": 0.5, "ci_low": 0.0, "ci_high": 1.0, "n": 2},
                "all": {"rate": 2 / 3, "ci_low": 0.0, "ci_high": 1.0, "n": 3},
                "chance": {"tolerance": 0.03, "strict": 0.01}}
    out = tmp_path / "run"
    out.mkdir()
    results = {"name": "pointing", "config": {"bootstrap": {"resamples": 200, "confidence": 0.95, "seed": 0}}, "models": {}, "studies": [], "test_set": "project-test-split",
               "evaluations": [_entry("hand", "Baseline", 0.8, pointing=pointing), _entry("hand", "Augmented", 0.82)]}
    write_report(out, results, project=None)
    w = open_window(qtbot, demo_project.folder)
    try:
        panel = w.panels["results"]
        panel.show_folder(out)
        view = panel.pointing_view
        assert view.list.count() == 3 and "2 of 3" in view.summary.text() and "chance 3%" in view.summary.text()
        captions = [view.list.item(r).text() for r in range(3)]
        assert captions[0] == "miss · p 0.80"  # misses first
        qtbot.waitUntil(lambda: view.shown_count() == 2 and "file missing" in view.list.item(2).text(), timeout=20_000)
        # The miss's cross is red at the peak; the box is green at its edge (thumbnail scale 0.5).
        image = view.list.item(0).icon().pixmap(150, 100).toImage()
        peak = image.pixelColor(120, 80)
        assert peak.red() > 180 and peak.green() < 120
        edge = image.pixelColor(20, 30)
        assert edge.green() > 150 and edge.red() < 120
        # Double-clicking a lesion opens it in the viewer when the open project has that radiograph.
        shown = demo_project.images()[3]
        view.show_row("hand Baseline", {**pointing, "lesions": [
            {**lesions[0], "sha256": shown.sha256, "path": str(shown.abs_path)}, lesions[1]]})
        captions = [view.list.item(r).text() for r in range(2)]
        view.list.itemActivated.emit(view.list.item(captions.index("hit · p 0.90")))
        assert w.record is not None and w.record.id == shown.id
        view.list.itemActivated.emit(view.list.item(0))  # the miss: not in this project
        assert w.record.id == shown.id and "not in the open project" in w.statusBar().currentMessage()
        panel.show_folder(out)
        # Another row without a stored pointing game empties the view and says why.
        panel.table.selectRow(1)
        assert view.list.count() == 0 and "no pointing game" in view.summary.text()
    finally:
        dispose(w)
