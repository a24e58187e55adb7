"""Class-activation maps of the DRN classifier, in numpy: from the model's grid to image pixels.

The DRN ends in global average pooling and a 1×1 convolution, so the classifier weights applied to
the last feature map *before* pooling give a map whose mean is exactly the lesion logit (Zhou et
al. 2016): where it is high is where the network found evidence. The ONNX classifier returns that
map (output ``cam``, shape (N, h, w) at output stride 8, in the prepared square frame). These
helpers undo the preprocessing's fit-to-square so the map lines up with the radiograph: the
gallery overlays it, and the generator quality report asks whether it peaks inside the window
where a lesion was painted.
"""

from __future__ import annotations

import numpy as np


def _frame(image_shape: tuple[int, ...], size: int) -> tuple[int, int, int, int, float]:
    """(y0, x0, nh, nw, scale): where :func:`~lesion_studio.classifier.preprocess.fit_square` put the image."""
    h, w = int(image_shape[0]), int(image_shape[1])
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return (size - nh) // 2, (size - nw) // 2, nh, nw, scale


def cam_square(cam: np.ndarray, size: int) -> np.ndarray:
    """The (h, w) map resized (bilinear) to the ``size``² prepared frame, float32."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(cam, dtype=np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def cam_to_image(cam: np.ndarray, image_shape: tuple[int, ...], size: int) -> np.ndarray:
    """The map over the radiograph's own pixels, (H, W) float32 scaled to [0, 1] (for overlays)."""
    from PIL import Image

    y0, x0, nh, nw, _ = _frame(image_shape, size)
    inner = cam_square(cam, size)[y0:y0 + nh, x0:x0 + nw]
    lo, hi = float(inner.min()), float(inner.max())
    inner = (inner - lo) / (hi - lo) if hi > lo else np.zeros_like(inner)
    out = Image.fromarray(np.ascontiguousarray(inner), mode="F").resize(
        (int(image_shape[1]), int(image_shape[0])), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def cam_peak(cam: np.ndarray, image_shape: tuple[int, ...], size: int) -> tuple[float, float]:
    """(x, y) in image pixels of the map's maximum, searched over the image (not the padding)."""
    y0, x0, nh, nw, scale = _frame(image_shape, size)
    inner = cam_square(cam, size)[y0:y0 + nh, x0:x0 + nw]
    iy, ix = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return (ix + 0.5) / scale, (iy + 0.5) / scale
