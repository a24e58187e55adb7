"""Run the paper's augmentation protocol from a config, one cached stage at a time.

Stages (each cached by :class:`StageCache`; see the module docs there), in the order of
:class:`~lesion_studio.experiment.plan.ExperimentPlan`:

1. ``baseline/T/seed=s`` — the baseline classifier on the training split of target body parts T,
   once per training seed; its validation scores are kept for the filter and for selection.
2. ``generator/G`` — the generator for body parts G (a registered UNIT model, trained when missing,
   or the stub painter). One per body-part group, shared by all seeds.
3. ``synthesize/T<-G`` — candidates from T's *training* normal images, each saved with provenance
   (made once, shared by all seeds).
4. ``score/T<-G`` — score the candidates with each seed's baseline of G (ONNX Runtime by default);
   the filter score is the seeds' mean. When that mean's validation AUC is below
   ``filter.min_baseline_val_auc`` the runner refuses to filter and the study is not augmented.
5. ``augmented/T<-G/t/seed=s`` — one augmented classifier per threshold and seed, on train +
   candidates above the threshold (a quantile of the filter's scores on real validation lesions,
   or a raw probability: ``filter.kind``).
6. selection (no training) — among {baseline, each t}: the t with the best pooled validation ΔAUC
   is accepted only when it beats the baseline on validation (``selection``); otherwise the study
   reports "augmentation rejected on validation" and the baseline is its result.
7. ``evaluate`` — test AUCs pooled over seeds (mean and spread, pooled bootstrap CI) and pooled
   paired ΔAUC (project test split, or an external hold-out that never touches training or
   selection), then the report files.

T = G is the paper's "Augmented" row; T ≠ G is transfer learning ("TL").
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.classifier.config import ClassifierConfig
from lesion_studio.classifier.data import LabelledSet, image_examples, materialise, split_records
from lesion_studio.classifier.preprocess import InputFrame, PreparedCache
from lesion_studio.config import to_dict
from lesion_studio.errors import DiskFullError, LesionStudioError
from lesion_studio.experiment.config import ExperimentConfig, StudySpec
from lesion_studio.experiment.generators import StubPainter, Synthesizer, UnitSynthesizer
from lesion_studio.experiment.outputs import (
    ArmRun,
    AugmentedRun,
    BaselineRun,
    CandidateBatch,
    Evaluation,
    FilterDecision,
    GeneratorInfo,
    ModelRow,
    ScoredCandidates,
    Selection,
)
from lesion_studio.experiment.plan import ExperimentPlan, arm_stage_name, parts_label
from lesion_studio.experiment.row_metrics import evaluate_row, held_out_sets, row_pointing
from lesion_studio.experiment.selection import (
    ACCEPTED,
    NOTHING_KEPT,
    REFUSED,
    REJECTED,
    filter_decision,
    select,
    study_status,
    val_delta,
    val_vs_controls,
)
from lesion_studio.experiment.stages import StageCache, inputs_hash
from lesion_studio.files import file_sha256
from lesion_studio.jobs import CancelToken, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.project import Project

log = logging.getLogger(__name__)


#: Bumped when a stage's outputs change shape, so caches from older versions are recomputed.
STAGE_VERSION = 2

@dataclass
class ExperimentResult:
    output: Path
    results: dict[str, Any]
    stage_events: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class RunContext:
    """What the stages of one run work on: made by :meth:`ExperimentRunner.run` once the project
    is open, and handed to each stage, so that no stage can run without a project.

    It also keeps what the stages share within the run: the synthesizer of each body-part group
    (made by the generator stage, used by synthesis) and the validation sets (read once per group).
    """

    project: Project
    #: An external hold-out (a project of its own under the results folder), or None for the
    #: project's test split.
    test_project: Project | None = None
    synthesizers: dict[str, Synthesizer] = field(default_factory=dict)
    val_sets: dict[str, LabelledSet | None] = field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        """The classifier's prepared-image cache in the project (a fresh :class:`PreparedCache` per
        use keeps its in-memory arrays from living for the whole run)."""
        return self.project.subfolder("cache") / "classifier"

    @property
    def test_source(self) -> Project:
        """The project whose test split is evaluated."""
        return self.test_project or self.project


class _PlanTicker:
    """Counts the stages as a run passes them, checks that each is the next one its plan names (so
    the progress bar's total, the plan's length, is right) and reports the step."""

    def __init__(self, plan: ExperimentPlan, progress: ProgressCallback) -> None:
        self.plan = plan
        self.progress = progress
        self.step = 0
        self._planned = iter(plan.stages)

    def __call__(self, name: str) -> None:
        self.step += 1
        expected = next(self._planned).name
        assert name == expected, f"the runner left its plan: {name!r} where {expected!r} was planned"
        self.progress(ProgressEvent("experiment", self.step, len(self.plan), name))


@dataclass
class _RunState:
    """What one run gathers as it passes its stages: the baselines of each body-part group, the
    generators (and their quality) shared by the studies of a group, the report's rows and the
    studies' entries."""

    ctx: RunContext
    tick: _PlanTicker
    several_seeds: bool
    rows: list[ModelRow] = field(default_factory=list)
    baselines: dict[str, list[BaselineRun]] = field(default_factory=dict)
    generators: dict[str, GeneratorInfo] = field(default_factory=dict)
    qualities: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    selections: list[dict[str, Any]] = field(default_factory=list)

    def seed_tag(self, seed: int) -> str:
        """The seed in a stage's name, when the run trains more than one."""
        return f" seed {seed}" if self.several_seeds else ""


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
        self.seeds = config.training_seeds
        self.cls_cfgs = {s: config.classifier_config(seed=s) for s in self.seeds}
        self.aug_cfgs = {s: config.classifier_config(augmented=True, seed=s) for s in self.seeds}
        self.cls_cfg = self.cls_cfgs[self.seeds[0]]
        self.aug_cfg = self.aug_cfgs[self.seeds[0]]
        if self.aug_cfg.preprocessing != self.cls_cfg.preprocessing:
            raise LesionStudioError("The augmented classifier must use the baseline's input_size and cropping.")
        self.plan = ExperimentPlan.from_config(config)
        self.test_set_dir = Path(test_set_dir) if test_set_dir else None

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

    def _open_test_project(self, project: Project) -> Project | None:
        """The external test set as a project of its own, checked to share no image with the
        training and validation images of ``project``; None when the run has none."""
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
        test = Project.open_or_create(self.out / f"external-test-{tag}")
        if test.image_count() == 0:
            from lesion_studio.dataset.importer import import_source

            import_source(test, folder, labels_csv=labels, boxes_csv=boxes, progress=self.progress)
        test.set_splits({r.id: "test" for r in test.images()})
        used = {r.sha256 for r in project.images() if r.split in ("train", "val")}
        overlap = [r.name for r in test.images() if r.sha256 in used]
        if overlap:
            test.close()
            raise LesionStudioError(
                f"{len(overlap)} image(s) of the external test set are also training/validation images of "
                f"the project (e.g. {overlap[0]}); an external hold-out must be independent.")
        return test

    def _cache(self, ctx: RunContext) -> PreparedCache:
        return PreparedCache(self.cls_cfg.preprocessing, ctx.cache_dir)

    def _classifier_inputs(self, project: Project, cfg: ClassifierConfig) -> dict[str, Any]:
        """A classifier stage's settings as its cache key: the config, and with a warm start the
        records of the body parts it pretrains on (a label changed there changes the model)."""
        inputs: dict[str, Any] = {"config": cfg.key_dict()}
        if cfg.warm_start_parts:
            inputs["warm_start_data"] = self._records_hash(project, cfg.warm_start_body_parts)
        return inputs

    def _records_hash(self, project: Project, parts: list[str] | None) -> str:
        rows = sorted((r.id, r.sha256, r.label, r.split, r.exclusions)
                      for s in ("train", "val") for r in split_records(project, s, parts,
                                                                      include_excluded=self.cfg.include_excluded))
        return inputs_hash(rows)[:16]

    def _seed_tag(self, seed: int) -> str:
        """Suffix of model names and folders: empty for a single-seed run (names stay as before)."""
        return f"-s{seed}" if len(self.seeds) > 1 else ""

    def _val_set(self, ctx: RunContext, parts: list[str]) -> LabelledSet | None:
        """The project's validation images of these body parts (None when there are none of a class)."""
        label = parts_label(parts)
        if label not in ctx.val_sets:
            records = split_records(ctx.project, "val", parts, include_excluded=self.cfg.include_excluded)
            data = materialise(image_examples(records), self._cache(ctx), what="validation images") if records else None
            ctx.val_sets[label] = data if data is not None and len(set(data.labels.tolist())) == 2 else None
        return ctx.val_sets[label]

    def _val_scores(self, ctx: RunContext, path: str | Path,
                    parts: list[str]) -> tuple[list[float] | None, list[int] | None]:
        """A classifier's scores on the validation set, and its labels (None, None without one)."""
        data = self._val_set(ctx, parts)
        if data is None:
            return None, None
        scores = self._predict_torch(path, data.arrays)
        return [round(float(v), 6) for v in scores], data.labels.tolist()

    # ------------------------------------------------------------------ stages
    def baseline(self, ctx: RunContext, parts: list[str], seed: int) -> BaselineRun:
        from lesion_studio.training.classifier_trainer import train_classifier

        label = parts_label(parts)
        cfg = self.cls_cfgs[seed]
        inputs = {**self._classifier_inputs(ctx.project, cfg), "data": self._records_hash(ctx.project, parts),
                  "include_excluded": self.cfg.include_excluded, "version": STAGE_VERSION}
        name = f"{self.cfg.name}-baseline-{label}{self._seed_tag(seed)}"

        def fn() -> BaselineRun:
            result, mid = train_classifier(
                ctx.project, cfg, name=name, out_dir=self.out / "models" / f"baseline-{label}{self._seed_tag(seed)}",
                body_parts=parts, include_excluded=self.cfg.include_excluded, progress=self.progress,
                cancel=self.cancel, cache_dir=ctx.cache_dir)
            val_scores, val_labels = self._val_scores(ctx, result.path, parts)
            return BaselineRun(path=str(result.path), sha256=result.sha256, val_auc=result.val_auc, seed=seed,
                               epoch=result.epoch, model_id=mid, model_name=name, val_scores=val_scores,
                               val_labels=val_labels)

        return self.stages.run_as(f"baseline/{label}/seed={seed}", inputs, fn, BaselineRun)

    def generator(self, ctx: RunContext, parts: list[str]) -> GeneratorInfo:
        """The body-part group's generator (found, or trained when missing); its synthesizer is
        kept in ``ctx`` for the synthesis stage."""
        spec = self.cfg.generator
        label = parts_label(parts)
        if spec.kind == "stub":
            synth: Synthesizer = StubPainter()
            ctx.synthesizers[label] = synth
            return self.stages.run_as(f"generator/{label}", {"spec": to_dict(spec)},
                                      lambda: GeneratorInfo.from_dict(synth.identity), GeneratorInfo)
        project = ctx.project
        name = (spec.model or "unit-{parts}").format(parts=label)

        def fn() -> GeneratorInfo:
            from lesion_studio.builtin_models import find_model_or_builtin

            record = find_model_or_builtin(project, name)  # the project's, or a built-in (builtin-...)
            if record is not None:
                if record.kind != "unit":
                    raise LesionStudioError(f"Model {name!r} is a {record.kind} model, not a UNIT generator.")
                return GeneratorInfo(kind="unit", model_id=record.id, model_name=name, sha256=record.sha256,
                                     trained=False)
            from lesion_studio.training.unit_config import preset_config
            from lesion_studio.training.unit_trainer import train_unit

            ucfg = preset_config(spec.train_preset, body_parts=parts, seed=self.cfg.seed, **spec.train_overrides)
            result = train_unit(project, ucfg, name=name, resume=True, progress=self.progress,
                                cancel=self.cancel)
            record = project.model(name)
            return GeneratorInfo(kind="unit", model_id=result.model_id, model_name=name, sha256=record.sha256,
                                 trained=True)

        found = project.find_model(name)
        existing = found.sha256 if found is not None else None
        out = self.stages.run_as(f"generator/{label}", {"spec": to_dict(spec), "parts": parts,
                                                        "existing_sha256": existing}, fn, GeneratorInfo)
        assert out.model_id is not None  # a UNIT generator is always a registered model
        ctx.synthesizers[label] = UnitSynthesizer(project, out.model_id, backend=spec.backend)
        return out

    def quality(self, ctx: RunContext, parts: list[str], gen: GeneratorInfo,
                filters: list[BaselineRun]) -> dict[str, Any] | None:
        """The generator's quality report (realism, lesion signal, drift, KID, localisation with
        the first seed's baseline), cached with the generator and the filter it is measured with.

        The report stays a plain dict: it is ``assess_generator``'s own JSON, shown as it is."""
        if gen.kind != "unit" or not self.cfg.assess_generators:
            return None
        from lesion_studio.evaluate.generator_quality import QualitySettings, assess_generator

        inputs = {"generator": gen.to_dict(), "classifier": filters[0].sha256, "n": self.cfg.synthesis.n,
                  "blend": self.cfg.synthesis.blend, "seed": self.cfg.seed}
        if self.cfg.synthesis.translation != "direct":  # the default stays out: old caches still match
            inputs["translation"] = self.cfg.synthesis.translation

        def fn() -> dict[str, Any]:
            try:
                report = assess_generator(
                    ctx.project, gen.model_id, body_parts=parts, classifier=filters[0].model_id,
                    seed=self.cfg.seed, settings=QualitySettings(n=self.cfg.synthesis.n,
                                                                 blend_mode=self.cfg.synthesis.blend,
                                                                 translation=self.cfg.synthesis.translation),
                    progress=self.progress)
            except LesionStudioError as exc:  # e.g. no validation lesions: the run goes on without it
                log.warning("generator quality report for %s skipped: %s", parts_label(parts), exc)
                return {"skipped": str(exc)}
            return report

        return self.stages.run(f"quality/{parts_label(parts)}", inputs, fn)

    def synthesize(self, ctx: RunContext, target: list[str], source: list[str], gen: GeneratorInfo) -> CandidateBatch:
        from lesion_studio.io.images import save_png

        project = ctx.project
        key = f"{parts_label(target)}<-{parts_label(source)}"
        spec = self.cfg.synthesis
        synthesis = to_dict(spec)
        if synthesis.get("translation") == "direct":
            del synthesis["translation"]  # the default, as before the setting existed: old caches still match
        inputs = {"synthesis": synthesis, "generator": gen.to_dict(), "data": self._records_hash(project, target),
                  "seed": self.cfg.seed}
        batch = f"{self.cfg.name}:{key}:{inputs_hash(inputs)[:8]}"
        synth = ctx.synthesizers[parts_label(source)]

        def fn() -> CandidateBatch:
            sources = [r for r in split_records(project, "train", target, include_excluded=False)
                       if r.label == "normal"]
            if not sources:
                raise LesionStudioError(f"There are no normal training images for {parts_label(target)} "
                                        "to synthesize lesions into.")
            order = np.random.default_rng(self.cfg.seed).permutation(len(sources))
            folder = self.out / "synthetic" / key.replace("<-", "_from_")

            def make(rec: Any, k: int, window: Any, seed: int, rg: Any) -> int:
                cand = synth.synthesize(rg, window, n=spec.n, seed=seed, stochastic=spec.stochastic,
                                        blend_mode=spec.blend, translation=spec.translation)
                path = save_png(folder / f"img{rec.id:06d}-{k}.png", cand.image)
                prov = {**cand.provenance, "source_image_id": rec.id, "source_sha256": rec.sha256,
                        "box": list(cand.window.as_tuple()), "n": cand.n, "seed": cand.seed,
                        "file_sha256": file_sha256(path), "experiment": self.cfg.name, "generator": gen.to_dict()}
                return project.add_synthetic_sample(rec.id, cand.window, n=cand.n, seed=seed, model_id=synth.model_id,
                                                    path=path, batch=batch, provenance=prov)

            ids = self._fill_candidates(project, sources, order, batch, synth, f"synthesizing {key}", make)
            return CandidateBatch(batch=batch, sample_ids=ids)

        return self.stages.run_as(f"synthesize/{key}", inputs, fn, CandidateBatch)

    def score(self, ctx: RunContext, key: str, samples: CandidateBatch, filters: list[BaselineRun]) -> ScoredCandidates:
        """Each seed's baseline scores every candidate; the filter score is their mean. With the
        ONNX backend each sample also stores the peak of the seeds' mean localisation map, so the
        report can say whether the filter's evidence sits on the painted lesion."""
        backend = self.cfg.scoring_backend
        inputs = {"samples": samples.to_dict(), "filters": [f.sha256 for f in filters], "backend": backend,
                  "map_peaks": backend == "onnx", "version": STAGE_VERSION}

        def fn() -> ScoredCandidates:
            from lesion_studio.classifier.data import synthetic_examples

            project = ctx.project
            recs = [project.synthetic_sample(i) for i in samples.sample_ids]
            train_ids = {s.source_image_id for s in recs}
            examples = synthetic_examples(project, recs, train_ids)
            cache = self._cache(ctx)
            items = [(e.key, e.path) for e in examples]
            per_seed, seed_maps = [], []
            for f in filters:
                if backend == "onnx":
                    from lesion_studio.classifier.scoring import scorer_for_weights

                    probs, maps = scorer_for_weights(f.path, project=project, model_id=f.model_id).score_files_with_maps(
                        items, cache=cache, progress=self.progress, cancel=self.cancel)
                    per_seed.append(probs)
                    seed_maps.append(maps)
                else:
                    per_seed.append(self._predict_torch(f.path, cache.stack(items)))
                    seed_maps.append(None)
            scores = np.mean(per_seed, axis=0) if per_seed else np.zeros(0)
            peaks = _mean_map_peaks(seed_maps, lambda i: cache.frame(*items[i]))
            for i, (sid, s) in enumerate(zip(samples.sample_ids, scores, strict=True)):
                project.update_synthetic_sample(sid, score=float(s), map_peak=peaks[i] if peaks else None)
            return ScoredCandidates(
                scores={int(k): float(v) for k, v in zip(samples.sample_ids, scores, strict=True)},
                seed_scores=[[round(float(v), 6) for v in s] for s in per_seed],
                filter_model=filters[0].model_name, filter_models=[f.model_name for f in filters],
                filter_sha256=inputs_hash(inputs["filters"])[:16], backend=backend)

        return self.stages.run_as(f"score/{key}", inputs, fn, ScoredCandidates)

    def _predict_torch(self, path: str | Path, arrays: np.ndarray) -> np.ndarray:
        return self._scores_and_maps(path, arrays, with_maps=False)[0]

    def _scores_and_maps(self, path: str | Path, arrays: np.ndarray, *,
                         with_maps: bool) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The classifier's scores (with the experiment's TTA) and, with ``with_maps``, its
        (probabilities, localisation maps) for the pointing game, from one load of the weights."""
        from lesion_studio.models.drn import load_classifier
        from lesion_studio.training.classifier_trainer import predict, predict_localisation

        model, _ = load_classifier(path, device=self.cls_cfg.device)
        dev = next(model.parameters()).device
        bs = self.cls_cfg.eval_batch_size
        scores = predict(model, arrays, device=dev, batch_size=bs, tta=self.cls_cfg.tta)
        return scores, (predict_localisation(model, arrays, device=dev, batch_size=bs) if with_maps else None)

    def _passing(self, project: Project, scored: ScoredCandidates, cut: float) -> list[int]:
        """The candidates the filter keeps at ``cut``, by id: scored above it, and with
        ``filter.require_map_on_lesion`` also with the filter's map peaking on their lesion."""
        from lesion_studio.evaluate.metrics import above_threshold

        ids = sorted(scored.scores)  # by id (the cache's JSON sorts the keys as text)
        keep = above_threshold(np.array([scored.scores[i] for i in ids], dtype=float), cut)
        kept = [i for i, k in zip(ids, keep, strict=True) if k]
        if self.cfg.filter.require_map_on_lesion:
            kept = [i for i in kept if project.synthetic_sample(i).map_on_lesion() is True]
        return kept

    def augmented(self, ctx: RunContext, target: list[str], key: str, t: float, cut: float,
                  scored: ScoredCandidates, seed: int) -> AugmentedRun:
        from lesion_studio.training.classifier_trainer import train_classifier

        project = ctx.project
        cfg = self.aug_cfgs[seed]
        kept = self._passing(project, scored, cut)
        inputs = {**self._classifier_inputs(project, cfg), "data": self._records_hash(project, target), "kept": kept,
                  "filter": scored.filter_sha256, "t": t, "cut": cut, "version": STAGE_VERSION}
        safe = key.replace("<-", "_from_")
        tag = f"{safe}-t{t:g}{self._seed_tag(seed)}"

        def fn() -> AugmentedRun:
            if not kept:
                return AugmentedRun(t=t, cut=cut, seed=seed, kept=0, kept_ids=[], val_auc=None, skipped=True)
            name = f"{self.cfg.name}-aug-{tag}"
            result, mid = train_classifier(
                project, cfg, name=name, out_dir=self.out / "models" / f"aug-{tag}",
                body_parts=target, include_excluded=self.cfg.include_excluded,
                synthetic=[project.synthetic_sample(i) for i in kept], progress=self.progress,
                cancel=self.cancel, cache_dir=ctx.cache_dir)
            val_scores, val_labels = self._val_scores(ctx, result.path, target)
            return AugmentedRun(t=t, cut=cut, seed=seed, kept=len(kept), kept_ids=kept, val_auc=result.val_auc,
                                skipped=False, path=str(result.path), sha256=result.sha256, model_id=mid,
                                model_name=name, val_scores=val_scores, val_labels=val_labels)

        return self.stages.run_as(f"augmented/{key}/t={t:g}/seed={seed}", inputs, fn, AugmentedRun)

    def copy_paste_candidates(self, ctx: RunContext, target: list[str], key: str) -> CandidateBatch:
        """The copy-paste control's candidates: real training lesion windows of the target body parts
        blended into their normal training images, with the synthesis blend and placement rule
        (the synthesizer's windows), as many as the synthesis stage makes. Each records its
        pasted lesion box (``provenance["lesion_box"]``), which the map head learns from."""
        from lesion_studio.experiment.arms import copy_paste
        from lesion_studio.io import open_radiograph
        from lesion_studio.io.images import save_png

        project = ctx.project
        spec = self.cfg.synthesis
        inputs = {"synthesis": to_dict(spec), "data": self._records_hash(project, target), "seed": self.cfg.seed,
                  "kind": "copy_paste", "version": STAGE_VERSION}
        batch = f"{self.cfg.name}:copy-paste:{key}:{inputs_hash(inputs)[:8]}"
        synth = ctx.synthesizers[key.split("<-")[1]]

        def fn() -> CandidateBatch:
            train = split_records(project, "train", target, include_excluded=False)
            normals = [r for r in train if r.label == "normal"]
            boxes: dict[int, list[tuple[float, float, float, float]]] = {}
            for b in project.boxes():
                boxes.setdefault(b.image_id, []).append(b.box.as_tuple())
            donors = [(r, box) for r in train if r.label == "lesion" for box in boxes.get(r.id, ())]
            if not normals or not donors:
                raise LesionStudioError(f"Copy-paste needs normal training images and boxed training lesions of "
                                        f"{parts_label(target)}.")
            order = np.random.default_rng([self.cfg.seed, 7]).permutation(len(normals))
            folder = self.out / "synthetic" / ("copy_paste_" + key.replace("<-", "_from_"))

            def make(rec: Any, k: int, window: Any, seed: int, target_rg: Any) -> int:
                pick = np.random.default_rng([self.cfg.seed, rec.id, k]).integers(len(donors))
                donor, donor_box = donors[int(pick)]
                w = window.clipped(target_rg.width, target_rg.height)
                image, lesion_box = copy_paste(target_rg.pixels, w.as_ints(), open_radiograph(donor.abs_path).pixels,
                                               donor_box, n=spec.n, blend_mode=spec.blend)
                path = save_png(folder / f"img{rec.id:06d}-{k}.png", image)
                prov = {"kind": "copy_paste", "source_image_id": rec.id, "source_sha256": rec.sha256,
                        "donor_image_id": donor.id, "donor_box": list(donor_box), "box": list(w.as_tuple()),
                        "lesion_box": [round(v, 3) for v in lesion_box], "n": spec.n, "blend": spec.blend,
                        "seed": seed, "file_sha256": file_sha256(path), "experiment": self.cfg.name}
                return project.add_synthetic_sample(rec.id, w, n=spec.n, seed=seed, model_id=None, path=path,
                                                    batch=batch, provenance=prov)

            ids = self._fill_candidates(project, normals, order, batch, synth, f"copy-paste {key}", make)
            return CandidateBatch(batch=batch, sample_ids=ids)

        return self.stages.run_as(f"copy_paste/{key}", inputs, fn, CandidateBatch)

    def _fill_candidates(self, project: Project, sources: list[Any], order: np.ndarray, batch: str,
                         synth: Synthesizer, label: str, make: Any) -> list[int]:
        """The candidate samples of a batch: normal training images in ``order``, each with
        ``candidates_per_image`` windows placed by the synthesizer's rule, up to ``max_candidates``.
        A sample the batch already holds (an interrupted stage) is reused; ``make(record, k,
        window, seed, radiograph)`` makes and records a new one and returns its id. Synthesis and
        the copy-paste control walk the same images and windows this way."""
        from lesion_studio.io import open_radiograph

        spec = self.cfg.synthesis
        done = {(s.source_image_id, s.seed): s.id for s in project.synthetic_samples(batch=batch)}
        total = min(spec.max_candidates, len(sources) * spec.candidates_per_image)
        ids: list[int] = []
        for i in order:
            if len(ids) >= total:
                break
            self.cancel.raise_if_cancelled("Synthesis")
            rec = sources[int(i)]
            windows = synth.windows(project, rec, spec.candidates_per_image,
                                    np.random.default_rng([self.cfg.seed, rec.id]))
            rg = None
            for k, window in enumerate(windows):
                if len(ids) >= total:
                    break
                seed = int(rec.id * 1000 + k)
                if (rec.id, seed) in done:
                    ids.append(done[(rec.id, seed)])
                    continue
                rg = rg or open_radiograph(rec.abs_path)
                ids.append(make(rec, k, window, seed, rg))
                self.progress(ProgressEvent(label, len(ids), total))
        return ids

    def arm_run(self, ctx: RunContext, target: list[str], key: str, arm: str, ratio: float, t: float, cut: float,
                sample_ids: list[int], repeat_ids: list[int], seed: int) -> ArmRun:
        """One arm's classifier for one seed: the training split plus what the arm adds."""
        from lesion_studio.training.classifier_trainer import train_classifier

        project = ctx.project
        cfg = self.aug_cfgs[seed]
        pretrain = (max(1, round(cfg.epochs * self.cfg.augmentation.pretrain_fraction))
                    if arm == "unit_pretrain" else None)
        inputs = {**self._classifier_inputs(project, cfg), "data": self._records_hash(project, target), "arm": arm,
                  "ratio": ratio,
                  "t": t, "cut": cut, "samples": sample_ids, "repeats": repeat_ids, "pretrain_epochs": pretrain,
                  "version": STAGE_VERSION}
        added = len(sample_ids) + len(repeat_ids)
        safe = key.replace("<-", "_from_")
        tag = f"{safe}-{arm}-r{ratio:g}-t{t:g}{self._seed_tag(seed)}"

        def fn() -> ArmRun:
            if not added:
                return ArmRun(arm=arm, ratio=ratio, t=t, cut=cut, seed=seed, added=0, sample_ids=[], repeat_ids=[],
                              val_auc=None, skipped=True)
            name = f"{self.cfg.name}-arm-{tag}"
            result, mid = train_classifier(
                project, cfg, name=name, out_dir=self.out / "models" / f"arm-{tag}", body_parts=target,
                include_excluded=self.cfg.include_excluded,
                synthetic=[project.synthetic_sample(i) for i in sample_ids], repeats=repeat_ids,
                pretrain_epochs=pretrain, progress=self.progress, cancel=self.cancel, cache_dir=ctx.cache_dir)
            val_scores, val_labels = self._val_scores(ctx, result.path, target)
            return ArmRun(arm=arm, ratio=ratio, t=t, cut=cut, seed=seed, added=added, sample_ids=sample_ids,
                          repeat_ids=repeat_ids, val_auc=result.val_auc, skipped=False, path=str(result.path),
                          sha256=result.sha256, model_id=mid, model_name=name, val_scores=val_scores,
                          val_labels=val_labels)

        return self.stages.run_as(f"arm/{key}/{arm}/ratio={ratio:g}/t={t:g}/seed={seed}", inputs, fn, ArmRun)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, ctx: RunContext, rows: list[ModelRow]) -> Evaluation:
        bs = self.cfg.bootstrap
        test_id = "external:" + str(self.test_set_dir or (self.cfg.test_set.folder if self.cfg.test_set else "")) \
            if ctx.test_project else "project-test-split"
        inputs = {"rows": [{k: getattr(r, k) for k in ("target", "type", "sha256", "t", "status")} for r in rows],
                  "bootstrap": to_dict(bs), "test": test_id, "version": STAGE_VERSION,
                  "test_data": inputs_hash(sorted((r.sha256, r.label, r.exclusions, r.body_part)
                                                  for r in ctx.test_source.images(split="test"))),
                  "including": self.cfg.also_evaluate_including, "pointing": 3,
                  "pointing_tolerance_px": self.cfg.pointing_tolerance_px}

        def fn() -> Evaluation:
            evaluations: list[dict[str, Any]] = []
            by_target: dict[str, list[ModelRow]] = {}
            for r in rows:
                by_target.setdefault(r.target, []).append(r)
            cache = self._cache(ctx)
            map_kind = "lesion_map" if self.cls_cfg.head == "image+map" else "cam"
            for trows in by_target.values():
                parts = trows[0].parts
                base = next(r for r in trows if r.type == "Baseline")
                sets = held_out_sets(ctx.test_source, parts, cache, include_excluded=self.cfg.include_excluded,
                                     also_including=self.cfg.also_evaluate_including)
                for line, data in sets.items():
                    localise = line == "headline" and data.masks is not None
                    outputs = {r.id: [self._scores_and_maps(p, data.arrays, with_maps=localise) for p in r.paths]
                               for r in trows if r.paths}
                    scores = {rid: [s for s, _ in out] for rid, out in outputs.items()}
                    examples = data.examples
                    for r in trows:
                        entry = {**evaluate_row(r, base, data, scores, bs), "line": line}
                        if localise and r.id in outputs:
                            pointing = row_pointing(
                                [m for _, m in outputs[r.id] if m is not None], data,
                                lambda i, ex=examples: cache.frame(ex[i].key, ex[i].path),
                                tolerance=self.cfg.pointing_tolerance_px, map_kind=map_kind, bootstrap=bs)
                            if pointing is not None:
                                entry["pointing"] = pointing
                        evaluations.append(entry)
            return Evaluation(test_set=test_id, evaluations=evaluations)

        return self.stages.run_as("evaluate", inputs, fn, Evaluation)

    # ------------------------------------------------------------------ the whole protocol
    def run(self) -> ExperimentResult:
        """Open the project, run (or resume) every stage on it, write the report, close it."""
        from lesion_studio.dataset.type_selection import lesion_type_selection

        t0 = time.perf_counter()
        project = self._open_project()
        try:
            with lesion_type_selection(self.cfg.lesion_types):
                return self._run(project, t0)
        finally:
            project.close()

    def _run(self, project: Project, t0: float) -> ExperimentResult:
        from lesion_studio.experiment.report import write_report

        run_id = project.start_run("experiment", name=self.cfg.name, config=self.cfg.to_dict(), output_dir=self.out)
        test_project: Project | None = None
        try:
            test_project = self._open_test_project(project)
            state = _RunState(RunContext(project, test_project), _PlanTicker(self.plan, self.progress),
                              several_seeds=len(self.seeds) > 1)
            self._train_baselines(state)
            for study in self.cfg.studies:
                state.selections.append(self._study(state, study))
            evaluation = self.evaluate(state.ctx, state.rows)
            state.tick("evaluate")
            results = self._results(state, evaluation, t0)
            files = write_report(self.out, results, project)
            state.tick("report")
            project.update_run(run_id, status="finished", metrics=_run_metrics(evaluation), finished=True)
            return ExperimentResult(self.out, results, self.stages.events, files)
        except BaseException:
            project.update_run(run_id, status="failed", finished=True)
            raise
        finally:
            if test_project is not None:
                test_project.close()

    def _train_baselines(self, state: _RunState) -> None:
        """Each body-part group's baseline, once per seed (a study's target and its transfer source
        alike, each group once), and the Baseline row of each study target."""
        studies = self.cfg.studies
        targets = {parts_label(s.body_parts) for s in studies}
        for study in studies:
            for parts in (study.body_parts, study.transfer_from or study.body_parts):
                label = parts_label(parts)
                if label in state.baselines:
                    continue
                state.baselines[label] = []
                for seed in self.seeds:
                    self.cancel.raise_if_cancelled("The experiment")
                    state.baselines[label].append(self.baseline(state.ctx, parts, seed))
                    state.tick(f"baseline {label}{state.seed_tag(seed)}")
                if label in targets:
                    state.rows.append(self._row(label, parts, "Baseline", state.baselines[label], status="baseline"))

    def _study(self, state: _RunState, study: StudySpec) -> dict[str, Any]:
        """One study, after the baselines: its generator, candidates and their scores, the augmented
        classifiers per threshold and seed (or its arms), the selection among them, the candidates'
        marks and the study's row. Returns the study's entry in the results."""
        ctx = state.ctx
        target, source = study.body_parts, study.transfer_from or study.body_parts
        key = f"{parts_label(target)}<-{parts_label(source)}"
        filters = state.baselines[parts_label(source)]
        gen, quality = self._shared_generator(state, source, filters)
        state.tick(f"generator {parts_label(source)}")
        samples = self.synthesize(ctx, target, source, gen)
        state.tick(f"synthesize {key}")
        scored = self.score(ctx, key, samples, filters)
        state.tick(f"score {key}")
        decision = filter_decision(self.cfg.filter, self.cfg.thresholds, filters)
        if self.cfg.augmentation.arms:
            return self._run_arms(state, study, key, samples, scored, decision, gen, quality)
        trials = self._threshold_trials(state, target, key, scored, decision)
        selection = (select(self.cfg.selection, self.cfg.bootstrap, state.baselines[parts_label(target)], trials)
                     if trials else
                     Selection(compared=[], best_t=None, accepted=False, reason=decision.reason))
        kind = "TL" if study.transfer_from else "Augmented"
        best = trials.get(selection.best_t) if selection.best_t is not None else None
        status = study_status(decision, trials, selection, best)
        _mark_samples(ctx.project, [samples], set(best[0].kept_ids) if best is not None and status == ACCEPTED
                      else set())
        state.rows.append(self._row(parts_label(target), target, kind, best or [], status=status,
                                    transfer_from=parts_label(source) if study.transfer_from else None,
                                    selection_reason=selection.reason))
        return self._study_entry(study, key, kind, gen, quality, samples, scored, decision, selection, status) | {
            "threshold_trials": [
                {"t": t, "cut": runs[0].cut, "kept": runs[0].kept,
                 "val_auc": _mean_or_none([r.val_auc for r in runs]),
                 "val_auc_per_seed": [r.val_auc for r in runs],
                 **selection.compared_at(t)}
                for t, runs in trials.items()]}

    def _study_entry(self, study: StudySpec, key: str, kind: str, gen: GeneratorInfo, quality: dict[str, Any] | None,
                     samples: CandidateBatch, scored: ScoredCandidates, decision: FilterDecision,
                     selection: Selection, status: str) -> dict[str, Any]:
        """What a study's entry in the results holds whether it tries thresholds or arms: its
        generator and candidates, the filter and its decision, and the selection's outcome."""
        return {"study": study.label(), "key": key, "type": kind, "generator": gen.to_dict(),
                "generator_quality": quality,
                "filter_model": scored.filter_model, "filter_models": scored.filter_models,
                "filter": decision.to_dict() | {"kind": self.cfg.filter.kind},
                "candidates": len(samples.sample_ids), "batch": samples.batch,
                "scores": scored.json_scores, "scoring_backend": scored.backend,
                "chosen_t": selection.best_t if status == ACCEPTED else None,
                "best_t": selection.best_t, "status": status,
                "selection_reason": selection.reason,
                "synthetic_folder": str(self.out / "synthetic" / key.replace("<-", "_from_"))}

    def _shared_generator(self, state: _RunState, source: list[str],
                          filters: list[BaselineRun]) -> tuple[GeneratorInfo, dict[str, Any] | None]:
        """The generator of body-part group ``source`` and its quality, made by the first study that
        needs it and shared by the others."""
        label = parts_label(source)
        if label not in state.generators:
            state.generators[label] = self.generator(state.ctx, source)
            state.qualities[label] = self.quality(state.ctx, source, state.generators[label], filters)
        return state.generators[label], state.qualities.get(label)

    def _threshold_trials(self, state: _RunState, target: list[str], key: str, scored: ScoredCandidates,
                          decision: FilterDecision) -> dict[float, list[AugmentedRun]]:
        """The augmented classifiers of a study per threshold, one per seed (none when the filter
        refused; each stage is ticked all the same)."""
        trials: dict[float, list[AugmentedRun]] = {}
        for t in self.cfg.thresholds:
            for seed in self.seeds:
                self.cancel.raise_if_cancelled("The experiment")
                if not decision.refused:
                    trials.setdefault(float(t), []).append(
                        self.augmented(state.ctx, target, key, float(t), decision.cuts[float(t)], scored, seed))
                state.tick(f"augmented {key} t={float(t):g}{state.seed_tag(seed)}")
        return trials

    def _results(self, state: _RunState, evaluation: Evaluation, t0: float) -> dict[str, Any]:
        """What the report is written from (results.json)."""
        return {"name": self.cfg.name, "config": self.cfg.to_dict(), "seeds": self.seeds,
                "classifier_config": to_dict(self.cls_cfg),
                "augmented_classifier_config": to_dict(self.aug_cfg),
                "models": {**{f"baseline {k}{state.seed_tag(v.seed)}":
                              {"name": v.model_name, "sha256": v.sha256, "path": v.path}
                              for k, vs in state.baselines.items() for v in vs},
                           **{f"generator {s['key'].split('<-')[1]}": s["generator"] for s in state.selections}},
                "studies": state.selections, "evaluations": evaluation.evaluations,
                "test_set": evaluation.test_set, "stages": self.stages.events,
                "seconds": round(time.perf_counter() - t0, 1)}

    def _run_arms(self, state: _RunState, study: StudySpec, key: str, samples: CandidateBatch,
                  scored: ScoredCandidates, decision: FilterDecision, gen: GeneratorInfo,
                  quality: dict[str, Any] | None) -> dict[str, Any]:
        """A study with augmentation arms (``experiment/arms.py``): every arm adds the same number of
        lesion images per ratio and threshold, the selection chooses among all of them and the
        baseline on validation, and every arm gets a row compared with the baseline and the controls."""
        target, source = study.body_parts, study.transfer_from or study.body_parts
        label = parts_label(target)
        ctx, baselines = state.ctx, state.baselines
        project = ctx.project
        cp_scored: ScoredCandidates | None = None
        cp_samples: CandidateBatch | None = None
        if "copy_paste" in self.cfg.augmentation.arms:
            cp_samples = self.copy_paste_candidates(ctx, target, key)
            state.tick(f"copy-paste {key}")
            cp_scored = self.score(ctx, f"{key}#copy_paste", cp_samples, baselines[parts_label(source)])
            state.tick(f"score copy-paste {key}")
        trials, counts = self._arm_trials(state, target, key, (scored, cp_scored), decision)
        selection = select(self.cfg.selection, self.cfg.bootstrap, baselines[label], trials)
        best = selection.best_t
        status = REFUSED if decision.refused else (ACCEPTED if selection.accepted else REJECTED)
        if all(r[0].skipped for r in trials.values()):
            status = REFUSED if decision.refused else NOTHING_KEPT
        batches = [b for b in (samples, cp_samples) if b is not None]
        _mark_samples(project, batches, set(trials[best][0].sample_ids) if best is not None and status == ACCEPTED
                      else set())
        state.rows.extend(self._arm_rows(study, trials, selection, status, decision.refused))
        # Read once per batch: whether each sample's stored map peak falls on its lesion.
        on_lesion = {s.id: s.map_on_lesion() for b in batches for s in project.synthetic_samples(batch=b.batch)}
        return self._study_entry(study, key, "Arms", gen, quality, samples, scored, decision, selection, status) | {
            "copy_paste_candidates": len(cp_samples.sample_ids) if cp_samples else 0,
            "arm_counts": counts,
            "map_on_lesion": {"unit": self._map_on_lesion(on_lesion, samples.sample_ids),
                              "copy_paste": self._map_on_lesion(on_lesion, cp_samples.sample_ids
                                                                if cp_samples else [])},
            "threshold_trials": [
                {"t": runs[0].t, "arm": runs[0].arm, "ratio": runs[0].ratio, "cut": runs[0].cut,
                 "kept": runs[0].added, "map_on_lesion": self._map_on_lesion(on_lesion, runs[0].sample_ids),
                 "val_auc": _mean_or_none([r.val_auc for r in runs]),
                 "val_auc_per_seed": [r.val_auc for r in runs],
                 **{k: v for k, v in selection.compared_at_trial(trial).items() if k not in ("t", "kept")},
                 "val_vs_controls": val_vs_controls(self.cfg.selection, self.cfg.bootstrap, baselines[label],
                                                     trials, trial)}
                for trial, runs in trials.items()]}

    def _map_on_lesion(self, on_lesion: dict[int, bool | None], sample_ids: list[int]) -> dict[str, Any] | None:
        """The pointing game on synthetic lesions: how often the filter's stored map peak falls on
        the sample's lesion (its blend core, or the pasted real box; ``on_lesion`` by sample id),
        with a bootstrap CI. None when no sample has a stored peak (the torch backend, an
        oversample arm)."""
        from lesion_studio.evaluate.metrics import pointing_game

        hits = [h for h in (on_lesion.get(i) for i in sample_ids) if h is not None]
        if not hits:
            return None
        return pointing_game(np.array(hits), n_resamples=self.cfg.bootstrap.resamples,
                             confidence=self.cfg.bootstrap.confidence, seed=self.cfg.bootstrap.seed)

    def _arm_trials(self, state: _RunState, target: list[str], key: str,
                    scored: tuple[ScoredCandidates, ScoredCandidates | None],
                    decision: FilterDecision) -> tuple[dict[str, list[ArmRun]], list[dict[str, Any]]]:
        """Every arm's runs per ratio and threshold (each seed), and how many lesions each added.
        ``scored``: the UNIT candidates and the copy-paste ones (None without that arm)."""
        from lesion_studio.experiment.arms import FILTERED, choose, equal_count, lesion_count

        spec = self.cfg.augmentation
        real_lesions = [r.id for r in split_records(state.ctx.project, "train", target,
                                                    include_excluded=self.cfg.include_excluded)
                        if r.label == "lesion"]

        def kept(sc: ScoredCandidates | None, cut: float) -> list[int]:
            if sc is None or decision.refused:
                return []
            return self._passing(state.ctx.project, sc, cut)

        trials: dict[str, list[ArmRun]] = {}
        counts: list[dict[str, Any]] = []
        for ratio in spec.ratios:
            wanted = lesion_count(len(real_lesions), ratio)
            for t in self.cfg.thresholds:
                cut = decision.cuts.get(float(t), float("nan")) if not decision.refused else float("nan")
                pools = {"unit": kept(scored[0], cut), "unit_pretrain": kept(scored[0], cut),
                         "copy_paste": kept(scored[1], cut)}
                count = equal_count(wanted, {a: len(pools[a]) for a in spec.arms if a in FILTERED})
                counts.append({"ratio": ratio, "t": float(t), "wanted": wanted, "added": count,
                               "kept": {a: len(pools[a]) for a in spec.arms if a in FILTERED}})
                for arm in spec.arms:
                    chosen = choose(pools.get(arm, []), count, seed=self.cfg.seed) if arm in FILTERED else []
                    repeats = choose(real_lesions, count, seed=self.cfg.seed) if arm == "oversample" else []
                    trial = f"{arm}|{ratio:g}|{float(t):g}"
                    for seed in self.seeds:
                        self.cancel.raise_if_cancelled("The experiment")
                        trials.setdefault(trial, []).append(self.arm_run(
                            state.ctx, target, key, arm, float(ratio), float(t), cut, chosen, repeats, seed))
                        state.tick(arm_stage_name(arm, key, float(ratio), float(t)) + state.seed_tag(seed))
        return trials, counts

    def _arm_rows(self, study: StudySpec, trials: dict[str, list[ArmRun]], selection: Any, status: str,
                  refused: bool) -> list[ModelRow]:
        """One row per arm and ratio, at the arm's best threshold on validation, naming the
        controls' rows at the same ratio."""
        from lesion_studio.experiment.arms import CONTROLS

        target, source = study.body_parts, study.transfer_from or study.body_parts
        label = parts_label(target)
        by_arm: dict[tuple[str, float], str] = {}
        for trial, runs in trials.items():
            arm, ratio = runs[0].arm, runs[0].ratio
            cur = by_arm.get((arm, ratio))
            if cur is None or val_delta(selection, trial) > val_delta(selection, cur):
                by_arm[(arm, ratio)] = trial
        row_ids = {(a, r): f"{label}|{a} x{r:g}|{parts_label(source) if study.transfer_from else None}"
                   for a, r in by_arm}
        rows = []
        for (arm, ratio), trial in by_arm.items():
            runs = trials[trial]
            controls = [row_ids[(c, ratio)] for c in CONTROLS if c != arm and (c, ratio) in row_ids]
            row_status = status if trial == selection.best_t else (REFUSED if refused else REJECTED)
            base_row = self._row(label, target, f"{arm} x{ratio:g}", runs, status=row_status,
                                 transfer_from=parts_label(source) if study.transfer_from else None,
                                 selection_reason=selection.reason)
            rows.append(ModelRow(**{**base_row.to_dict(), "id": row_ids[(arm, ratio)], "t": runs[0].t,
                                    "cut": runs[0].cut, "augmented_samples": runs[0].added, "controls": controls}))
        return rows

    @staticmethod
    def _row(label: str, parts: list[str], kind: str, runs: list[BaselineRun] | list[AugmentedRun], *, status: str,
             transfer_from: str | None = None, selection_reason: str | None = None) -> ModelRow:
        """One table row: a model type of a study, trained once per seed (``runs``: the seeds' stage outputs)."""
        trained = [r for r in runs if r.trained]
        aug = runs[0] if runs and isinstance(runs[0], AugmentedRun) and kind != "Baseline" else None
        return ModelRow(id=f"{label}|{kind}|{transfer_from}", target=label, parts=parts, type=kind, status=status,
                        transfer_from=transfer_from, selection_reason=selection_reason,
                        t=aug.t if aug else None, cut=aug.cut if aug else None,
                        augmented_samples=aug.kept if aug else 0,
                        seeds=[r.seed for r in trained], paths=[r.path for r in trained if r.path is not None],
                        sha256=[r.sha256 for r in trained if r.sha256 is not None],
                        model_name=[r.model_name for r in trained],
                        val_auc=_mean_or_none([r.val_auc for r in trained]))


