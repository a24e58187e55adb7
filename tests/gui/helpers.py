"""Real mouse and key gestures on the viewer's viewport."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt


def pt(p: QPointF | tuple[float, float]) -> QPoint:
    if isinstance(p, tuple):
        return QPoint(round(p[0]), round(p[1]))
    return QPoint(round(p.x()), round(p.y()))


def drag(qtbot, canvas, start, end, button=Qt.MouseButton.LeftButton, steps: int = 5) -> None:  # noqa: ANN001
    """Press at ``start``, move in a few steps, release at ``end`` (viewport pixel positions)."""
    vp = canvas.viewport()
    a, b = pt(start), pt(end)
    qtbot.mousePress(vp, button, pos=a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(vp, QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps))
    qtbot.mouseRelease(vp, button, pos=b)


def click(qtbot, canvas, at, button=Qt.MouseButton.LeftButton) -> None:  # noqa: ANN001
    vp = canvas.viewport()
    qtbot.mousePress(vp, button, pos=pt(at))
    qtbot.mouseRelease(vp, button, pos=pt(at))


def viewport_center(canvas) -> tuple[float, float]:  # noqa: ANN001
    r = canvas.vb.sceneBoundingRect()
    c = canvas.viewportTransform().map(r.center())
    return c.x(), c.y()


def when_dialog_opens(answer, attribute: str, tries: int = 250) -> None:  # noqa: ANN001
    """Call ``answer(dialog)`` once a modal dialog with ``attribute`` is up.

    A fixed delay races the dialog on a busy machine (an answer sent before ``exec()`` shows the
    dialog goes nowhere), so poll every 20 ms, for at most ``tries`` polls, then give the dialog
    50 ms to settle (focus, default button) before answering.
    """
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    def poll(left: int) -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is not None and hasattr(dialog, attribute) and dialog.isVisible():
            QTimer.singleShot(50, lambda: answer(dialog))  # let it settle: focus, default button
        elif left > 0:
            QTimer.singleShot(20, lambda: poll(left - 1))

    QTimer.singleShot(0, lambda: poll(tries))


def clipped_controls(roots, min_width: int = 1) -> list[str]:  # noqa: ANN001
    """The visible buttons, labels and combo boxes under ``roots`` (docks, the status bar, tool
    bars) that are drawn cut: narrower or lower than their own minimum size hint (Qt squeezed
    them below what their text needs), or reaching past an ancestor's left or right edge (cut
    there). Reaching past an ancestor's bottom is scrolling, not clipping, so it is allowed.
    Each is described as ``"root: Class 'text' width < needed"``, to say what to fix."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel

    found: list[str] = []
    for root in roots:
        if not root.isVisible():
            continue
        controls = [w for kind in (QAbstractButton, QLabel, QComboBox) for w in root.findChildren(kind)]
        for w in controls:
            if not w.isVisible() or w.width() < min_width:
                continue
            text = w.currentText() if isinstance(w, QComboBox) else w.text()
            if not text:
                continue  # an empty readout or an icon-only button: nothing to cut
            need = w.minimumSizeHint()
            where = f"{root.objectName() or type(root).__name__}: {type(w).__name__} {text!r}"
            if w.width() < need.width() or w.height() < need.height():
                found.append(f"{where} {w.width()}x{w.height()} < {need.width()}x{need.height()}")
                continue
            ancestor = w.parentWidget()
            while ancestor is not None:
                left = w.mapTo(ancestor, QPoint(0, 0)).x()
                if left < 0 or left + w.width() > ancestor.width():
                    found.append(f"{where} spans x {left}..{left + w.width()} of {ancestor.objectName() or type(ancestor).__name__} "
                                 f"0..{ancestor.width()}")
                    break
                if ancestor is root:
                    break
                ancestor = ancestor.parentWidget()
    return found
