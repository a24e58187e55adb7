"""Decode radiographs off the GUI thread, keep the last few, and prefetch the next.

A 1760² JPEG 2000 DICOM takes a few hundred milliseconds to decode; doing that on the GUI thread
would freeze the window on every PgDn. Here decoding runs on a small private pool, results land
in an LRU cache (a 16-bit 3-megapixel image is ~6 MB, so six of them cost little), and the
image after the current one is decoded while the reader looks at this one.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from lesion_studio.gui.workers import TaskPool
from lesion_studio.io.radiograph import Radiograph
from lesion_studio.io.reader import open_radiograph

log = logging.getLogger(__name__)


class ImageLoader(QObject):
    """``request(id, path)`` → ``loaded(id, Radiograph)`` or ``failed(id, message)``."""

    loaded = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, capacity: int = 6, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.capacity = capacity
        self._cache: OrderedDict[tuple[int, str], Radiograph] = OrderedDict()
        self._pool = TaskPool(threads=2, parent=self)
        self._pool.done.connect(self._on_done)
        self._pool.failed.connect(self._on_failed)
        self._wanted: tuple[int, str] | None = None

    def cached(self, image_id: int, path: Path) -> Radiograph | None:
        key = (image_id, str(path))
        rg = self._cache.get(key)
        if rg is not None:
            self._cache.move_to_end(key)
        return rg

    def request(self, image_id: int, path: Path) -> None:
        """Ask for an image to show; the answer is a signal (at once when cached)."""
        key = (image_id, str(path))
        self._wanted = key
        rg = self.cached(image_id, path)
        if rg is not None:
            self.loaded.emit(image_id, rg)
            return
        self._pool.submit(key, lambda p=Path(path): open_radiograph(p))

    def prefetch(self, image_id: int, path: Path) -> None:
        """Decode in the background without showing; silently skip files that fail."""
        key = (image_id, str(path))
        if key not in self._cache:
            self._pool.submit(key, lambda p=Path(path): open_radiograph(p))

    def forget(self, image_id: int | None = None) -> None:
        """Drop cached images (all, or one) after a re-link changes paths."""
        for key in list(self._cache):
            if image_id is None or key[0] == image_id:
                del self._cache[key]

    def _on_done(self, key: tuple[int, str], rg: Radiograph) -> None:
        self._cache[key] = rg
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        if key == self._wanted:
            self.loaded.emit(key[0], rg)

    def _on_failed(self, key: tuple[int, str], message: str) -> None:
        if key == self._wanted:
            log.warning("cannot show image %s: %s", key[1], message)
            self.failed.emit(key[0], message)

    def shutdown(self) -> None:
        self._pool.shutdown()
