"""A synthetic sample's score is stored with where the scoring classifier looked (issue 23): the
peak of its localisation map, and whether that peak sits on the painted lesion."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesion_studio.errors import ProjectError
from lesion_studio.store import Project
from lesion_studio.store.schema import SCHEMA_VERSION

pytest.importorskip("onnxruntime")


def test_scoring_stores_the_map_peak_on_or_off_the_lesion(tmp_path: Path) -> None:
    from lesion_studio.classifier.scoring import registered_scorer, score_synthetic
    from tests.stub_models import SPOTS, register_stub_detector, spot_project, spot_samples

    project = spot_project(tmp_path / "spots")
    register_stub_detector(project)
    scorer, _ = registered_scorer(project, "stub-detector")
    x0, y0, x1, y1 = SPOTS[0]  # the bright spot the stub's map peaks on
    # Two samples of the same picture: one whose window is centred on the spot, one elsewhere.
    on, off = spot_samples(project)
    scores = score_synthetic(project, [project.synthetic_sample(on), project.synthetic_sample(off)], scorer)
    a, b = project.synthetic_sample(on), project.synthetic_sample(off)
    assert a.score == pytest.approx(scores[0]) and a.map_peak == b.map_peak
    px, py = a.map_peak
    assert x0 - 8 <= px <= x1 + 8 and y0 - 8 <= py <= y1 + 8  # the map's grid is 8 px coarse here
    assert a.map_on_lesion() is True and b.map_on_lesion() is False
    project.close()
    with Project.open(tmp_path / "spots" / "project") as again:  # stored, not computed on the fly
        assert again.synthetic_sample(on).map_peak == a.map_peak
        # A score without a map (another classifier) clears the old peak: it belonged to that scoring.
        again.update_synthetic_sample(on, score=0.4)
        assert again.synthetic_sample(on).map_peak is None and again.synthetic_sample(on).map_on_lesion() is None
        again.update_synthetic_sample(off, status="accepted")  # a status change keeps score and peak
        assert again.synthetic_sample(off).map_peak == b.map_peak and again.synthetic_sample(off).score == b.score
        with pytest.raises(ProjectError, match="score"):
            again.update_synthetic_sample(off, map_peak=(1.0, 2.0))


def test_a_schema_3_project_keeps_its_samples_and_takes_peaks(tmp_path: Path) -> None:
    from tests.old_projects import project_at_schema

    folder = tmp_path / "old"
    conn = project_at_schema(folder, 3, label="normal")
    conn.execute("INSERT INTO synthetic_samples (id, source_image_id, x0, y0, x1, y1, n, score, created_at) "
                 "VALUES (1, 1, 10, 10, 50, 50, 1.0, 0.7, 't1')")
    conn.close()
    with Project.open(folder) as project:
        assert project.schema_version == SCHEMA_VERSION >= 4
        sample = project.synthetic_sample(1)
        assert sample.score == 0.7 and sample.map_peak is None and sample.map_on_lesion() is None
        project.update_synthetic_sample(1, score=0.8, map_peak=(30.0, 30.0))
        assert project.synthetic_sample(1).map_on_lesion() is True
    assert list(folder.glob(f"**/*before-schema-{SCHEMA_VERSION}.sqlite"))