def _mean_map_peaks(seed_maps: list[np.ndarray | None],
                    frame_of: Callable[[int], InputFrame]) -> list[tuple[float, float]] | None:
    """The peak (image pixels) of each sample's map averaged over the seeds' filters (sample i's
    map lies over its radiograph through ``frame_of(i)``); None when a filter gave no maps."""
    from lesion_studio.classifier.cam import map_peak

    if not seed_maps or any(m is None for m in seed_maps):
        return None
    mean = np.mean(np.stack(seed_maps), axis=0)  # type: ignore[arg-type]
    return [map_peak(mean[i], frame_of(i)) for i in range(len(mean))]


def _mark_samples(project: Project, batches: list[CandidateBatch], accepted: set[int]) -> None:
    """Mark what entered the study's final training set: the samples of the accepted trial, none
    unless one was accepted; every other candidate of the study's batches is rejected."""
    for batch in batches:
        for sid in batch.sample_ids:
            project.update_synthetic_sample(sid, status="accepted" if sid in accepted else "rejected")


def _mean_or_none(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _run_metrics(evaluation: Evaluation) -> dict[str, Any]:
    """The run's metrics in the project's run list: each evaluation's row and its test AUC."""
    return {"evaluations": [{k: e.get(k) for k in ("target", "type", "line", "t", "status", "augmented_samples")}
                            | {"auc": (e.get("auc") or {}).get("auc")} for e in evaluation.evaluations]}


def run_experiment(config: ExperimentConfig, *, test_set_dir: str | Path | None = None,
                   progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> ExperimentResult:
    """Run (or resume) the protocol; finished stages are read from the cache."""
    try:
        return ExperimentRunner(config, test_set_dir=test_set_dir, progress=progress, cancel=cancel).run()
    except DiskFullError as exc:  # the file that failed was not written; the stages before it are kept
        raise DiskFullError(exc.what, exc.folder, exc.needed, estimated=exc.estimated,
                            written="What it was writing was not written; the stages the experiment finished are "
                                    "kept, and running it again resumes from them.") from exc

