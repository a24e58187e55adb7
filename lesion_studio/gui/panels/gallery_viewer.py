"""A synthetic sample shown in the main viewer: its pixels in place of its source's, its window
outlined, and (on request) a classifier's class-activation map over it.

The gallery asks for a sample; when the viewer is not on the sample's source image yet, it selects
it and finishes when the image is shown. Any other image shown clears the outline and the map.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsRectItem

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui.panels.gallery_view import MARKER_COLOUR
from lesion_studio.store.records import Box, SyntheticSample

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost
    from lesion_studio.store.project import Project


class SampleInViewer:
    """What the gallery has put on the main viewer, and how to take it off again."""

    def __init__(self, host: PanelHost, project: Project) -> None:
        self.host = host
        self.project = project
        self.pending: int | None = None  # asked for, waiting for its source image to be shown
        self.shown: int | None = None
        self.outline: QGraphicsRectItem | None = None
        self.cam_item: Any = None

    def show(self, sample: SyntheticSample, classifier: str | None) -> None:
        """Show ``sample`` in the viewer (its source image first, if another one is shown)."""
        self.pending = sample.id
        record, viewer = self.host.record, self.host.viewer
        if record is not None and record.id == sample.source_image_id and viewer.radiograph is not None:
            self.apply(classifier)
            return
        self.host.select_image(sample.source_image_id)

    def image_shown(self, classifier: str | None) -> None:
        """The window put an image on the canvas: the source we asked for, or another one."""
        if self.pending is not None:
            self.apply(classifier)  # shows the sample when this image is its source
        else:
            self.clear()  # another image: the outline (and the synthetic view) are gone

    def apply(self, classifier: str | None) -> None:
        from lesion_studio.samples import load_sample_pixels

        host, viewer = self.host, self.host.viewer
        sid, self.pending = self.pending, None
        if sid is None or viewer.radiograph is None:
            return
        sample = self.project.synthetic_sample(sid)
        if host.record is None or host.record.id != sample.source_image_id:
            return
        try:
            pixels = load_sample_pixels(self.project, sample)
        except LesionStudioError as exc:
            host.show_message(str(exc), "error")
            return
        real = viewer.radiograph
        if pixels.shape != real.pixels.shape:
            host.show_message(f"Sample {sid} does not match its source image's size.", "error")
            return
        synthetic = dataclasses.replace(real, pixels=pixels.astype(real.pixels.dtype, copy=False),
                                        tags={**real.tags, "Synthetic": f"sample {sid}"})
        viewer.set_radiograph(synthetic, viewer.levels(), keep_view=True)
        self._draw_outline(sample.box)
        self.shown = sid
        if classifier:
            self.show_cam(pixels, classifier)
        viewer.set_badge(f"SYNTHETIC · sample {sid}")
        score = "" if sample.score is None else f", score {sample.score:.3f}"
        host.show_message(f"Showing synthetic sample {sid} (n = {sample.n:.2f}{score}, {sample.status}) on "
                          f"{host.record.name}; the dashed square is its window. Reselect the image for the "
                          "original.", "info")

    def _draw_outline(self, box: Box) -> None:
        self.clear()
        item = QGraphicsRectItem(box.x0, box.y0, box.width, box.height)
        pen = QPen(MARKER_COLOUR, 2)
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        item.setPen(pen)
        item.setZValue(50)
        self.host.viewer.vb.addItem(item)
        self.outline = item

    def cam_wanted(self, classifier: str | None) -> None:
        """The map overlay box was ticked (a classifier name) or unticked (None) while a sample is shown."""
        if not classifier:
            self.clear_cam()
            return
        if self.shown is not None and self.outline is not None:
            from lesion_studio.samples import load_sample_pixels

            try:
                self.show_cam(load_sample_pixels(self.project, self.project.synthetic_sample(self.shown)), classifier)
            except LesionStudioError as exc:
                self.host.show_message(str(exc), "error")

    def show_cam(self, pixels: np.ndarray, classifier: str) -> None:
        """Overlay the classifier's localisation map (its lesion map, or the class-activation map of
        an image-only classifier) on the synthetic image in the viewer. The map is read back through
        the preprocessing's frame (a ``crop_to_body`` classifier saw a crop, not the whole image)."""
        import pyqtgraph as pg

        from lesion_studio.classifier.cam import map_to_image
        from lesion_studio.classifier.preprocess import prepare_with_frame
        from lesion_studio.classifier.scoring import registered_scorer

        self.clear_cam()
        try:
            scorer, _record = registered_scorer(self.project, classifier, need_map=True)
            prepared, frame = prepare_with_frame(pixels, scorer.prep)
            _probs, maps = scorer.maps(prepared[None])
        except LesionStudioError as exc:
            self.host.show_message(str(exc), "error")
            return
        heat = map_to_image(maps[0], frame)
        item = pg.ImageItem(heat, axisOrder="row-major", opacity=0.45)
        item.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        item.setLevels((0.0, 1.0))
        item.setZValue(40)
        self.host.viewer.vb.addItem(item)
        self.cam_item = item

    def clear_cam(self) -> None:
        if self.cam_item is not None:
            self.host.viewer.vb.removeItem(self.cam_item)
            self.cam_item = None

    def clear(self) -> None:
        self.clear_cam()
        self.shown = None
        if self.outline is not None:
            self.host.viewer.set_badge(None)
            self.host.viewer.vb.removeItem(self.outline)
            self.outline = None
