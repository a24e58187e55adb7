"""Widgets that shorten their text with "…" instead of being cut at their neighbour's edge.

A plain QLabel or QComboBox asks for its whole text as its minimum width; in a row that cannot
give it (the status bar of a 1280 px window, a fixed-width column of a dock) the layout squeezes
it anyway and the text is cut mid-letter with no sign that anything is missing. These ask for
little, draw what fits with an ellipsis, and show the whole text as a tooltip (a combo's popup
lists it whole), so nothing is lost and nothing forces the window wider.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QComboBox, QLabel, QStyle, QStyleOptionComboBox, QStylePainter, QWidget


class ElidedLabel(QLabel):
    """``text()`` is always the whole text; what is painted is elided to the label's width."""

    def __init__(self, text: str = "", min_chars: int = 8, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._min_chars = min_chars
        self.setTextFormat(Qt.TextFormat.PlainText)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        width = self.fontMetrics().horizontalAdvance("x" * self._min_chars + "…")
        margins = self.contentsMargins()
        return QSize(min(width + margins.left() + margins.right(), hint.width()), hint.height())

    def is_elided(self) -> bool:
        """Whether the painted text is shorter than ``text()`` (the tooltip then has the rest)."""
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, self.alignment(), shown)


class ElidedComboBox(QComboBox):
    """A combo box whose current text is elided to its width (the popup lists every item whole),
    and whose minimum width is ``min_chars`` characters rather than its longest item."""

    def __init__(self, min_chars: int = 12, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(min_chars)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """Room for the current item whole where the layout has it (the policy above alone would
        ask for ``min_chars`` only, and squeeze a short dock's combo for no reason)."""
        hint = super().sizeHint()
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        text = QSize(self.fontMetrics().horizontalAdvance(self.currentText()), hint.height())
        whole = self.style().sizeFromContents(QStyle.ContentsType.CT_ComboBox, opt, text, self)
        return QSize(max(hint.width(), whole.width()), hint.height())

    def is_elided(self) -> bool:
        return self._shown_text() != self.currentText()

    def _shown_text(self) -> str:
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        return self.fontMetrics().elidedText(opt.currentText, Qt.TextElideMode.ElideRight, field.width() - 2)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        opt.currentText = self._shown_text()
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)
