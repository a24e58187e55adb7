"""`make bench`'s table: every area the performance issue names gets its row, from each script's JSON."""

from __future__ import annotations

from benchmarks.run import markdown, table

#: The shape each *_bench.py prints (trimmed to what the table reads).
RESULTS = {
    "translate": {"preset": "fast", "physical_cores": 2, "threads_2": {
        "batch_1": {"onnxruntime": {"wall_ms": 14.7, "cpu_ms": 27.3}, "torch": {"wall_ms": 18.5},
                    "ratio_wall": 0.79, "ratio_cpu": 0.78},
        "batch_16": {"onnxruntime": {"wall_ms": 216.0, "cpu_ms": 364.0}, "torch": {"wall_ms": 294.0},
                     "ratio_wall": 0.74, "ratio_cpu": 0.64}}},
    "unit": {"threads": 2, "baseline_commit": "41e66ca", "this_tree_precision": "bf16",
             "this_tree": {"s_per_iteration_wall": 0.30, "s_per_iteration_cpu": 0.55},
             "this_tree_fp32": {"s_per_iteration_wall": 0.40, "s_per_iteration_cpu": 0.75},
             "baseline": {"s_per_iteration_wall": 0.47, "s_per_iteration_cpu": 0.9},
             "speedup_wall": 1.57, "speedup_cpu": 1.6, "speedup_wall_fp32": 1.17, "speedup_cpu_fp32": 1.2,
             "resolution": 128, "by_resolution": {"64": {
                 "this_tree": {"s_per_iteration_wall": 0.09}, "baseline": {"s_per_iteration_wall": 0.12},
                 "speedup_wall": 1.33, "speedup_wall_fp32": 1.21}}},
    "classifier": {"size": 128, "batch": 8, "drn_c_26_images_per_s": 7.9, "resnet18_images_per_s": 50.0,
                   "drn_c_26_vs_resnet18": 0.158, "drn_d_22_images_per_s": 9.1},
    "io": {"dicom_open": {"RG3_UNC": {"open_radiograph_s": 0.0084, "bare_pydicom_s": 0.0085, "ratio": 0.99}},
           "fracatlas": {"open_project_s": 0.17}},
    "gui": {"start": {"start_to_window_s": 1.7, "torch_imported_at_start": False}},
    "preview": {"slider_demo_256": {"ab_off": {"median_ms": 4.2}},
                "move_to_translated_cpu": {"median_ms": 31.0, "cold_ms": 80.0}},
    "synthesis": {"translate_128_ms": {"onnx": {"median": 9.0}, "torch": {"median": 12.0}},
                  "quality": {"seconds": 70.0, "n_real": 60, "n_synthetic": 60, "headline": {
                      "realism_auc": 0.86, "lesion_rate_ratio": 0.55, "intensity_drift": 0.043, "kid": 900.0}}},
    "experiment": {"experiment": "demo-tiny", "wall_s": 300.0, "stages": [
        {"stage": "train_gan/femur", "seconds": 100.0}, {"stage": "baseline/seed0", "seconds": 150.0}]},
    "package": {"skipped": "no bundle built"},
    "pause": {"project": "demo", "preset": "fast", "first": {"pause_wall_s": 0.61, "pause_cpu_s": 0.4},
              "second": {"pause_wall_s": 0.55, "pause_cpu_s": 0.38}, "onnx_files_after_pause": [],
              "first_start_to_iteration_s": 40.0, "first_start_patches_s": 35.0,
              "second_start_patches_s": 0.3, "second_start_to_iteration_s": 1.7},
}


def test_the_table_has_a_row_for_every_area_and_the_figures_it_was_given() -> None:
    rows = table(RESULTS)
    areas = {r[0] for r in rows}
    assert {"translation", "GAN training", "DRN training", "I/O", "GUI", "preview", "synthesis",
            "experiment"} <= areas
    text = markdown(RESULTS, {"machine": {"cpu": "test CPU", "logical_cpus": 2}, "date": "today",
                              "command": "make bench", "load_before": 0.1, "load_after": 0.2})
    assert "**0.79×**" in text and "≤ 0.8×" in text  # translation ratio beside its target
    assert "`cpu_bf16: auto` → bf16" in text and "**1.57×**" in text and "1.17×" in text  # default vs forced fp32
    assert "the same at 64², defaults | 0.090 s | baseline 0.120 s: **1.33×** faster; forced fp32 1.21×" in text
    assert "DRN-C-26" in text and "7.90" in text
    assert "realism AUC 0.860" in text and "drift 4.3 %" in text  # quality beside the synthesis timings
    assert "demo-tiny: train_gan stages" in text and "300.0 s" in text
    assert "| package | not measured | no bundle built |" in text  # a skipped script says why
    assert "0.61 s, again 0.55 s" in text and "ONNX files written: 0" in text  # the pause beside its target
    assert "second GAN start: patches prepared (from the project's cache) | 0.30 s | first iteration at 1.7 s; " \
        "first start: patches 35.0 s | ≤ 5 s" in text


def test_a_script_that_failed_is_listed_not_dropped() -> None:
    rows = table({"unit": {"error": "training run failed"}})
    assert rows == [("unit", "not measured", "training run failed", "", "")]


def test_merge_puts_a_rerun_into_the_last_run_and_the_table_says_so(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import json
    import subprocess

    import benchmarks.run as run

    monkeypatch.setattr(run, "OUT", tmp_path)
    meta = {"machine": {"cpu": "test CPU", "logical_cpus": 2}, "date": "first", "command": "make bench",
            "load_before": 0.1, "load_after": 0.2}
    (tmp_path / "bench.json").write_text(json.dumps({"meta": meta, "results": {"io": RESULTS["io"], "gui": {
        "error": "failed the first time"}}}))

    def fake_run(cmd, **_kw):  # noqa: ANN001, ANN202 - the benchmark script, without running it
        return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps(RESULTS["gui"]), stderr="")

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    assert run.main(["gui", "--merge"]) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert set(data["results"]) == {"io", "gui"} and "error" not in data["results"]["gui"]
    assert data["meta"]["date"] == "first" and data["meta"]["reruns"][0]["names"] == ["gui"]
    text = (tmp_path / "bench.md").read_text()
    assert "Re-run on" in text and "(`--merge`): gui." in text and "open RG3_UNC" in text
