"""Thumbnails for the dataset browser: rendered in the background, cached on disk and in memory.

The table asks for a thumbnail only for rows it paints, so a 2,000-image project costs nothing
until scrolled. Missing ones are queued newest-first; while they render the row shows none.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from lesion_studio.gui.workers import TaskPool
from lesion_studio.io.display import cached_thumbnail

THUMB_SIZE = 56


def qimage_from_gray(arr: np.ndarray) -> QImage:
    """An 8-bit grey array as a QImage that owns its pixels (the array may go away)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_Grayscale8).copy()


def pixmap_from_gray(arr: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(qimage_from_gray(arr))


class ThumbnailCache(QObject):
    """``get(id, path, sha)`` returns a QPixmap or None (and starts rendering); ``ready(id)`` follows."""

    ready = Signal(int)

    def __init__(self, cache_dir: Path, capacity: int = 600, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache_dir = cache_dir
        self.capacity = capacity
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._failed: set[int] = set()
        self._pool = TaskPool(threads=1, parent=self)  # one thread: the viewer's decoding comes first
        self._pool.done.connect(self._on_done)
        self._pool.failed.connect(lambda key, _msg: self._failed.add(key))

    def get(self, image_id: int, path: Path, sha256: str) -> QPixmap | None:
        pix = self._pixmaps.get(image_id)
        if pix is not None:
            self._pixmaps.move_to_end(image_id)
            return pix
        if image_id not in self._failed:
            if self._pool.pending_count() > 120:  # scrolled far: older requests are off-screen
                self._pool.drop_queued()
            self._pool.submit(image_id, lambda: cached_thumbnail(path, sha256, self.cache_dir, THUMB_SIZE))
        return None

    def _on_done(self, image_id: int, arr: np.ndarray) -> None:
        self._pixmaps[image_id] = pixmap_from_gray(arr)
        while len(self._pixmaps) > self.capacity:
            self._pixmaps.popitem(last=False)
        self.ready.emit(image_id)

    def forget_failures(self) -> None:
        self._failed.clear()

    def shutdown(self) -> None:
        self._pool.shutdown()
