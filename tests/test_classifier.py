"""Classifier data rules, training (beats chance on the demo phantoms), resume, ONNX scoring."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lesion_studio.classifier.config import preset  # noqa: E402
from lesion_studio.classifier.data import evaluation_set, split_records, training_set  # noqa: E402
from lesion_studio.classifier.preprocess import PreparedCache, Preprocessing, prepare  # noqa: E402
from lesion_studio.errors import JobCancelled, LesionStudioError  # noqa: E402
from lesion_studio.jobs import CancelToken  # noqa: E402
from lesion_studio.models.drn import load_classifier  # noqa: E402
from lesion_studio.store.records import Box  # noqa: E402
from lesion_studio.training.classifier_trainer import ClassifierTrainer, predict  # noqa: E402


def test_prepare_keeps_aspect_and_pads_with_background() -> None:
    img = np.full((200, 100), 1000, dtype=np.uint16)
    img[:, 50:] = 3000
    out = prepare(img, Preprocessing(64))
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert out[:, :16].max() == out.min()  # left padding is background
    assert out[:, 32:48].max() > out[:, 16:32].max()


def test_excluded_images_are_left_out_unless_asked(demo_project) -> None:
    excluded = [r for r in demo_project.images() if r.excluded and r.label != "unreviewed"]
    assert excluded
    ids = {r.id for s in ("train", "val", "test") for r in split_records(demo_project, s)}
    assert not ids & {r.id for r in excluded}
    ids_all = {r.id for s in ("train", "val", "test")
               for r in split_records(demo_project, s, include_excluded=True)}
    assert {r.id for r in excluded} <= ids_all


def test_synthetic_images_never_leak_into_val_or_test(demo_project, tmp_path) -> None:
    """Try to force a synthetic sample made from a test image into training: refused."""
    cache = PreparedCache(Preprocessing(64), None)
    test_img = next(r for r in demo_project.images(split="test") if r.label == "normal")
    sid = demo_project.add_synthetic_sample(test_img.id, Box(10, 10, 40, 40), n=2.0, seed=0, model_id=None,
                                            path=test_img.abs_path, status="accepted", batch="leak")
    leak = demo_project.synthetic_samples(batch="leak")
    with pytest.raises(LesionStudioError, match="leak"):
        training_set(demo_project, cache, synthetic=leak)
    # Evaluation sets are built from real images only, whatever the store holds.
    for split in ("val", "test"):
        data = evaluation_set(demo_project, split, cache)
        assert not any(e.synthetic for e in data.examples)
        assert all(e.synthetic_id != sid for e in data.examples)


@pytest.mark.slow
def test_tiny_baseline_beats_chance_on_the_demo(demo_project) -> None:
    """Training is what separates lesions from normals: the tiny preset (20 epochs at 96 px) on the
    phantoms, where an untrained network or one trained on shuffled labels scores near 0.5 (a
    trainer fed shuffled or inverted labels fails this test: tools/mutation_check.py, C1 and C2).

    The run is pinned to two torch threads: a network this small, trained this briefly, ends in a
    different place when oneDNN splits its work another way (an earlier test in the same process
    may leave torch on one thread), and 12 test images make that difference decide the assertion.
    """
    from lesion_studio.evaluate.metrics import auc
    from lesion_studio.training.classifier_trainer import train_classifier

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = preset("tiny")
        result, model_id = train_classifier(demo_project, cfg, name="baseline-test")
    finally:
        torch.set_num_threads(threads)
    assert model_id is not None and demo_project.model(model_id).kind == "drn"
    model, meta = load_classifier(result.path)
    assert meta["arch"] == "drn_d_tiny"
    test = evaluation_set(demo_project, "test", PreparedCache(cfg.preprocessing, None))
    scores = predict(model, test.arrays, device=torch.device("cpu"))
    assert auc(test.labels, scores) > 0.7


def _small_sets(demo_project, masks: bool = False):
    cache = PreparedCache(Preprocessing(64), None)
    return training_set(demo_project, cache, masks=masks), evaluation_set(demo_project, "val", cache)


@pytest.mark.parametrize(("head", "average"), [("image", "none"), ("image+map", "none"), ("image+map", "ema")])
def test_trainer_resume_equals_uninterrupted_run(demo_project, tmp_path, head: str, average: str) -> None:
    """A cancelled run resumes from its checkpoint and ends where the uninterrupted one does; with
    the lesion-map head too (its checkpoint was once checked against the network without the map
    head, so every map-head run silently trained again from the start), and with the weight
    average, which resume must restore rather than restart from the resumed weights."""
    train, val = _small_sets(demo_project, masks=head == "image+map")
    cfg = preset("tiny", input_size=64, epochs=2, batch_size=32, head=head, weight_average=average)

    full = ClassifierTrainer(cfg, train, val, tmp_path / "full").fit()

    cancel = CancelToken()

    def stop_after_first_epoch(event) -> None:
        if event.stage == "classifier epoch" and event.done == 1:
            cancel.cancel()

    with pytest.raises(JobCancelled):
        ClassifierTrainer(cfg, train, val, tmp_path / "resumed", progress=stop_after_first_epoch,
                          cancel=cancel).fit()
    resumed = ClassifierTrainer(cfg, train, val, tmp_path / "resumed").fit()
    assert resumed.resumed_from == 1 and resumed.epochs_done == 2
    a, _ = load_classifier(tmp_path / "full" / "last.safetensors")
    b, _ = load_classifier(tmp_path / "resumed" / "last.safetensors")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, msg=name)
    assert [h["loss"] for h in full.history] == pytest.approx([h["loss"] for h in resumed.history])
    assert [h.get("val_auc") for h in full.history] == pytest.approx([h.get("val_auc") for h in resumed.history])
    if average != "none":
        a, _ = load_classifier(tmp_path / "full" / "model.safetensors")
        b, _ = load_classifier(tmp_path / "resumed" / "model.safetensors")
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(pa, pb, msg=name)


def test_weight_average_is_what_is_validated_and_saved(demo_project, tmp_path) -> None:
    """With ``weight_average: ema`` the saved model is the moving average of the steps' weights
    (batch-norm statistics included), not the last step's weights, and the validation AUC that
    selected it is the average's own."""
    from safetensors.torch import load_file

    from lesion_studio.evaluate.metrics import auc
    from lesion_studio.training.classifier_trainer import ema_decay

    assert ema_decay(2.0, 30) ** 60 == pytest.approx(0.5)
    train, val = _small_sets(demo_project, masks=True)
    cfg = preset("tiny", input_size=64, epochs=2, batch_size=32, head="image+map", weight_average="ema",
                 ema_half_life=0.5, select="last")
    result = ClassifierTrainer(cfg, train, val, tmp_path / "ema").fit()
    saved, _ = load_classifier(tmp_path / "ema" / "model.safetensors")
    last, _ = load_classifier(tmp_path / "ema" / "last.safetensors")
    tensors = load_file(str(tmp_path / "ema" / "last.safetensors"))
    averaged = {k: v for k, v in tensors.items() if k.startswith("average")}
    assert averaged, "the resume checkpoint keeps the average"
    differs = [k for k, v in saved.state_dict().items() if v.is_floating_point()
               and not torch.equal(v, last.state_dict()[k])]
    assert len(differs) > len(saved.state_dict()) // 2  # the average, not the last step's weights
    assert any("running_mean" in k for k in differs)  # batch-norm statistics are averaged too
    scores = predict(saved, val.arrays, device=torch.device("cpu"))
    assert auc(val.labels, scores) == pytest.approx(result.val_auc, abs=1e-6)


