"""Break one behaviour at a time and check that a test fails: the mutation table of issue 26.

    nice -n 19 python -m tools.mutation_check            # every mutation
    nice -n 19 python -m tools.mutation_check S1 L3      # some of them
    python -m tools.mutation_check --list                # what each one breaks
    ... --baseline                                       # first check the named tests pass unbroken
    ... S1 --tests tests/test_patches.py                 # against other tests (e.g. the older ones)

Each mutation replaces one exact snippet of the package (it must occur exactly once) in a copy of
the source tree in a temporary folder, runs the tests named for it there, and reports **caught**
(a test failed) or **SURVIVED** (every test passed: no test holds that behaviour). The working tree
is never modified. A mutation whose snippet is no longer found is reported as **stale**: the code
changed, so the mutation must be updated, not silently skipped.

The tests run with ``-x`` (the first failure is enough) and ``OMP_NUM_THREADS=1``; run the tool
under ``nice`` on a shared machine. Tests that need ``../shared/data`` see it through
``LESION_STUDIO_SHARED``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("lesion_studio", "tests", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids or files, relative to the repository root
    what: str


M = Mutation
PATCH_TESTS = ("tests/test_patch_rules.py", "tests/test_patches.py")
ONNX = "tests/test_onnx_export.py"
LOSS = "tests/test_loss_terms.py"
PREP = ("tests/test_preprocessing.py", "tests/test_classifier_levers.py")
STATS = ("tests/test_statistics.py", "tests/test_metrics.py", "tests/test_generator_quality.py")
METRICS = ("tests/test_statistics.py", "tests/test_metrics.py")
RULES = ("tests/test_filter_and_selection.py",)
LEAK = ("tests/test_leakage.py::test_experiment_candidates_come_only_from_normal_training_images",
        "tests/test_leakage.py::test_a_synthetic_sample_from_a_validation_image_never_trains",
        "tests/test_classifier.py::test_synthetic_images_never_leak_into_val_or_test")
SAMPLING = "lesion_studio/patches/sampling.py"
RUNNER = "lesion_studio/experiment/runner.py"
SELECTION = "lesion_studio/experiment/selection.py"
UNIT = "lesion_studio/models/unit.py"
TRAINER = "lesion_studio/training/unit_trainer.py"
PREPROCESS = "lesion_studio/classifier/preprocess.py"
MET = "lesion_studio/evaluate/metrics.py"
GQ = "lesion_studio/evaluate/generator_quality.py"

M = Mutation
MUTATIONS: tuple[Mutation, ...] = (
    # ---- the survivors of the issue-26 audit
    M("S1", SAMPLING, "cx, cy = (x0i + x1i) / 2.0, (y0i + y1i) / 2.0",
      "cx, cy = x0i + (x1i - x0i) / 4.0, (y0i + y1i) / 2.0", PATCH_TESTS,
      "lesion window not centred on its box"),
    M("S2", "lesion_studio/patches/set_cache.py", "include_excluded=False)", "include_excluded=True)", PATCH_TESTS,
      "the GAN trains on excluded images"),
    M("S3", "lesion_studio/synthesis/translator.py", '"noise": noise[sc[1]]', '"noise": noise[:len(sc[1])]',
      (f"{ONNX}::test_a_per_core_batch_uses_each_patchs_own_noise",),
      "per-core ONNX batches take the wrong noise rows"),
    M("S4", SELECTION, "quantile_threshold(mean[y == 1], float(q))", "quantile_threshold(mean[y == 0], float(q))",
      RULES, "the filter's cut from the normal validation scores, not the lesion ones"),
    # ---- patches
    M("P1", SAMPLING, "cx += float(rng.uniform(-1.0, 1.0)) * jitter * free_x",
      "cx += float(rng.uniform(-1.0, 1.0)) * 2 * jitter * free_x", PATCH_TESTS,
      "lesion windows shifted by up to twice the jitter"),
    M("P2", SAMPLING, "cy += float(rng.uniform(-1.0, 1.0)) * jitter * free_y",
      "cy += float(rng.uniform(0.0, 1.0)) * jitter * free_y", PATCH_TESTS,
      "lesion windows shifted to one side only"),
    M("P3", SAMPLING, "    cx, cy = b.center\n", "    cx, cy = b.x0, b.y0\n", PATCH_TESTS,
      "a picked normal patch's window not centred on it"),
    M("P4", SAMPLING, "if any(win.intersects(b) for b in avoid):", "if False:", PATCH_TESTS,
      "automatic normal windows land on the boxes they must avoid"),
    M("P5", "lesion_studio/patches/set_cache.py",
      "return [r for r in records if r.split in splits] if splits else records", "return records", ("tests/test_leakage.py::test_unit_training_reads_no_validation_or_test_image",),
      "the GAN's split filter ignored (validation and test images train it)"),
    M("P6", "lesion_studio/patches/dataset.py", "x[flips < 0.5] = x[flips < 0.5, :, ::-1]",
      "x[flips < 0.5] = x[flips < 0.5, ::-1, :]", PATCH_TESTS, "batches mirrored up-down instead of left-right"),
    M("P7", "lesion_studio/patches/dataset.py",
      'payload = {"v": CACHE_VERSION, "sha": rec.sha256, "params": asdict(params), **key_data}',
      'payload = {"v": CACHE_VERSION, "sha": rec.sha256, **key_data}', PATCH_TESTS,
      "the patch cache ignores the sampling parameters"),
    M("P8", "lesion_studio/classifier/data.py", "w = np.where(labels == 1, 0.5 / max(pos, 1), 0.5 / max(n - pos, 1))",
      "w = np.ones(n)", PATCH_TESTS, "the classifier's sampler does not balance the classes"),
    # ---- exported graphs
    M("O1", UNIT, "z = self.encoder(patches) + noise", "z = self.encoder(patches)",
      (f"{ONNX}::test_every_translator_graph_matches_torch_with_noise",), "the exported translator drops its noise"),
    M("O2", UNIT, "return dec_l(s) - dec_h(s)", "return dec_h(s) - dec_l(s)",
      (f"{ONNX}::test_every_translator_graph_matches_torch_with_noise",), "the residual graph's sign flipped"),
    M("O3", UNIT, 'src, dst = ("l", "h") if direction == "l2h" else ("h", "l")',
      'src, dst = ("h", "h") if direction == "l2h" else ("h", "l")',
      (f"{ONNX}::test_every_translator_graph_matches_torch_with_noise",), "the l2h graph uses the wrong encoder"),
    M("O4", "lesion_studio/classifier/scoring.py", "loc = 0.5 * (loc + torch.flip(loc_m, dims=(2,)))",
      "loc = 0.5 * (loc + loc_m)", (f"{ONNX}::test_every_classifier_output_matches_torch",),
      "the mirrored CAM is not flipped back"),
    M("O5", "lesion_studio/classifier/scoring.py", "prob = torch.sigmoid(logit)\n",
      "prob = torch.sigmoid(2 * logit)\n", (f"{ONNX}::test_every_classifier_output_matches_torch",),
      "the exported probability is not the model's"),
    # ---- UNIT losses and weights
    M("L1", "lesion_studio/training/unit_config.py", "recon_w: float = 10.0", "recon_w: float = 1.0", (LOSS,),
      "the reconstruction weight is not 10"),
    M("L2", UNIT, '"kl": torch.mean(out["mu_l"].float() ** 2)', '"kl": torch.mean(out["mu_l"].float().abs())', (LOSS,),
      "KL is not the mean of mu squared"),
    M("L3", UNIT, 'F.l1_loss(out["x_lhl"], x_l) + F.l1_loss(out["x_hlh"], x_h)',
      'F.l1_loss(out["x_lhl"], x_h) + F.l1_loss(out["x_hlh"], x_l)', (LOSS,), "cycles compared with the wrong domain"),
    M("L4", TRAINER, "total = sum(weights[k] * v for k, v in terms.items())",
      'total = sum(weights[k] * v for k, v in terms.items() if k != "cycle_kl")', (LOSS,),
      "a loss term left out of the total"),
    M("L5", TRAINER, '"cycle": cfg.cycle_w,', '"cycle": cfg.recon_w,', (LOSS,), "the cycle term takes the recon weight"),
    M("L6", UNIT, 'x_hlh = self.decode(mu_h_cyc + noise[2], "h")', 'x_hlh = self.decode(mu_h_cyc + noise[2], "l")',
      ("tests/test_unit_speed.py",), "the h cycle decodes into the wrong domain"),
    M("L7", UNIT, "z_l, z_h = mu_l + noise[0], mu_h + noise[1]", "z_l, z_h = mu_l + noise[0], mu_h + noise[0]",
      ("tests/test_unit_speed.py",),
      "both domains share one noise draw"),
    M("L8", UNIT, "return lsgan_loss([o[:n] for o in outs], 0.0) + lsgan_loss([o[n:] for o in outs], 1.0)",
      "return lsgan_loss([o[:n] for o in outs], 1.0) + lsgan_loss([o[n:] for o in outs], 0.0)", (LOSS,),
      "the discriminator's LSGAN targets swapped"),
    M("L9", UNIT, "return lsgan_loss(self.dis_l(fake_l), 1.0) + lsgan_loss(self.dis_h(fake_h), 1.0)",
      "return lsgan_loss(self.dis_l(fake_l), 0.0) + lsgan_loss(self.dis_h(fake_h), 1.0)", (LOSS,),
      "the generators' adversarial target wrong"),
    M("L10", TRAINER, '"betas": (cfg.beta1, cfg.beta2)', '"betas": (cfg.beta1, 0.999)', (LOSS,),
      "Adam ignores the configured beta2"),
    M("L11", TRAINER, "sched_g = torch.optim.lr_scheduler.StepLR(opt_g, cfg.lr_step, cfg.lr_gamma)",
      "sched_g = torch.optim.lr_scheduler.StepLR(opt_g, cfg.lr_step)", (LOSS,), "StepLR ignores lr_gamma"),
    M("L12", TRAINER, "loss_d = cfg.gan_w * nets.dis_ddp(", "loss_d = nets.dis_ddp(", (LOSS,),
      "the discriminator's loss not weighted by gan_w"),
    # ---- preprocessing
    M("R1", PREPROCESS, "high_percentile: float = 99.5", "high_percentile: float = 99.0", PREP,
      "the upper intensity percentile is not 99.5"),
    M("R2", PREPROCESS, "return np.clip((img - lo) / (hi - lo), 0.0, 1.0)", "return (img - lo) / (hi - lo)", PREP,
      "normalised intensities not clipped to [0, 1]"),
    M("R3", PREPROCESS, "STD = 0.25", "STD = 0.3", PREP, "standardisation's scale wrong"),
    M("R4", PREPROCESS, "y0, x0 = (size - nh) // 2, (size - nw) // 2", "y0, x0 = 0, 0", PREP,
      "the resized image not centred on its square"),
    M("R5", PREPROCESS, "self.folder = Path(folder) / prep.tag if folder else None",
      "self.folder = Path(folder) if folder else None", PREP, "the prepared cache not keyed by the settings"),
    M("R6", "lesion_studio/patches/intensity.py",
      "x = (np.asarray(pixels, dtype=np.float64) - lo) * (2.0 / (hi - lo)) - 1.0",
      "p = np.asarray(pixels, dtype=np.float64)\n    x = (p - p.min()) * (2.0 / max(p.max() - p.min(), 1.0)) - 1.0",
      ("tests/test_preprocessing.py", "tests/test_patches.py"), "patches normalised by their own range"),
    M("R7", "lesion_studio/patches/intensity.py", "out = img.resize((int(width), int(height)), Image.Resampling.BILINEAR)",
      "out = img.resize((int(width), int(height)), Image.Resampling.NEAREST)",
      ("tests/test_preprocessing.py", "tests/test_patches.py"), "patches resized without antialiasing"),
    # ---- statistics
    M("T1", MET, "aucs = resampled_aucs(y, s, idx)\n    alpha = (1.0 - confidence) / 2.0",
      "aucs = resampled_aucs(y, s, idx)\n    alpha = 1.0 - confidence", METRICS, "the CI's tails at 1 − confidence"),
    M("T2", MET, "p_not_better=float(np.mean(deltas <= 0.0)), n_resamples=n_resamples,\n"
      "                          confidence=confidence, seed=seed)\n\n\ndef above_threshold",
      "p_not_better=float(np.mean(deltas < 0.0)), n_resamples=n_resamples,\n"
      "                          confidence=confidence, seed=seed)\n\n\ndef above_threshold", METRICS,
      "ties not counted as 'not better'"),
    M("T3", MET, "good = draw[(pos > 0) & (pos < n)]", "good = draw[pos >= 0]", METRICS,
      "resamples with one class only are kept"),
    M("T4", MET, 'float(v.std(ddof=1)) if len(v) > 1 else 0.0', 'float(v.std()) if len(v) > 1 else 0.0', METRICS,
      "the seeds' sd is not the sample sd"),
    M("T5", MET, "aucs = np.mean([resampled_aucs(y, s, idx) for s in m], axis=0)", "aucs = resampled_aucs(y, m[0], idx)",
      METRICS, "the pooled CI from the first seed only"),
    M("T6", MET, "return np.asarray(scores, dtype=float).ravel() > threshold",
      "return np.asarray(scores, dtype=float).ravel() >= threshold", METRICS, "the filter keeps scores equal to t"),
    M("G1", GQ, "inner = t < core", "inner = t < 0.0", STATS, "drift counts the lesion core"),
    M("G2", GQ, "np.percentile(s.reshape(len(s), -1), [1.0, 99.0], axis=1)",
      "np.percentile(s.reshape(len(s), -1), [0.0, 100.0], axis=1)", STATS, "drift's range not the 1st-99th percentile"),
    M("G3", GQ, "mean_shift, spread_change = float(np.median(np.abs(signed))), float(np.median(np.abs(spread)))",
      "mean_shift, spread_change = float(np.mean(np.abs(signed))), float(np.median(np.abs(spread)))", STATS,
      "drift's mean shift averaged, not the median"),
    M("G4", GQ, '"drift": max(mean_shift, spread_change)', '"drift": min(mean_shift, spread_change)', STATS,
      "drift the smaller of the two"),
    M("G5", GQ, "(kxx.sum() - np.trace(kxx)) / (m * (m - 1))", "kxx.sum() / (m * m)", STATS, "KID biased"),
    M("G6", GQ, "for train, test in cv.split(x, y, groups):", "for train, test in cv.split(x, y, np.arange(len(y))):",
      STATS, "realism folds split an image's windows"),
    M("G7", GQ, '"ratio": syn_rate / real_rate if real_rate > 0 else 0.0',
      '"ratio": real_rate / syn_rate if syn_rate > 0 else 0.0', STATS, "the lesion rate ratio inverted"),
    M("G8", GQ, '"excess_auc": realism["auc"] - untouched', '"excess_auc": untouched - realism["auc"]', STATS,
      "the excess over the untouched windows has the wrong sign"),
    M("G9", GQ, '"source_rate": float(np.mean(self.source_prob >= 0.5))',
      '"source_rate": float(np.mean(self.real_prob >= 0.5))', STATS, "the sources' rate from the real lesions"),
    M("G10", GQ, "fake[rng.choice(len(fake), m, replace=False)]", "fake[rng.choice(len(fake), m, replace=True)]",
      STATS, "KID subsets drawn with replacement"),
    # ---- filter and selection rules
    M("F1", SELECTION, "mean = np.mean(np.asarray(scores, dtype=float), axis=0)", "mean = np.asarray(scores[0], dtype=float)",
      RULES, "the filter reads one seed, not the seeds' mean"),
    M("F2", SELECTION, "if val_auc < spec.min_baseline_val_auc:", "if val_auc <= spec.min_baseline_val_auc:", RULES,
      "a baseline at the floor refused"),
    M("F3", SELECTION, "cuts = {float(t): float(t) for t in thresholds}",
      "cuts = {float(t): 1.0 - float(t) for t in thresholds}", RULES, "the probability filter's cut is not t"),
    M("F4", SELECTION, 'best = max(valid, key=lambda c: c["val_delta"]["delta"])',
      'best = min(valid, key=lambda c: c["val_delta"]["delta"])', RULES, "selection picks the worst t"),
    M("F5", SELECTION, 'accepted = d["delta"] > spec.min_val_delta and d["p_not_better"] <= spec.max_p',
      'accepted = d["delta"] > spec.min_val_delta or d["p_not_better"] <= spec.max_p', RULES,
      "acceptance needs only one of its two conditions"),
    M("F6", SELECTION, 'accepted = d["delta"] > spec.min_val_delta and', 'accepted = d["delta"] >= spec.min_val_delta and',
      RULES, "a gain equal to the margin accepted"),
    M("F7", SELECTION, 'd["p_not_better"] <= spec.max_p', 'd["p_not_better"] < spec.max_p', RULES,
      "a share equal to max_p rejected"),
    M("F8", SELECTION, "if any(r.skipped for r in runs):", "if False:", RULES,
      "a threshold that kept nothing is compared"),
    M("F9", RUNNER, "scores = np.mean(per_seed, axis=0) if per_seed else np.zeros(0)",
      "scores = np.asarray(per_seed[0]) if per_seed else np.zeros(0)", RULES,
      "the filter score is the first seed's, not the seeds' mean"),
    M("F10", RUNNER, "keep = above_threshold(np.array([scored.scores[i] for i in ids], dtype=float), cut)",
      "keep = np.array([scored.scores[i] for i in ids], dtype=float) >= cut", RULES,
      "the augmented set takes candidates scored at the cut too"),
    M("F11", RUNNER, "kept = [i for i in kept if project.synthetic_sample(i).map_on_lesion() is True]",
      "kept = [i for i in kept if project.synthetic_sample(i).map_on_lesion() is not False]", RULES,
      "the map requirement keeps candidates whose filter map peaks off their lesion"),
    # ---- the leak guard
    M("K1", RUNNER, 'sources = [r for r in split_records(project, "train", target, include_excluded=False)',
      'sources = [r for r in [*split_records(project, "train", target, include_excluded=False), '
      '*split_records(project, "val", target)]', LEAK, "experiment candidates from validation images"),
    M("K2", RUNNER, 'split_records(project, "train", target, include_excluded=False)\n                       if r.label',
      'split_records(project, "train", target, include_excluded=True)\n                       if r.label', LEAK,
      "experiment candidates from excluded images"),
    M("K3", RUNNER, 'if r.label == "normal"]\n            if not sources:', 'if r.label != "unreviewed"]\n'
      "            if not sources:", LEAK, "experiment candidates from lesion images"),
    M("K4", "lesion_studio/classifier/data.py", "if s.source_image_id not in train_ids:", "if False:", LEAK,
      "a synthetic sample from a validation image trains"),
    M("K5", "lesion_studio/classifier/data.py", "usable = [s for s in accepted if s.source_image_id in train_ids]",
      "usable = accepted", LEAK, "accepted samples from validation images picked up for training"),
    # ---- the arms table: every paired ΔAUC is the row's AUC minus the other's
    M("E1", "lesion_studio/experiment/row_metrics.py", "pooled_paired_delta_auc(\n                data.labels, scores[control], s, **opts)",
      "pooled_paired_delta_auc(\n                data.labels, s, scores[control], **opts)",
      ("tests/test_arms.py::test_an_arms_study_runs_every_arm_with_equal_counts",),
      "an arm's ΔAUC against a control has its sign turned"),
    M("E2", "lesion_studio/experiment/row_metrics.py",
      'entry["delta_vs_baseline"] = pooled_paired_delta_auc(data.labels, b, s, **opts)',
      'entry["delta_vs_baseline"] = pooled_paired_delta_auc(data.labels, s, b, **opts)',
      ("tests/test_arms.py::test_an_arms_study_runs_every_arm_with_equal_counts",),
      "a row's ΔAUC against the baseline has its sign turned"),
    # ---- the classifier learns (the cheaper baseline test must still be able to fail)
    M("C1", "lesion_studio/training/classifier_trainer.py",
      "y = torch.from_numpy(self.train.labels[idx].astype(np.float32))",
      "y = torch.from_numpy(np.random.default_rng(0).permutation(self.train.labels)[idx].astype(np.float32))",
      ("tests/test_classifier.py::test_tiny_baseline_beats_chance_on_the_demo",),
      "the classifier trains on shuffled labels"),
    M("C2", "lesion_studio/training/classifier_trainer.py", "loss = run.loss_fn(image_logits[:, 0].float(), y)",
      "loss = run.loss_fn(image_logits[:, 0].float(), 1 - y)", ("tests/test_classifier.py::test_tiny_baseline_beats_chance_on_the_demo",),
      "the classifier learns the labels inverted"),
)


def _copy_tree(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    shared = ROOT.parent / "shared" / "data"
    if "LESION_STUDIO_SHARED" not in env and shared.is_dir():
        env["LESION_STUDIO_SHARED"] = str(shared)
    return env


def _pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                          cwd=copy, env=_env(copy), capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def _first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return found.group(1) if found else ""


def run(mutations: list[Mutation], baseline: bool) -> list[dict[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        if baseline:
            for tests in sorted({m.tests for m in mutations}):
                code, out = _pytest(copy, tests)
                if code != 0:
                    raise SystemExit(f"the unbroken code fails {' '.join(tests)}:\n{out[-3000:]}")
                print(f"baseline passes: {' '.join(tests)}", flush=True)
        for m in mutations:
            path = copy / m.file
            original = path.read_text()
            if original.count(m.old) != 1:
                rows.append({"id": m.id, "what": m.what, "result": "stale", "caught_by": ""})
                print(f"{m.id}: stale ({m.old!r} occurs {original.count(m.old)} times in {m.file})", flush=True)
                continue
            path.write_text(original.replace(m.old, m.new))
            try:
                code, out = _pytest(copy, m.tests)
            finally:
                path.write_text(original)
            result = {0: "SURVIVED", 1: "caught"}.get(code, f"error (pytest exit {code})")
            row = {"id": m.id, "what": m.what, "file": m.file, "result": result, "caught_by": _first_failure(out)}
            rows.append(row)
            print(f"{m.id}: {result} {row['caught_by']}", flush=True)
            if code not in (0, 1):
                print(out[-2000:], flush=True)
    return rows


def table(rows: list[dict[str, str]]) -> str:
    lines = ["| id | what was broken | where | result | first test that failed |", "|---|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['what']} | `{r.get('file', '')}` | {r['result']} | `{r['caught_by']}` |"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="mutation ids (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--baseline", action="store_true", help="first check that the tests pass unbroken")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--tests", nargs="+", help="run these tests instead of each mutation's own "
                        "(e.g. the tests that existed before a new one, to show the mutation survived them)")
    args = parser.parse_args(argv)
    known = {m.id: m for m in MUTATIONS}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(unknown)}")
    chosen = [known[i] for i in args.ids] if args.ids else list(MUTATIONS)
    if args.tests:
        chosen = [replace(m, tests=tuple(args.tests)) for m in chosen]
    if args.list:
        for m in chosen:
            print(f"{m.id}\t{m.file}\t{m.what}")
        return 0
    rows = run(chosen, args.baseline)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["result"] == "caught" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
