"""Augmentation arms and their controls: equal counts, copy-paste at the recorded boxes, the
selection among arms on validation, and a whole arms study on the phantom project."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.experiment.arms import choose, copy_paste, donor_window, equal_count, lesion_count


def test_arms_add_equal_counts() -> None:
    wanted = lesion_count(40, 0.25)
    assert wanted == 10
    # A filtered arm that kept fewer candidates than wanted sets every arm's count.
    assert equal_count(wanted, {"unit": 25, "copy_paste": 7}) == 7
    assert equal_count(wanted, {"unit": 25, "copy_paste": 70}) == 10
    assert equal_count(wanted, {}) == 10
    # Repeats cycle through every real lesion before any repeats twice (ratios above 1).
    reps = choose([1, 2, 3], 7, seed=0)
    assert len(reps) == 7 and all(reps.count(i) >= 2 for i in (1, 2, 3))
    assert choose([5, 6, 7, 8], 3, seed=1) == choose([5, 6, 7, 8], 3, seed=1)
    assert choose([], 3, seed=0) == []


def test_copy_paste_puts_the_real_window_at_the_recorded_box() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (200, 200)).astype(np.uint8)
    target[50:110, 40:100] = 100  # the window where the lesion goes: plain tissue
    donor = rng.integers(0, 50, (150, 180)).astype(np.uint8)
    donor[60:80, 90:110] = 250  # the lesion: a bright square
    box = (90.0, 60.0, 110.0, 80.0)
    out, pasted = copy_paste(target, (40, 50, 100, 110), donor, box, n=1.0, blend_mode="paper")
    x0, y0, x1, y1 = (int(round(v)) for v in pasted)
    assert (x1 - x0, y1 - y0) == (20, 20)
    inside = out[y0:y1, x0:x1].astype(float)
    # The lesion's pixels are where the box says (brightest there), the rest of the image untouched.
    assert inside.mean() > out[50:110, 40:100].mean() + 20
    window = out[50:110, 40:100]
    peak_y, peak_x = np.unravel_index(np.argmax(window), window.shape)
    assert y0 <= peak_y + 50 < y1 and x0 <= peak_x + 40 < x1
    untouched = np.ones_like(out, bool)
    untouched[50:110, 40:100] = False
    assert (out[untouched] == target[untouched]).all()
    # The donor's window keeps the target window's size and stays inside the donor.
    assert donor_window((150, 180), (170.0, 140.0, 180.0, 150.0), (60, 60)) == (120, 90, 180, 150)


pytest.importorskip("torch")
pytest.importorskip("sklearn")


def test_selection_picks_a_control_when_it_wins_on_validation(demo_project_master, tmp_path) -> None:
    """Selection chooses among all arms on validation: when the oversampling control is the one
    that beats the baseline, it is chosen, and a synthetic arm that does not is not."""
    from lesion_studio.experiment.outputs import ArmRun, BaselineRun
    from lesion_studio.experiment.selection import select, val_vs_controls
    from tests.test_experiment import _config

    rng = np.random.default_rng(0)
    labels = [0] * 30 + [1] * 30
    base_scores = list(np.r_[rng.uniform(0, 0.6, 30), rng.uniform(0.4, 1.0, 30)])
    good = list(np.r_[rng.uniform(0, 0.4, 30), rng.uniform(0.6, 1.0, 30)])
    worse = list(np.r_[rng.uniform(0, 0.8, 30), rng.uniform(0.2, 1.0, 30)])
    cfg = _config(demo_project_master, tmp_path / "r", augmentation={"arms": ["oversample", "unit"],
                                                                     "ratios": [0.25]})
    bases = [BaselineRun(path="b", sha256="", val_auc=None, seed=s, epoch=1, model_id=1, model_name="b",
                         val_scores=base_scores, val_labels=labels) for s in (0, 1)]

    def arm(name: str, scores: list[float], seed: int) -> ArmRun:
        return ArmRun(arm=name, ratio=0.25, t=0.5, cut=0.5, seed=seed, added=5, sample_ids=[], repeat_ids=[],
                      val_auc=None, skipped=False, path="p", val_scores=scores, val_labels=labels)

    trials = {"oversample|0.25|0.5": [arm("oversample", good, s) for s in (0, 1)],
              "unit|0.25|0.5": [arm("unit", worse, s) for s in (0, 1)]}
    selection = select(cfg.selection, cfg.bootstrap, bases, trials)
    assert selection.best_t == "oversample|0.25|0.5" and selection.accepted
    assert "oversample" in selection.reason
    vs = val_vs_controls(cfg.selection, cfg.bootstrap, bases, trials, "unit|0.25|0.5")
    assert vs["oversample"]["delta"] < 0


@pytest.mark.slow
def test_an_arms_study_runs_every_arm_with_equal_counts(demo_project_master, tmp_path) -> None:
    import shutil

    from lesion_studio.experiment.plan import ExperimentPlan
    from lesion_studio.experiment.runner import run_experiment
    from tests.test_experiment import _config

    shutil.copytree(demo_project_master, tmp_path / "demo")
    cfg = _config(tmp_path / "demo", tmp_path / "results", seeds=[0],
                  classifier={"preset": "tiny", "input_size": 64, "epochs": 2, "head": "image+map"},
                  thresholds=[0.0], augmentation={"arms": ["oversample", "copy_paste", "unit", "unit_pretrain"],
                                                  "ratios": [0.5]}, scoring_backend="onnx")
    events = []
    result = run_experiment(cfg, progress=lambda e: events.append(e.message) if e.stage == "experiment" else None)
    assert events == ExperimentPlan.from_config(cfg).names
    study = result.results["studies"][0]
    counts = study["arm_counts"][0]
    assert counts["added"] > 0
    added = {tr["arm"]: tr["kept"] for tr in study["threshold_trials"]}
    assert set(added) == {"oversample", "copy_paste", "unit", "unit_pretrain"}
    assert len(set(added.values())) == 1 and added["unit"] == counts["added"]
    rows = {e["type"]: e for e in result.results["evaluations"] if e["line"] == "headline"}
    assert {"Baseline", "unit x0.5", "copy_paste x0.5", "oversample x0.5", "unit_pretrain x0.5"} <= set(rows)
    assert set(rows["unit x0.5"]["delta_vs_controls"]) == {"oversample", "copy_paste"}
    assert "delta_vs_baseline" in rows["oversample x0.5"]
    # Each paired ΔAUC is the row's AUC minus the other's (one seed: the pooled AUCs themselves)
    for control in ("oversample", "copy_paste"):
        d = rows["unit x0.5"]["delta_vs_controls"][control]["delta"]
        assert d == pytest.approx(rows["unit x0.5"]["auc"]["auc"] - rows[f"{control} x0.5"]["auc"]["auc"])
    arm_rows = [r for name, r in rows.items() if name != "Baseline"]
    for row in arm_rows:
        assert row["delta_vs_baseline"]["delta"] == pytest.approx(row["auc"]["auc"] - rows["Baseline"]["auc"]["auc"])
    assert any(abs(row["delta_vs_baseline"]["delta"]) > 1e-6 for row in arm_rows)  # so the sign is checked
    table = (result.output / "table.md").read_text()
    assert "copy_paste x0.5" in table and "vs oversample" in table
    # The pointing game of every row, on the boxed test lesions.
    pg = rows["Baseline"]["pointing"]
    assert pg["map"] == "lesion_map" and pg["all"]["n"] == 4 and 0 <= pg["all"]["rate"] <= 1
    # With the pointing game's tolerance a hit is at least as likely as strictly inside the box,
    # and the chance rate it is read against grows with it too.
    assert pg["tolerance_px"] == 15 and pg["strict"]["all"]["rate"] <= pg["all"]["rate"]
    assert 0 < pg["chance"]["strict"] < pg["chance"]["tolerance"] < 1
    # Each boxed lesion is listed with where the map peaked, for the Results panel to show.
    lesions = pg["lesions"]
    assert len(lesions) == 4 and sum(x["hit"] for x in lesions) / 4 == pytest.approx(pg["all"]["rate"])
    assert all(Path(x["path"]).is_file() and x["boxes"] and len(x["peak"]) == 2 for x in lesions)
    assert all(x["hit"] == (x["distance_px"] <= 15) for x in lesions)
    assert (result.output / f"pointing-{rows['Baseline']['target']}.png").is_file()  # the same, for the CLI
    assert "Pointing game" in table
    # Copy-paste samples carry the box the map head learns from, inside their window.
    saved = json.loads((result.output / "results.json").read_text())
    assert saved["studies"][0]["copy_paste_candidates"] > 0
    # Each candidate's score is stored with the filter's map peak, and the report says how often
    # that peak sits on the lesion: for all candidates and for what each synthetic arm added.
    from lesion_studio.classifier.scoring import onnx_path_for, registered_scorer
    from lesion_studio.files import file_sha256
    from lesion_studio.store import Project

    with Project.open(tmp_path / "demo") as project:
        samples = project.synthetic_samples()
        assert samples and all(s.score is not None and s.map_peak is not None for s in samples)
        hits = [s.map_on_lesion() for s in samples if s.batch == study["batch"]]
        # The ONNX file the study exported to score with is registered with its model, so scoring or
        # evaluating the baseline by name trusts it as it is instead of exporting it again.
        baseline = next(m for m in project.models("drn") if "baseline" in m.name)
        onnx = onnx_path_for(project.resolve_path(baseline.path))
        made = (onnx.stat().st_mtime_ns, file_sha256(onnx))
        assert baseline.metadata.get("onnx_sha256") == made[1]
        registered_scorer(project, baseline.name)
        assert (onnx.stat().st_mtime_ns, file_sha256(onnx)) == made
    on_lesion = saved["studies"][0]["map_on_lesion"]
    assert on_lesion["unit"]["n"] == len(hits) and on_lesion["unit"]["rate"] == pytest.approx(sum(hits) / len(hits))
    assert on_lesion["copy_paste"]["n"] == saved["studies"][0]["copy_paste_candidates"]
    by_arm = {tr["arm"]: tr.get("map_on_lesion") for tr in saved["studies"][0]["threshold_trials"]}
    assert by_arm["oversample"] is None and by_arm["unit"]["n"] == by_arm["copy_paste"]["n"] == counts["added"]
    assert "map peaks on the synthetic lesions" in table and "added by unit ×0.5" in table
