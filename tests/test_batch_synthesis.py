"""Batch synthesis of candidates: sources, per-candidate n, provenance, scoring, cancel, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.jobs import CancelToken
from lesion_studio.samples import load_sample_pixels
from lesion_studio.samples.batch import draw_n, generate_candidates
from tests.stub_models import StubTranslator, register_stub_classifier


def test_candidates_from_patches_are_saved_scored_and_reproducible(demo_project) -> None:  # noqa: ANN001
    project = demo_project
    clf = register_stub_classifier(project)
    events = []
    tr = StubTranslator()
    res = generate_candidates(project, tr, count=12, n_range=(1.0, 4.0), seed=3, classifier=clf,
                              batch_name="b one", progress=events.append)
    assert res.batch == "b_one" and res.count == 12 and not res.cancelled
    samples = project.synthetic_samples(batch="b_one")
    assert [s.id for s in samples] == res.sample_ids
    patch_images = {p.image_id for p in project.normal_patches()}
    for s in samples:
        assert s.status == "candidate" and 1.0 <= s.n <= 4.0
        assert s.source_image_id in patch_images
        assert project.image(s.source_image_id).label == "normal"
        assert s.score == pytest.approx(res.scores[s.id]) and 0.0 < s.score < 1.0
        prov = s.provenance
        assert prov["batch_settings"]["n_range"] == [1.0, 4.0] and prov["source"]["image_id"] == s.source_image_id
        assert prov["n"] == s.n and prov["model"]["name"] == "stub-unit"
    assert len({s.seed for s in samples}) == 12 and len({round(s.n, 6) for s in samples}) == 12
    # the lesion is painted inside the window only
    s = samples[0]
    src = project.open_radiograph(s.source_image_id).pixels
    px = load_sample_pixels(project, s)
    x0, y0, x1, y1 = s.box.as_ints()
    outside = np.ones(src.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(px[outside], src[outside]) and not np.array_equal(px, src)
    synth = [e for e in events if e.stage == "synthesize"]
    assert [e.done for e in synth] == list(range(1, 13)) and synth[-1].total == 12
    assert any(e.stage == "score" for e in events)
    # same seed → same n and the same pixels
    again = generate_candidates(project, StubTranslator(), count=12, n_range=(1.0, 4.0), seed=3, batch_name="b2")
    twins = project.synthetic_samples(batch="b2")
    assert [t.n for t in twins] == [s.n for s in samples]
    assert np.array_equal(load_sample_pixels(project, twins[5]), load_sample_pixels(project, samples[5]))
    assert again.scores == {}


def test_sampled_windows_respect_body_part_and_split(demo_project) -> None:  # noqa: ANN001
    project = demo_project
    res = generate_candidates(project, StubTranslator(), count=5, sources="sampled", body_parts=["tibia"],
                              split="train", n_range=(2.0, 2.0), seed=1, batch_name="tib")
    assert res.count == 5
    for s in project.synthetic_samples(batch="tib"):
        rec = project.image(s.source_image_id)
        assert (rec.body_part, rec.split, rec.label, rec.excluded) == ("tibia", "train", "normal", False)
        assert s.n == 2.0 and s.box.width == pytest.approx(s.box.height, abs=1)
        assert not any(s.box.intersects(b.box) for b in project.boxes(rec.id))


def test_pluggable_scorer_and_cancel_keeps_what_was_made(demo_project) -> None:  # noqa: ANN001
    project = demo_project
    token = CancelToken()

    def progress(event) -> None:  # noqa: ANN001
        if event.stage == "synthesize" and event.done == 3:
            token.cancel()

    def scorer(project, ids, progress, cancel):  # noqa: ANN001, ANN202
        return [0.1 * (i % 7) for i in ids]

    with pytest.raises(JobCancelled) as stopped:  # the one cancel contract: what was made comes with it
        generate_candidates(project, StubTranslator(), count=10, scorer=scorer, batch_name="cut",
                            progress=progress, cancel=token)
    res = stopped.value.partial
    assert res.cancelled and res.count == 3
    assert {s.id: s.score for s in project.synthetic_samples(batch="cut")} == pytest.approx(
        {i: 0.1 * (i % 7) for i in res.sample_ids})


def test_clear_errors(demo_project) -> None:  # noqa: ANN001
    project = demo_project
    tr = StubTranslator()
    with pytest.raises(LesionStudioError, match="n range"):
        generate_candidates(project, tr, count=2, n_range=(4.0, 1.0))
    with pytest.raises(LesionStudioError, match="source kind"):
        generate_candidates(project, tr, count=2, sources="everything")
    with pytest.raises(LesionStudioError, match="no picked normal patches"):
        generate_candidates(project, tr, count=2, body_parts=["skull"])
    generate_candidates(project, tr, count=1, batch_name="x")
    with pytest.raises(LesionStudioError, match="already exists"):
        generate_candidates(project, tr, count=1, batch_name="x")
    with pytest.raises(LesionStudioError, match="not a classifier"):
        project.register_model("u", "unit", "models/u/model.safetensors", sha256="1")
        generate_candidates(project, tr, count=1, classifier="u", batch_name="y")
    ns = draw_n(np.random.default_rng(0), (0.5, 8.0), 4000)
    assert ns.min() >= 0.5 and ns.max() <= 8.0
    assert np.median(ns) == pytest.approx(2.0, rel=0.1)  # log-uniform: the geometric mean


def test_cli_synthesize(demo_project, monkeypatch, capsys) -> None:  # noqa: ANN001
    from lesion_studio.cli.main import main

    register_stub_classifier(demo_project, name="clf")
    monkeypatch.setattr("lesion_studio.samples.batch.open_translator", lambda *a, **k: StubTranslator())
    rc = main(["synthesize", str(demo_project.folder), "--model", "anything", "--classifier", "clf", "--count", "4",
               "--n-range", "1,3", "--sources", "patches", "--body-part", "femur", "--batch", "cli", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["candidates"] == 4 and out["classifier"] == "clf" and len(out["scores"]) == 4
    rows = demo_project.synthetic_samples(batch="cli")
    assert len(rows) == 4 and all(demo_project.image(r.source_image_id).body_part == "femur" for r in rows)
    assert main(["synthesize", str(demo_project.folder), "--model", "x", "--count", "2", "--n-range", "a"]) == 2
