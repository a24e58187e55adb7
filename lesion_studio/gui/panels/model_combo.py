"""The model menu of the Synthesis panel and the Gallery (the models a project can use), and a
combo-box refill that keeps the current choice.

Both list :func:`lesion_studio.builtin_models.model_choices`: the project's own models, then the
built-in ones it has not copied in yet (registered on first use), so a fresh project can
translate and generate with a built-in generator at once. The list is re-read each time it opens,
so a model that just finished training is there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QComboBox, QWidget

from lesion_studio.builtin_models import ModelChoice
from lesion_studio.gui.elided import ElidedComboBox

CHOICE_ROLE = Qt.ItemDataRole.UserRole + 1


class ModelCombo(ElidedComboBox):
    """Items are :class:`ModelChoice` s; ``currentData()`` is the choice's ``ref`` (an id, or
    ``builtin:<name>`` for a built-in not registered yet). A long model name is elided in the
    panels' narrow columns; the popup lists it whole."""

    def __init__(self, refresh: Callable[[], None], empty: str, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self._refresh = refresh
        self._empty = empty

    def showPopup(self) -> None:  # noqa: N802 - Qt override
        self._refresh()
        super().showPopup()

    def fill(self, choices: list[ModelChoice], keep: object, default: int) -> None:
        """List ``choices``, keeping the item whose ref is ``keep``, else selecting row ``default``.
        Emits no index change: the caller decides whether the choice changed."""
        with QSignalBlocker(self):
            self.clear()
            for c in choices:
                self.addItem(c.label(), c.ref)
                self.setItemData(self.count() - 1, c, CHOICE_ROLE)
            if not choices:
                self.addItem(self._empty, None)
            index = self.findData(keep) if keep is not None else -1
            self.setCurrentIndex(index if index >= 0 else min(max(default, 0), self.count() - 1))

    def find_name(self, name: str) -> int:
        """The row of the model registered (or to be registered) as ``name``, or -1."""
        return next((i for i in range(self.count()) if getattr(self.itemData(i, CHOICE_ROLE), "name", None) == name),
                    -1)

    def current_choice(self) -> ModelChoice | None:
        return self.currentData(CHOICE_ROLE)

    def registered(self, ref: str, model_id: int) -> None:
        """A built-in listed as ``ref`` was just registered as ``model_id``: keep the item, new ref."""
        index = self.findData(ref)
        if index >= 0:
            self.setItemData(index, model_id)


def default_generator(choices: list[ModelChoice]) -> int:
    """The row chosen by default: the project's newest complete model, else the first built-in one
    (fitting ones first), else a paused (incomplete) one as the last resort."""
    complete = [i for i, c in enumerate(choices) if c.registered and c.complete]
    builtin = [i for i, c in enumerate(choices) if not c.registered]
    return (complete[-1:] or builtin[:1] or [len(choices) - 1])[0]


def refill(combo: QComboBox, items: list[tuple[str, Any]], default: int = -1) -> None:
    """Replace a combo's items, keeping the current one when it is still there (no signals)."""
    current = combo.currentData()
    with QSignalBlocker(combo):
        combo.clear()
        for text, data in items:
            combo.addItem(text, data)
        i = combo.findData(current) if current is not None else -1
        combo.setCurrentIndex(i if i >= 0 else (default if default >= 0 else combo.count() - 1))
