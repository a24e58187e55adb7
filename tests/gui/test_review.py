"""Blinded realism review: keys answer, ratings are stored per rater, accuracy with its CI."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lesion_studio.gui import settings as prefs
from lesion_studio.review import rater_score
from lesion_studio.samples.batch import generate_candidates
from tests.stub_models import StubTranslator

KEYS = {"real": (Qt.Key.Key_1, Qt.Key.Key_R), "synthetic": (Qt.Key.Key_2, Qt.Key.Key_S)}


def _rate(qtbot, dialog, choose) -> None:  # noqa: ANN001
    """Answer every item with the keyboard; ``choose(item) -> "real" | "synthetic"``."""
    for k in range(len(dialog.items)):
        qtbot.waitUntil(lambda k=k: dialog.position == k and dialog.real_button.isEnabled(), timeout=10_000)
        shown = dialog.image.image
        assert shown.shape == (256, 256) and shown.dtype == np.uint8  # same size and scale for both kinds
        answer = choose(dialog.items[k])
        qtbot.keyClick(dialog.view, KEYS[answer][k % 2])  # 1/R and 2/S both work


def test_perfect_and_always_real_raters(qtbot, window) -> None:  # noqa: ANN001
    project = window.session.project
    generate_candidates(project, StubTranslator(), count=6, batch_name="for-review", seed=2)
    window.actions_by_key["realism_review"].trigger()
    dialog = window.panels["gallery"]._review
    assert dialog is not None and dialog.isVisible()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()

    # a perfect rater
    dialog.rater_edit.setText("alice")
    dialog.count_spin.setValue(4)
    dialog.seed_spin.setValue(7)
    with qtbot.waitSignal(dialog.session_finished, timeout=30_000) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        assert len(dialog.items) == 8 and {i.kind for i in dialog.items} == {"real", "synthetic"}
        dialog.view.setFocus()
        _rate(qtbot, dialog, lambda item: item.kind)
    score = finished.args[0]
    assert (score.answered, score.accuracy) == (8, 1.0)
    assert score.ci_low > 0.6 and score.ci_high == 1.0
    assert "Accuracy 100%" in dialog.score_label.text()
    assert not dialog.real_button.isEnabled() and dialog.start_button.isEnabled()

    # a rater who calls everything real: 50%, all real right, all synthetic wrong
    dialog.rater_edit.setText("bob")
    with qtbot.waitSignal(dialog.session_finished, timeout=30_000) as finished:
        assert dialog.start()
        dialog.view.setFocus()
        _rate(qtbot, dialog, lambda item: "real")
    score = finished.args[0]
    assert score.accuracy == 0.5 and score.specificity_real == 1.0 and score.sensitivity_synthetic == 0.0
    assert score.ci_low < 0.5 < score.ci_high
    assert "could not reliably tell" in dialog.score_label.text()

    # stored per rater, in the project
    assert rater_score(project, "alice").accuracy == 1.0 and rater_score(project, "bob").accuracy == 0.5
    rows = project.ratings(rater="alice")
    assert len(rows) == 8 and {r["item_ref"].split(":")[0] for r in rows} == {"box", "sample"}
    assert len({r["session"] for r in rows}) == 1
    # the rater's name is remembered
    assert prefs.app_settings().value("review/rater") == "bob"
    dialog.close()


def test_review_needs_a_rater_and_items(qtbot, demo_project) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.review import ReviewDialog

    dialog = ReviewDialog(demo_project)
    qtbot.addWidget(dialog)
    dialog.rater_edit.setText("")
    assert not dialog.start() and "rater name" in dialog.score_label.text()
    dialog.rater_edit.setText("carol")
    assert not dialog.start() and "Nothing to review" in dialog.score_label.text()  # no synthetic samples yet
    dialog.close()


@pytest.mark.parametrize("kind", ["real", "synthetic"])
def test_patches_of_both_kinds_are_rendered_alike(demo_project, kind) -> None:  # noqa: ANN001
    from lesion_studio.review import build_review_items, review_patch

    generate_candidates(demo_project, StubTranslator(), count=2, batch_name="r", seed=1)
    item = next(i for i in build_review_items(demo_project, 2, seed=0) if i.kind == kind)
    patch = review_patch(demo_project, item)
    assert patch.shape == (256, 256) and patch.dtype == np.uint8
    lo, hi = np.percentile(patch, [1, 99])
    assert lo <= 3 and hi >= 252  # the same percentile windowing for every item


def _on_screen(dialog, window) -> str:  # noqa: ANN001
    """Everything a rater can read during an item: texts, titles, tooltips, accessible names and
    the status bar, with numbers masked (the item counter is allowed to change)."""
    import re

    from PySide6.QtWidgets import QWidget

    parts = [dialog.windowTitle(), window.statusBar().currentMessage(), dialog.image.toolTip()]
    for w in [dialog, *dialog.findChildren(QWidget)]:
        if not w.isVisible():
            continue
        text = w.text() if hasattr(w, "text") and callable(w.text) else ""
        parts += [type(w).__name__, w.objectName(), str(text), w.toolTip(), w.statusTip(), w.whatsThis(),
                  w.accessibleName(), w.accessibleDescription(), str(w.isEnabled())]
    return re.sub(r"\d+", "#", "\n".join(parts))


def test_nothing_on_screen_tells_real_from_synthetic(qtbot, window) -> None:  # noqa: ANN001
    """The blinded review shows the same words, widgets and image format for both kinds: only the
    pixels differ."""
    project = window.session.project
    generate_candidates(project, StubTranslator(), count=6, batch_name="blind", seed=2)
    window.actions_by_key["realism_review"].trigger()
    dialog = window.panels["gallery"]._review
    qtbot.waitExposed(dialog)
    dialog.rater_edit.setText("carol")
    dialog.count_spin.setValue(4)
    dialog.seed_spin.setValue(3)
    assert dialog.start()
    screens: dict[str, set[str]] = {"real": set(), "synthetic": set()}
    formats: dict[str, set[tuple]] = {"real": set(), "synthetic": set()}
    for k, item in enumerate(list(dialog.items)):
        qtbot.waitUntil(lambda k=k: dialog.position == k and dialog.real_button.isEnabled(), timeout=10_000)
        screens[item.kind].add(_on_screen(dialog, window))
        shown = dialog.image.image
        formats[item.kind].add((shown.shape, str(shown.dtype), tuple(map(float, dialog.image.levels))))
        dialog.answer("real")
    assert screens["real"] and screens["real"] == screens["synthetic"] and len(screens["real"]) == 1
    assert formats["real"] == formats["synthetic"] == {((256, 256), "uint8", (0.0, 255.0))}
    dialog.close()
