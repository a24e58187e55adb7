"""The image viewer: a pyqtgraph canvas, region overlays and the background image loader."""
