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
