"""Work-arounds for bugs in the Qt binding, applied once when the GUI package is imported.

PySide6 6.12 on Python 3.11 drops one reference to ``True``/``False`` every time a signal carries
a Python bool to a Python slot (pyqtgraph's ``sigRangeChanged`` does so on every zoom and pan),
and one reference to ``None`` every time a ``None`` crosses between C++ and Python (a model's
``data()`` answering None for a role, ``currentData()`` of an item without data, an unset
property: measured −300 for 300 calls each; a GUI test costs 1,000–2,000). After enough of them
the interpreter aborts with "bool_dealloc: deallocating True or False" or "none_dealloc:
deallocating None" — mid-run or at exit; a pytest session with ~25 window tests reached it.
Python 3.12 made these singletons immortal, which is exactly the cure: on older Pythons we give
them the same effectively-infinite reference count. Harmless where the bug is absent; remove when
the minimum Python is 3.12 or PySide6 is fixed.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import sys

_HEADROOM = 1 << 40


def immortalize_bools() -> None:
    if sys.version_info >= (3, 12) or getattr(immortalize_bools, "done", False):
        return
    for value in (True, False, None):
        refcount = ctypes.c_ssize_t.from_address(id(value))
        refcount.value += _HEADROOM
    immortalize_bools.done = True  # type: ignore[attr-defined]


class _HideCudaPython(importlib.abc.MetaPathFinder):
    """Refuses ``cuda`` / ``cuda.*`` imports while it is installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "cuda" or name.startswith("cuda."):
            raise ImportError(f"{name} is not loaded by the GUI at start-up")
        return None


def import_pyqtgraph_without_cuda_interop() -> None:
    """Import pyqtgraph without its CUDA-OpenGL interop.

    pyqtgraph's RawImageWidget imports CUDA Python (``cuda.bindings``, installed with torch's CUDA
    build) to draw CuPy arrays; we never draw CuPy arrays, and that import alone costs ~90 ms of
    start-up. pyqtgraph handles the ImportError itself (``cudart = None``). The finder is removed
    right after, so torch can still load CUDA Python later.
    """
    if "pyqtgraph" in sys.modules or "cuda" in sys.modules:
        return
    finder = _HideCudaPython()
    sys.meta_path.insert(0, finder)
    try:
        import pyqtgraph  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
