"""The ``matched`` and ``moments`` blends: the translation's window-wide brightness (and, for
``moments``, contrast) change is dropped, the lesion kept."""

from __future__ import annotations

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError
from lesion_studio.synthesis.blend import (
    MAX_GAIN,
    blend,
    blend_alpha,
    match_periphery_moments,
    periphery_offset,
)


def _scene(size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured source; a 'translation' = source − 300 everywhere (dark square) − 500 in a core disc."""
    rng = np.random.default_rng(0)
    source = 2000 + 100 * rng.standard_normal((size, size)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    core = np.hypot(yy - size / 2, xx - size / 2) < size / 8
    translated = source - 300.0 - 500.0 * core
    return source, translated.astype(np.float32), core


def test_paper_mode_is_the_papers_alpha_blend() -> None:
    source, translated, _ = _scene()
    alpha = blend_alpha(64, 64, 2.0)
    expected = alpha * translated + (1 - alpha) * source
    assert np.allclose(blend(source, translated, 2.0), expected, atol=1e-3)
    assert np.allclose(blend(source, translated, 2.0, "paper"), expected, atol=1e-3)


def test_matched_mode_drops_the_dark_square_and_keeps_the_lesion() -> None:
    source, translated, core = _scene()
    assert periphery_offset(source, translated, 2.0) == pytest.approx(-300.0, abs=1e-3)
    paper = blend(source, translated, 2.0, "paper")
    matched = blend(source, translated, 2.0, "matched")
    ring = blend_alpha(64, 64, 2.0) < 0.5
    # Outside the core the paper blend darkens the window; the matched blend leaves it as it was.
    assert (paper - source)[ring].mean() < -50
    assert abs((matched - source)[ring].mean()) < 1.0
    # Inside the core both keep the lesion's own darkening (−500 relative to its surroundings).
    assert (matched - source)[core].mean() < -400
    assert (paper - matched)[core].mean() == pytest.approx(-300 * blend_alpha(64, 64, 2.0)[core].mean(), rel=1e-3)


def test_matched_equals_paper_when_the_periphery_is_untouched() -> None:
    source, _, core = _scene()
    translated = source - 500.0 * core
    assert np.allclose(blend(source, translated, 2.0, "matched"), blend(source, translated, 2.0, "paper"))


def test_moments_mode_restores_the_peripherys_contrast_and_keeps_the_lesion() -> None:
    """A translation that flattens the texture (×0.6), darkens the window and draws a lesion: the
    matched blend leaves the flattened contrast around the lesion, the moments blend restores it."""
    source, _, core = _scene()
    translated = (2000 + 0.6 * (source - 2000) - 300.0 - 500.0 * core).astype(np.float32)
    ring = blend_alpha(64, 64, 2.0) < 0.5
    mapped = match_periphery_moments(source, translated, 2.0)
    assert mapped[ring].mean() == pytest.approx(source[ring].mean(), abs=0.05)
    assert mapped[ring].std() == pytest.approx(source[ring].std(), rel=1e-4)
    matched = blend(source, translated, 2.0, "matched")
    moments = blend(source, translated, 2.0, "moments")
    outer = blend_alpha(64, 64, 2.0) < 0.9
    outer &= ~core
    assert abs(matched[outer].std() / source[outer].std() - 1) > 0.1  # the flattened texture shows
    assert abs(moments[outer].std() / source[outer].std() - 1) < 0.01  # restored
    assert abs((moments - source)[ring].mean()) < 1.0
    assert (moments - source)[core].mean() < -400  # the lesion stays
    # An untouched window is returned as it was; a flat translation is not blown up.
    assert np.allclose(blend(source, source, 2.0, "moments"), source, atol=1e-2)
    flat = np.full_like(source, 1500.0)
    assert np.allclose(match_periphery_moments(source, flat, 2.0), source[ring].mean(), atol=0.05)
    faint = (2000 + 0.01 * (source - 2000)).astype(np.float32)  # the gain is bounded
    assert match_periphery_moments(source, faint, 2.0)[ring].std() == pytest.approx(
        MAX_GAIN * faint[ring].std(), rel=1e-3)
    batch = match_periphery_moments(np.stack([source, source]), np.stack([translated, faint]), 2.0)
    assert np.allclose(batch[0], mapped) and np.allclose(batch[1], match_periphery_moments(source, faint, 2.0))


def test_batched_patches_and_a_bad_mode() -> None:
    source, translated, _ = _scene()
    batch_s, batch_t = np.stack([source, source]), np.stack([translated, source])
    out = blend(batch_s, batch_t, 2.0, "matched")
    assert np.allclose(out[0], blend(source, translated, 2.0, "matched"))
    assert np.allclose(out[1], source)
    with pytest.raises(LesionStudioError, match="blend mode"):
        blend(source, translated, 2.0, "soft")


def test_the_product_blends_with_one_default_everywhere() -> None:
    """The GUI/pipeline, experiments, the quality report and the CLI share DEFAULT_BLEND (matched,
    chosen by the FracAtlas quality report); the pure ``blend`` keeps the paper's formula."""
    import inspect
    import typing

    from lesion_studio.cli.main import build_parser
    from lesion_studio.evaluate.generator_quality import QualitySettings
    from lesion_studio.experiment.config import SynthesisSpec
    from lesion_studio.synthesis import pipeline
    from lesion_studio.synthesis.blend import BLEND_MODES, DEFAULT_BLEND

    assert DEFAULT_BLEND == "matched"
    assert typing.get_args(typing.get_type_hints(SynthesisSpec)["blend"]) == BLEND_MODES  # configs take every mode
    assert build_parser().parse_args(["translate", "P", "--model", "m", "--blend", "moments"]).blend == "moments"
    assert SynthesisSpec().blend == QualitySettings().blend_mode == DEFAULT_BLEND
    assert inspect.signature(pipeline.synthesize_lesion).parameters["blend_mode"].default == DEFAULT_BLEND
    assert inspect.signature(blend).parameters["mode"].default == "paper"
    parser = build_parser()
    for command in (["translate", "P", "--model", "m"], ["assess-generator", "P", "--model", "m"]):
        assert parser.parse_args(command).blend == DEFAULT_BLEND
