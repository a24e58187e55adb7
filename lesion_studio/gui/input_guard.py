"""Form inputs that do not steal the wheel or the keyboard.

* A combo box or spin box under the mouse takes the wheel by default: scrolling down the Training
  panel turned Device from Auto to CPU. Guarded, such an input reacts to the wheel only when it
  has keyboard focus (the user clicked it); otherwise the wheel scrolls the panel it sits in.
* After typing a number and pressing Enter, focus stayed in the box and the viewer's single-key
  shortcuts (L, E, B, N, …) typed into it instead. :func:`return_focus_on_enter` hands focus back.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QWidget


class _WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            parent = watched.parentWidget()
            if parent is not None:
                QApplication.sendEvent(parent, event)  # the scroll area behind it scrolls instead
            return True
        return False


def guard_wheel(root: QWidget) -> int:
    """Guard every combo box and spin box under ``root``; returns how many. The filter is a child
    of ``root``, so it lives and dies with the widgets it guards."""
    guard = _WheelGuard(root)
    boxes = [*root.findChildren(QComboBox), *root.findChildren(QAbstractSpinBox)]
    if isinstance(root, QComboBox | QAbstractSpinBox):
        boxes.append(root)
    for box in boxes:
        box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not WheelFocus: the wheel alone never focuses it
        box.installEventFilter(guard)
    return len(boxes)


def return_focus_on_enter(box: QAbstractSpinBox, target: Callable[[], QWidget | None]) -> None:
    """After Enter in ``box``, focus goes to ``target()`` (the viewer), so shortcuts work again."""

    def done() -> None:
        widget = target()
        if box.hasFocus() and widget is not None:
            widget.setFocus()

    box.editingFinished.connect(done)
