"""The desktop app: a thin PySide6 + pyqtgraph face over the headless core.

Nothing here holds logic the core lacks. Qt is imported only inside this package.
"""

from lesion_studio.gui.compat import immortalize_bools, import_pyqtgraph_without_cuda_interop

immortalize_bools()
import_pyqtgraph_without_cuda_interop()
