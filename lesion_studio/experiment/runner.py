"""Run the paper's augmentation protocol from a config, one cached stage at a time.

Stages (each cached by :class:`StageCache`; see the module docs there):

1. ``baseline/T`` — train the baseline classifier on the training split of target body parts T.
2. ``generator/G`` — the generator for body parts G (a registered UNIT model, trained when missing,
   or the stub painter).
3. ``synthesize/T<-G`` — candidates from T's *training* normal images, each saved with provenance.
4. ``score/T<-G`` — score the candidates with G's baseline classifier (ONNX Runtime by default).
5. ``augmented/T<-G/t`` — one augmented classifier per threshold t on train + candidates scored > t;
   t is chosen by the augmented model's validation AUC.
6. ``evaluate`` — test AUCs with bootstrap CIs and paired ΔAUC (project test split or an external
   hold-out that never touches training or threshold choice), then the report files.

T = G is the paper's "Augmented" row; T ≠ G is transfer learning ("TL").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.classifier.data import LabelledSet, image_examples, materialise, split_records
from lesion_studio.classifier.preprocess import PreparedCache
from lesion_studio.config import to_dict
from lesion_studio.errors import LesionStudioError
from lesion_studio.experiment.config import ExperimentConfig, StudySpec
from lesion_studio.experiment.generators import StubPainter, Synthesizer, UnitSynthesizer
from lesion_studio.experiment.stages import StageCache, inputs_hash
from lesion_studio.jobs import CancelToken, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.project import Project

log = logging.getLogger(__name__)


def parts_label(parts: list[str]) -> str:
    return "+".join(parts)


@dataclass
class ExperimentResult:
    output: Path
    results: dict[str, Any]
    stage_events: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


class ExperimentRunner:
    def __init__(self, config: ExperimentConfig, *, test_set_dir: str | Path | None = None,
                 progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> None:
        self.cfg = config
        self.progress = progress
        self.cancel = cancel or CancelToken()
        self.out = config.path(config.output)
        assert self.out is not None
        self.out.mkdir(parents=True, exist_ok=True)
        self.stages = StageCache(self.out / "stages")
        self.cls_cfg = config.classifier_config()
        self.aug_cfg = config.classifier_config(augmented=True)
        if self.aug_cfg.input_size != self.cls_cfg.input_size:
            raise LesionStudioError("The augmented classifier must use the baseline's input_size.")
        self.test_set_dir = Path(test_set_dir) if test_set_dir else None
        self.project: Project | None = None
        self.test_project: Project | None = None
        self._synths: dict[str, Synthesizer] = {}

    # ------------------------------------------------------------------ setup
    def _open_project(self) -> Project:
        cfg = self.cfg
        if cfg.project == "demo":
            from lesion_studio.demo import build_demo_project

            return build_demo_project(self.out / "demo-project")
        if cfg.project is not None:
            return Project.open(cfg.path(cfg.project))
        spec = cfg.import_spec
        assert spec is not None
        project = Project.open_or_create(cfg.path(spec.project))
        if project.image_count() == 0:
            from lesion_studio.dataset.importer import import_source

            import_source(project, cfg.path(spec.source), labels_csv=cfg.path(spec.labels),
                          boxes_csv=cfg.path(spec.boxes), progress=self.progress)
        if any(r.split == "unassigned" for r in project.images()):
            from lesion_studio.dataset.splits import assign_splits

            assign_splits(project, tuple(spec.split_fractions), seed=spec.split_seed, only_unassigned=True)
        return project

    def _open_test_project(self) -> Project | None:
        folder = self.test_set_dir
        labels = boxes = None
        if folder is None and self.cfg.test_set is not None:
            folder = self.cfg.path(self.cfg.test_set.folder)
            labels = self.cfg.path(self.cfg.test_set.labels)
            boxes = self.cfg.path(self.cfg.test_set.boxes)
        if folder is None:
            return None
        folder = Path(folder)
        labels = labels or folder / "labels.csv"
        if boxes is None and (folder / "boxes.csv").exists():
            boxes = folder / "boxes.csv"
        if not labels.exists():
            raise LesionStudioError(f"The external test set {folder} needs a labels CSV ({labels} is missing).")
        tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
        project = Project.open_or_create(self.out / f"external-test-{tag}")
        if project.image_count() == 0:
            from lesion_studio.dataset.importer import import_source

            import_source(project, folder, labels_csv=labels, boxes_csv=boxes, progress=self.progress)
        project.set_splits({r.id: "test" for r in project.images()})
        assert self.project is not None
        used = {r.sha256 for r in self.project.images() if r.split in ("train", "val")}
        overlap = [r.name for r in project.images() if r.sha256 in used]
        if overlap:
            raise LesionStudioError(
                f"{len(overlap)} image(s) of the external test set are also training/validation images of "
                f"the project (e.g. {overlap[0]}); an external hold-out must be independent.")
        return project

    def _cache(self) -> PreparedCache:
        assert self.project is not None
        return PreparedCache(self.cls_cfg.preprocessing, self.project.subfolder("cache") / "classifier")

    def _records_hash(self, parts: list[str]) -> str:
        assert self.project is not None
        rows = sorted((r.id, r.sha256, r.label, r.split, r.exclusions)
                      for s in ("train", "val") for r in split_records(self.project, s, parts,
                                                                      include_excluded=self.cfg.include_excluded))
        return inputs_hash(rows)[:16]

    # ------------------------------------------------------------------ stages
    def baseline(self, parts: list[str]) -> dict[str, Any]:
        from lesion_studio.training.classifier_trainer import train_classifier

        label = parts_label(parts)
        inputs = {"config": to_dict(self.cls_cfg), "data": self._records_hash(parts),
                  "include_excluded": self.cfg.include_excluded}

        def fn() -> dict[str, Any]:
            result, mid = train_classifier(
                self.project, self.cls_cfg, name=f"{self.cfg.name}-baseline-{label}",
                out_dir=self.out / "models" / f"baseline-{label}", body_parts=parts,
                include_excluded=self.cfg.include_excluded, progress=self.progress, cancel=self.cancel,
                cache_dir=self.project.subfolder("cache") / "classifier")
            return {"path": str(result.path), "sha256": result.sha256, "val_auc": result.val_auc,
                    "epoch": result.epoch, "model_id": mid, "model_name": f"{self.cfg.name}-baseline-{label}"}

        return self.stages.run(f"baseline/{label}", inputs, fn)

    def generator(self, parts: list[str]) -> dict[str, Any]:
        spec = self.cfg.generator
        label = parts_label(parts)
        if spec.kind == "stub":
            synth: Synthesizer = StubPainter()
            self._synths[label] = synth
            return self.stages.run(f"generator/{label}", {"spec": to_dict(spec)}, lambda: dict(synth.identity))
        assert self.project is not None
        name = (spec.model or "unit-{parts}").format(parts=label)

        def fn() -> dict[str, Any]:
            try:
                record = self.project.model(name)
                if record.kind != "unit":
                    raise LesionStudioError(f"Model {name!r} is a {record.kind} model, not a UNIT generator.")
                return {"kind": "unit", "model_id": record.id, "model_name": name, "sha256": record.sha256,
                        "trained": False}
            except LesionStudioError as exc:
                if "no model" not in str(exc):
                    raise
            from lesion_studio.training.unit_trainer import preset_config, train_unit

            ucfg = preset_config(spec.train_preset, body_parts=parts, seed=self.cfg.seed, **spec.train_overrides)
            result = train_unit(self.project, ucfg, name=name, resume=True, progress=self.progress,
                                cancel=self.cancel)
            record = self.project.model(name)
            return {"kind": "unit", "model_id": result.model_id, "model_name": name, "sha256": record.sha256,
                    "trained": True}

        existing = None
        with contextlib.suppress(LesionStudioError):
            existing = self.project.model(name).sha256
        out = self.stages.run(f"generator/{label}", {"spec": to_dict(spec), "parts": parts,
                                                     "existing_sha256": existing}, fn)
        self._synths[label] = UnitSynthesizer(self.project, out["model_id"], backend=spec.backend)
        return out

    def synthesize(self, target: list[str], source: list[str], gen: dict[str, Any]) -> dict[str, Any]:
        from lesion_studio.synthesis.images import save_png

        assert self.project is not None
        key = f"{parts_label(target)}<-{parts_label(source)}"
        spec = self.cfg.synthesis
        inputs = {"synthesis": to_dict(spec), "generator": gen, "data": self._records_hash(target),
                  "seed": self.cfg.seed}
        batch = f"{self.cfg.name}:{key}:{inputs_hash(inputs)[:8]}"
        synth = self._synths[parts_label(source)]

        def fn() -> dict[str, Any]:
            from lesion_studio.io import open_radiograph

            project = self.project
            sources = [r for r in split_records(project, "train", target, include_excluded=False)
                       if r.label == "normal"]
            if not sources:
                raise LesionStudioError(f"There are no normal training images for {parts_label(target)} "
                                        "to synthesize lesions into.")
            rng = np.random.default_rng(self.cfg.seed)
            order = rng.permutation(len(sources))
            done = {(s.source_image_id, s.seed): s.id for s in project.synthetic_samples(batch=batch)}
            folder = self.out / "synthetic" / key.replace("<-", "_from_")
            ids: list[int] = []
            total = min(spec.max_candidates, len(sources) * spec.candidates_per_image)
            for i in order:
                if len(ids) >= total:
                    break
                self.cancel.raise_if_cancelled("Synthesis")
                rec = sources[int(i)]
                img_rng = np.random.default_rng([self.cfg.seed, rec.id])
                windows = synth.windows(project, rec, spec.candidates_per_image, img_rng)
                rg = None
                for k, window in enumerate(windows):
                    if len(ids) >= total:
                        break
                    seed = int(rec.id * 1000 + k)
                    if (rec.id, seed) in done:
                        ids.append(done[(rec.id, seed)])
                        continue
                    rg = rg or open_radiograph(rec.abs_path)
                    cand = synth.synthesize(rg, window, n=spec.n, seed=seed, stochastic=spec.stochastic)
                    path = save_png(folder / f"img{rec.id:06d}-{k}.png", cand.image)
                    with open(path, "rb") as fh:
                        file_sha = hashlib.file_digest(fh, "sha256").hexdigest()
                    prov = {**cand.provenance, "source_image_id": rec.id, "source_sha256": rec.sha256,
                            "box": list(cand.window.as_tuple()), "n": cand.n, "seed": cand.seed,
                            "file_sha256": file_sha, "experiment": self.cfg.name, "generator": gen}
                    ids.append(project.add_synthetic_sample(rec.id, cand.window, n=cand.n, seed=seed,
                                                            model_id=synth.model_id, path=path, batch=batch,
                                                            provenance=prov))
                    self.progress(ProgressEvent(f"synthesizing {key}", len(ids), total))
            return {"batch": batch, "sample_ids": ids}

        return self.stages.run(f"synthesize/{key}", inputs, fn)

    def score(self, key: str, samples: dict[str, Any], filter_model: dict[str, Any]) -> dict[str, Any]:
        assert self.project is not None
        backend = self.cfg.scoring_backend
        inputs = {"samples": samples, "filter": filter_model["sha256"], "backend": backend}

        def fn() -> dict[str, Any]:
            from lesion_studio.classifier.data import synthetic_examples

            project = self.project
            recs = [project.synthetic_sample(i) for i in samples["sample_ids"]]
            train_ids = {s.source_image_id for s in recs}
            examples = synthetic_examples(project, recs, train_ids)
            cache = self._cache()
            items = [(e.key, e.path) for e in examples]
            if backend == "onnx":
                from lesion_studio.classifier.scoring import scorer_for_weights

                scores = scorer_for_weights(filter_model["path"]).score_files(
                    items, cache=cache, progress=self.progress, cancel=self.cancel)
            else:
                scores = self._predict_torch(filter_model["path"], cache.stack(items))
            for sid, s in zip(samples["sample_ids"], scores, strict=True):
                project.update_synthetic_sample(sid, score=float(s))
            return {"scores": {str(k): float(v) for k, v in zip(samples["sample_ids"], scores, strict=True)},
                    "filter_model": filter_model.get("model_name"), "filter_sha256": filter_model["sha256"],
                    "backend": backend}

        return self.stages.run(f"score/{key}", inputs, fn)

    def _predict_torch(self, path: str | Path, arrays: np.ndarray) -> np.ndarray:
        from lesion_studio.training.classifier_trainer import load_classifier, predict

        model, _ = load_classifier(path, device=self.cls_cfg.device)
        dev = next(model.parameters()).device
        return predict(model, arrays, device=dev, batch_size=self.cls_cfg.eval_batch_size)

    def augmented(self, target: list[str], key: str, t: float, scored: dict[str, Any]) -> dict[str, Any]:
        from lesion_studio.evaluate.metrics import above_threshold
        from lesion_studio.training.classifier_trainer import train_classifier

        assert self.project is not None
        ids = sorted(int(k) for k in scored["scores"])  # JSON sorts keys as text: order by id
        keep = above_threshold(np.array([scored["scores"][str(i)] for i in ids]), t)
        kept = [i for i, k in zip(ids, keep, strict=True) if k]
        inputs = {"config": to_dict(self.aug_cfg), "data": self._records_hash(target), "kept": kept,
                  "filter": scored["filter_sha256"], "t": t}
        safe = key.replace("<-", "_from_")

        def fn() -> dict[str, Any]:
            if not kept:
                return {"t": t, "kept": 0, "val_auc": None, "skipped": True}
            name = f"{self.cfg.name}-aug-{safe}-t{t:g}"
            result, mid = train_classifier(
                self.project, self.aug_cfg, name=name, out_dir=self.out / "models" / f"aug-{safe}-t{t:g}",
                body_parts=target, include_excluded=self.cfg.include_excluded,
                synthetic=[self.project.synthetic_sample(i) for i in kept], progress=self.progress,
                cancel=self.cancel, cache_dir=self.project.subfolder("cache") / "classifier")
            return {"t": t, "kept": len(kept), "kept_ids": kept, "val_auc": result.val_auc, "path": str(result.path),
                    "sha256": result.sha256, "model_id": mid, "model_name": name, "skipped": False}

        return self.stages.run(f"augmented/{key}/t={t:g}", inputs, fn)

    # ------------------------------------------------------------------ evaluation
    def _test_sets(self, parts: list[str]) -> dict[str, LabelledSet]:
        project = self.test_project or self.project
        assert project is not None
        cache = PreparedCache(self.cls_cfg.preprocessing, self.project.subfolder("cache") / "classifier")
        records = split_records(project, "test", parts, include_excluded=self.cfg.include_excluded)
        if not records:
            raise LesionStudioError(f"The test set has no reviewed images for {parts_label(parts)}.")
        sets = {"headline": materialise(image_examples(records), cache, what="test images")}
        extra = set(self.cfg.also_evaluate_including)
        if extra and not self.cfg.include_excluded:
            more = [r for r in split_records(project, "test", parts, include_excluded=True)
                    if r.excluded and set(r.exclusions) <= extra]
            label = "including " + "+".join(sorted(extra))
            sets[label] = materialise(image_examples(records + more), cache, what="test images")
        return sets

    def evaluate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        from lesion_studio.evaluate.metrics import bootstrap_auc, paired_bootstrap_delta_auc, roc

        bs = self.cfg.bootstrap
        test_id = "external:" + str(self.test_set_dir or (self.cfg.test_set.folder if self.cfg.test_set else "")) \
            if self.test_project else "project-test-split"
        inputs = {"rows": [{k: r.get(k) for k in ("target", "type", "sha256", "t")} for r in rows],
                  "bootstrap": to_dict(bs), "test": test_id,
                  "test_data": inputs_hash(sorted((r.sha256, r.label, r.exclusions, r.body_part)
                                                  for r in (self.test_project or self.project).images(split="test"))),
                  "including": self.cfg.also_evaluate_including}

        def fn() -> dict[str, Any]:
            out: dict[str, Any] = {"test_set": test_id, "evaluations": []}
            by_target: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by_target.setdefault(r["target"], []).append(r)
            for trows in by_target.values():
                parts = trows[0]["parts"]
                for line, data in self._test_sets(parts).items():
                    scores = {id(r): self._predict_torch(r["path"], data.arrays) for r in trows if r.get("path")}
                    base = next(r for r in trows if r["type"] == "Baseline")
                    for r in trows:
                        entry = {k: r.get(k) for k in ("target", "type", "t", "augmented_samples", "model_name",
                                                        "sha256", "val_auc", "transfer_from")}
                        entry["line"] = line
                        entry["test"] = data.summary()
                        if id(r) not in scores:
                            entry["auc"] = None
                            out["evaluations"].append(entry)
                            continue
                        s = scores[id(r)]
                        entry["auc"] = bootstrap_auc(data.labels, s, n_resamples=bs.resamples,
                                                     confidence=bs.confidence, seed=bs.seed).to_dict()
                        fpr, tpr, _ = roc(data.labels, s)
                        entry["roc"] = {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()}
                        if r is not base:
                            entry["delta_vs_baseline"] = paired_bootstrap_delta_auc(
                                data.labels, scores[id(base)], s, n_resamples=bs.resamples,
                                confidence=bs.confidence, seed=bs.seed).to_dict()
                        per_part = {}
                        parts_of = np.array([e.body_part for e in data.examples])
                        for part in sorted(set(parts_of)):
                            m = parts_of == part
                            if len(set(data.labels[m])) == 2 and len(set(parts_of)) > 1:
                                per_part[part] = bootstrap_auc(data.labels[m], s[m], n_resamples=bs.resamples,
                                                               confidence=bs.confidence, seed=bs.seed).to_dict()
                        if per_part:
                            entry["per_body_part"] = per_part
                        out["evaluations"].append(entry)
            return out

        return self.stages.run("evaluate", inputs, fn)

    # ------------------------------------------------------------------ the whole protocol
    def run(self) -> ExperimentResult:
        from lesion_studio.experiment.report import write_report

        t0 = time.perf_counter()
        self.project = self._open_project()
        run_id = self.project.start_run("experiment", name=self.cfg.name, config=self.cfg.to_dict(),
                                        output_dir=self.out)
        try:
            self.test_project = self._open_test_project()
            rows: list[dict[str, Any]] = []
            studies: list[StudySpec] = self.cfg.studies
            n_steps = len(studies) * (3 + len(self.cfg.thresholds)) + 2
            step = 0

            def tick(msg: str) -> None:
                nonlocal step
                step += 1
                self.progress(ProgressEvent("experiment", step, n_steps, msg))

            baselines: dict[str, dict[str, Any]] = {}
            targets = {parts_label(s.body_parts) for s in studies}
            for study in studies:
                for parts in (study.body_parts, study.transfer_from or study.body_parts):
                    label = parts_label(parts)
                    if label in baselines:
                        continue
                    self.cancel.raise_if_cancelled("The experiment")
                    baselines[label] = self.baseline(parts)
                    tick(f"baseline {label}")
                    if label in targets:
                        rows.append({"target": label, "parts": parts, "type": "Baseline", "t": None,
                                     "augmented_samples": 0, **baselines[label]})
            selections = []
            generators: dict[str, dict[str, Any]] = {}
            for study in studies:
                target, source = study.body_parts, study.transfer_from or study.body_parts
                key = f"{parts_label(target)}<-{parts_label(source)}"
                if parts_label(source) not in generators:  # one generator per body-part group, shared by studies
                    generators[parts_label(source)] = self.generator(source)
                gen = generators[parts_label(source)]
                tick(f"generator {parts_label(source)}")
                samples = self.synthesize(target, source, gen)
                tick(f"synthesize {key}")
                scored = self.score(key, samples, baselines[parts_label(source)])
                tick(f"score {key}")
                trials = []
                for t in self.cfg.thresholds:
                    self.cancel.raise_if_cancelled("The experiment")
                    trials.append(self.augmented(target, key, t, scored))
                    tick(f"augmented {key} t={t:g}")
                valid = [tr for tr in trials if not tr["skipped"] and tr["val_auc"] is not None]
                best = max(valid, key=lambda tr: tr["val_auc"]) if valid else next(
                    (tr for tr in trials if not tr["skipped"]), None)
                if best is not None:
                    kept = set(best["kept_ids"])
                    for sid in samples["sample_ids"]:
                        self.project.update_synthetic_sample(sid, status="accepted" if sid in kept else "rejected")
                kind = "TL" if study.transfer_from else "Augmented"
                rows.append({"target": parts_label(target), "parts": target, "type": kind,
                             "transfer_from": parts_label(source) if study.transfer_from else None,
                             "t": best["t"] if best else None,
                             "augmented_samples": best["kept"] if best else 0,
                             **({k: best[k] for k in ("path", "sha256", "val_auc", "model_name")} if best else {})})
                selections.append({"study": study.label(), "key": key, "type": kind, "generator": gen,
                                   "filter_model": baselines[parts_label(source)].get("model_name"),
                                   "candidates": len(samples["sample_ids"]), "batch": samples["batch"],
                                   "scores": scored["scores"], "scoring_backend": scored["backend"],
                                   "threshold_trials": [{k: v for k, v in tr.items() if k != "kept_ids"}
                                                        for tr in trials],
                                   "chosen_t": best["t"] if best else None,
                                   "synthetic_folder": str(self.out / "synthetic" / key.replace("<-", "_from_"))})
            evaluation = self.evaluate(rows)
            tick("evaluate")
            results = {"name": self.cfg.name, "config": self.cfg.to_dict(),
                       "classifier_config": to_dict(self.cls_cfg),
                       "augmented_classifier_config": to_dict(self.aug_cfg),
                       "models": {**{f"baseline {k}": {"name": v.get("model_name"), "sha256": v["sha256"],
                                                       "path": v["path"]} for k, v in baselines.items()},
                                  **{f"generator {s['key'].split('<-')[1]}": s["generator"] for s in selections}},
                       "studies": selections, "evaluations": evaluation["evaluations"],
                       "test_set": evaluation["test_set"], "stages": self.stages.events,
                       "seconds": round(time.perf_counter() - t0, 1)}
            files = write_report(self.out, results, self.project)
            tick("report")
            self.project.update_run(run_id, status="finished", metrics={"evaluations": [
                {k: e.get(k) for k in ("target", "type", "line", "t", "augmented_samples")}
                | {"auc": (e.get("auc") or {}).get("auc")} for e in evaluation["evaluations"]]}, finished=True)
            return ExperimentResult(self.out, results, self.stages.events, files)
        except BaseException:
            self.project.update_run(run_id, status="failed", finished=True)
            raise
        finally:
            if self.test_project is not None:
                self.test_project.close()


def run_experiment(config: ExperimentConfig, *, test_set_dir: str | Path | None = None,
                   progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> ExperimentResult:
    """Run (or resume) the protocol; finished stages are read from the cache."""
    runner = ExperimentRunner(config, test_set_dir=test_set_dir, progress=progress, cancel=cancel)
    try:
        return runner.run()
    finally:
        if runner.project is not None:
            runner.project.close()


def results_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
