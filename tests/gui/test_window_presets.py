"""Window presets over the anatomy: F6 "bone" on a collimated CR (NEMA WG-04 RG3) keeps the lesion.

RG3 is a lower leg with a lytic lesion in the distal tibial metaphysis; collimator blades leave
40 % of the image burnt out at the maximum value. Percentiles over the whole image used to give
W 232 / L 907, which painted the lesion black. Needs ../shared/data/dicom; skips without it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lesion_studio.io.display import anatomy_levels, preset_levels, to_uint8
from tests.gui.conftest import dispose, open_window

#: The lesion (rows, columns) on RG3, located by eye on the 1760² image.
LESION = (slice(1000, 1220), slice(800, 920))


def lesion_contrast(pixels: np.ndarray, levels: tuple[float, float]) -> tuple[float, float]:
    """(p95 − p5 spread in 8-bit grey levels, fraction of lesion pixels clipped) under ``levels``."""
    grey = to_uint8(pixels[LESION], levels)
    lo, hi = np.percentile(grey, (5, 95))
    clipped = float(((grey == 0) | (grey == 255)).mean())
    return float(hi - lo), clipped


def test_presets_ignore_a_collimated_border() -> None:
    rng = np.random.default_rng(0)
    anatomy = rng.normal(500, 120, (400, 200)).clip(1, 1022)
    image = np.full((400, 500), 1023.0)  # collimator blades: 60 % burnt out, left and right
    image[:, 150:350] = anatomy
    plain = np.percentile(anatomy, (45, 99.8))
    assert anatomy_levels(image, 45, 99.8) == pytest.approx(tuple(plain), rel=0.03)
    assert np.percentile(image, 45) == 1023  # what the whole image would have said


def test_rg3_bone_preset_keeps_the_lesion_contrast(dicom_dir: Path) -> None:
    from lesion_studio.io import open_radiograph

    rg = open_radiograph(dicom_dir / "RG3_J2KR.dcm")
    whole = tuple(float(v) for v in np.percentile(rg.pixels, (45, 99.8)))
    spread, clipped = lesion_contrast(rg.pixels, whole)
    assert spread == 0 and clipped == 1.0  # the old preset: the lesion was one flat black
    spread, clipped = lesion_contrast(rg.pixels, preset_levels(rg, "bone"))
    assert spread >= 40 and clipped < 0.05, (spread, clipped)


def test_f6_in_the_viewer_shows_the_rg3_lesion(qtbot, dicom_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.store.project import Project

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(dicom_dir / "RG3_J2KR.dcm", images)
    with Project.create(tmp_path / "cr") as project:
        import_source(project, images)
    window = open_window(qtbot, tmp_path / "cr")
    try:
        window.canvas.setFocus()
        qtbot.keyClick(window, Qt.Key.Key_F6)
        levels = window.canvas.levels()
        spread, clipped = lesion_contrast(window.canvas.radiograph.pixels, levels)
        assert spread >= 40 and clipped < 0.05, (levels, spread, clipped)
        lo, hi = levels
        assert window.status_fields["window"].text() == f"W {hi - lo:.0f} L {(lo + hi) / 2:.0f}"
    finally:
        window.close()
        dispose(window)