def test_onnx_scores_match_torch_and_cli_evaluate(demo_project, capsys) -> None:
    """Export once, score without torch (onnxruntime on the CPU here), then the CLI's evaluate."""
    import json

    from lesion_studio.classifier.scoring import OnnxScorer, export_classifier_onnx
    from lesion_studio.cli.main import main
    from lesion_studio.training.classifier_trainer import train_classifier

    cfg = preset("tiny", input_size=64, epochs=1)
    result, _ = train_classifier(demo_project, cfg, name="onnx-test")
    scorer = OnnxScorer(export_classifier_onnx(result.path), prefer_cuda=False)
    assert scorer.providers == ["CPUExecutionProvider"]
    test = evaluation_set(demo_project, "test", PreparedCache(cfg.preprocessing, None))
    model, _ = load_classifier(result.path)
    np.testing.assert_allclose(scorer.score_arrays(test.arrays),
                               predict(model, test.arrays, device=torch.device("cpu")), atol=1e-4)
    folder = demo_project.folder
    demo_project.close()
    assert main(["evaluate", str(folder), "--model", "onnx-test", "--resamples", "1000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["auc"]["ci_low"] <= out["auc"]["auc"] <= out["auc"]["ci_high"] <= 1
    # The pointing game of the model's own map on the boxed test lesions, with its chance rate.
    pointing = out["pointing"]
    assert pointing["tolerance_px"] == 15 and pointing["map"] == "cam" and pointing["all"]["n"] > 0
    assert pointing["strict"]["all"]["rate"] <= pointing["all"]["rate"]
    assert 0 < pointing["chance"]["strict"] < pointing["chance"]["tolerance"] < 1
    assert main(["evaluate", str(folder), "--model", "onnx-test", "--resamples", "1000",
                 "--pointing-tolerance", "0"]) == 0
    strict = json.loads(capsys.readouterr().out)["pointing"]
    assert strict["all"]["rate"] == pointing["strict"]["all"]["rate"]
    assert main(["evaluate", str(folder), "--model", "onnx-test", "--pointing-tolerance", "-1"]) == 2
    assert "--pointing-tolerance" in capsys.readouterr().err
    assert main(["evaluate", str(folder), "--model", "no-such-model"]) == 2


def test_exposure_jitter_changes_the_training_images_not_their_boxes(demo_project, tmp_path) -> None:
    """``intensity_jitter`` reaches the trainer's batches: the same step's images differ from the
    unjittered ones while the lesion masks (the map head's targets) and labels stay the same."""
    train, val = _small_sets(demo_project, masks=True)
    idx = np.arange(min(8, len(train)))
    batches = []
    for jitter in (0.0, 0.3):
        cfg = preset("tiny", input_size=64, head="image+map", intensity_jitter=jitter)
        batches.append(ClassifierTrainer(cfg, train, val, tmp_path / str(jitter))._batch(idx, 3, train.mapped))
    (x0, y0, m0, _), (x1, y1, m1, _) = batches
    assert not torch.allclose(x0, x1)
    assert torch.equal(y0, y1) and torch.equal(m0, m1)


def test_a_share_of_the_training_images_is_stratified_seeded_and_nested(demo_project) -> None:  # noqa: ANN001
    """``train_fraction`` (a learning curve's point) keeps the same share of lesion and of normal
    training images, drawn by the seed; a larger share of one seed holds the smaller one's images
    and more; validation and test images never enter."""
    from lesion_studio.classifier.data import stratified_share

    records = split_records(demo_project, "train")
    lesions = {r.id for r in records if r.label == "lesion"}
    normals = {r.id for r in records if r.label == "normal"}
    half = stratified_share(records, 0.5, seed=0)
    ids = {r.id for r in half}
    assert len(ids & lesions) == round(0.5 * len(lesions)) and len(ids & normals) == round(0.5 * len(normals))
    assert [r.id for r in half] == [r.id for r in records if r.id in ids]  # original order kept
    assert {r.id for r in stratified_share(records, 0.5, seed=0)} == ids  # seeded
    assert {r.id for r in stratified_share(records, 0.5, seed=1)} != ids  # another seed, another draw
    assert ids < {r.id for r in stratified_share(records, 0.75, seed=0)}  # nested
    assert stratified_share(records, 1.0, seed=3) == list(records)
    tiny = stratified_share(records, 0.001, seed=0)  # never a set without one of the classes
    assert {r.label for r in tiny} == {"lesion", "normal"} and len(tiny) == 2


def test_training_on_a_share_uses_only_those_images(demo_project, tmp_path) -> None:  # noqa: ANN001
    """The trainer sees the share's images only (its recorded training summary says so) and
    validates on the whole validation split."""
    from lesion_studio.training.classifier_trainer import train_classifier

    cfg = preset("tiny", input_size=48, epochs=1, train_fraction=0.5, seed=2)
    _, model_id = train_classifier(demo_project, cfg, name="half", out_dir=tmp_path / "half")
    summary = demo_project.model(model_id).metadata["train"]
    records = split_records(demo_project, "train")
    n_lesion = sum(r.label == "lesion" for r in records)
    assert (summary["lesion"], summary["normal"]) == (round(0.5 * n_lesion), round(0.5 * (len(records) - n_lesion)))
    assert demo_project.model(model_id).config["train_fraction"] == 0.5
