"""The desktop app: a thin PySide6 + pyqtgraph face over the headless core.

Nothing here holds logic the core lacks. Qt is imported only inside this package.
"""

from lesion_studio.gui.compat import immortalize_bools

immortalize_bools()
