"""Work-arounds for bugs in the Qt binding, applied once when the GUI package is imported.

PySide6 6.12 on Python 3.11 drops one reference to ``True``/``False`` every time a signal carries
a Python bool to a Python slot (pyqtgraph's ``sigRangeChanged`` does so on every zoom and pan).
After enough view changes the interpreter aborts with "bool_dealloc: deallocating True or False",
typically at exit. Python 3.12 made the bools immortal, which is exactly the cure: on older
Pythons we give them the same effectively-infinite reference count. Harmless where the bug is
absent; remove when the minimum Python is 3.12 or PySide6 is fixed.
"""

from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 40


def immortalize_bools() -> None:
    if sys.version_info >= (3, 12) or getattr(immortalize_bools, "done", False):
        return
    for value in (True, False):
        refcount = ctypes.c_ssize_t.from_address(id(value))
        refcount.value += _HEADROOM
    immortalize_bools.done = True  # type: ignore[attr-defined]
