"""The protocol's last step on held-out images: each table row's test AUC pooled over its seeds,
its paired ΔAUC against the baseline and the controls, and the pointing game of its map.

Functions of the rows' test scores and the test images (the runner's ``evaluate`` stage loads the
models, scores the images, caches the outcome, and calls these). See docs/experiments.md, "The
protocol", step 7.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lesion_studio.classifier.data import LabelledSet, image_examples, materialise, split_records
from lesion_studio.classifier.preprocess import InputFrame, PreparedCache
from lesion_studio.errors import LesionStudioError
from lesion_studio.experiment.config import BootstrapSpec
from lesion_studio.experiment.outputs import ModelRow
from lesion_studio.experiment.plan import parts_label
from lesion_studio.store.project import Project


def held_out_sets(project: Project, parts: list[str], cache: PreparedCache, *, include_excluded: bool,
              also_including: list[str]) -> dict[str, LabelledSet]:
    """The test images of ``parts``: the ``headline`` line (with lesion masks for the pointing game)
    and, with ``also_including``, a line that adds the test images excluded only for those reasons
    (for example hardware), so a reader sees what the exclusion changed."""
    records = split_records(project, "test", parts, include_excluded=include_excluded)
    if not records:
        raise LesionStudioError(f"The test set has no reviewed images for {parts_label(parts)}.")
    sets = {"headline": materialise(image_examples(records, project), cache, what="test images", masks=True)}
    extra = set(also_including)
    if extra and not include_excluded:
        more = [r for r in split_records(project, "test", parts, include_excluded=True)
                if r.excluded and set(r.exclusions) <= extra]
        label = "including " + "+".join(sorted(extra))
        sets[label] = materialise(image_examples(records + more), cache, what="test images")
    return sets


def evaluate_row(row: ModelRow, base: ModelRow, data: LabelledSet, scores: dict[str, list[np.ndarray]],
                 bootstrap: BootstrapSpec) -> dict[str, Any]:
    """One row's entry in the results: its test AUC pooled over seeds with a bootstrap CI, per seed
    and as mean ± sd, the ROC of the seed-mean score, the paired ΔAUC against the baseline and
    against each control, and per body part when the test set mixes them. ``scores``: each row's
    test scores per seed, by row id."""
    from lesion_studio.evaluate.metrics import (
        auc,
        bootstrap_auc,
        pooled_bootstrap_auc,
        pooled_paired_delta_auc,
        roc,
        seed_spread,
    )

    opts = {"n_resamples": bootstrap.resamples, "confidence": bootstrap.confidence, "seed": bootstrap.seed}
    entry = {k: getattr(row, k) for k in ("target", "type", "t", "cut", "status", "augmented_samples",
                                          "model_name", "sha256", "val_auc", "transfer_from",
                                          "selection_reason")}
    entry["test"] = data.summary()
    s = scores.get(row.id)
    if s is None:
        entry["auc"] = None
        return entry
    entry["seeds"] = row.seeds
    entry["auc"] = pooled_bootstrap_auc(data.labels, s, **opts).to_dict()
    per_seed = [auc(data.labels, x) for x in s]
    entry["auc_per_seed"] = per_seed
    entry["auc_spread"] = seed_spread(per_seed)
    mean_scores = np.mean(s, axis=0)
    fpr, tpr, _ = roc(data.labels, mean_scores)
    entry["roc"] = {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist(), "of": "mean score over seeds"}
    for control in row.controls:
        if control in scores and control != row.id:
            entry.setdefault("delta_vs_controls", {})[control.split("|")[1].split(" x")[0]] = pooled_paired_delta_auc(
                data.labels, scores[control], s, **opts).to_dict()
    if row is not base:
        b = scores[base.id]
        entry["delta_vs_baseline"] = pooled_paired_delta_auc(data.labels, b, s, **opts).to_dict()
        deltas = [auc(data.labels, x) - auc(data.labels, y) for x, y in zip(s, b, strict=True)]
        entry["delta_per_seed"] = deltas
        entry["delta_spread"] = seed_spread(deltas)
    per_part = {}
    parts_of = np.array([e.body_part for e in data.examples])
    for part in sorted(set(parts_of)):
        m = parts_of == part
        if len(set(data.labels[m])) == 2 and len(set(parts_of)) > 1:
            per_part[part] = bootstrap_auc(data.labels[m], mean_scores[m], **opts).to_dict()
    if per_part:
        entry["per_body_part"] = per_part
    return entry


def row_pointing(localised: list[tuple[np.ndarray, np.ndarray]], data: LabelledSet,
                 frame_of: Callable[[int], InputFrame], *, tolerance: float, map_kind: str,
                 bootstrap: BootstrapSpec) -> dict[str, Any] | None:
    """The pointing game on the test lesions with boxes (``evaluate/pointing.py``), played by the
    row's seed-mean localisation map (the lesion map of a map-head detector, else the CAM) and its
    seed-mean probability (a lesion is detected above 0.5); ``localised``: each seed's
    (probabilities, maps); ``frame_of(i)``: where test image i lies in the model's input."""
    from lesion_studio.evaluate.pointing import pointing_summary

    return pointing_summary(np.mean([p for p, _ in localised], axis=0), np.mean([m for _, m in localised], axis=0),
                            data.examples, frame_of, tolerance=tolerance, map_kind=map_kind,
                            n_resamples=bootstrap.resamples, confidence=bootstrap.confidence, seed=bootstrap.seed)
