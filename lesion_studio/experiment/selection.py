"""The protocol's decisions on validation scores: may the baseline filter, at which score cut, and
which trained trial (a threshold, or an arm) replaces the baseline.

Pure functions of the config's rules and the stages' validation scores (no training, no files):
the runner calls them between its stages, and the tests check each rule on chosen scores. See
docs/experiments.md, "The protocol", steps 4 and 6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lesion_studio.experiment.config import BootstrapSpec, FilterSpec, SelectionSpec
from lesion_studio.experiment.outputs import ArmRun, AugmentedRun, BaselineRun, FilterDecision, Selection

ACCEPTED, REJECTED, REFUSED, NOTHING_KEPT = ("accepted", "rejected on validation", "filter refused",
                                             "no samples kept")


def filter_decision(spec: FilterSpec, thresholds: Sequence[float], filters: Sequence[BaselineRun]) -> FilterDecision:
    """Whether the (seed-mean) baseline may filter, and the score cut each configured t means.

    The filter's validation AUC is that of the seeds' mean score on the generator's body parts;
    quantile thresholds are read off the same mean scores of the real validation lesions.
    """
    from lesion_studio.evaluate.metrics import auc, quantile_threshold

    scores = [f.val_scores for f in filters]
    labels = filters[0].val_labels
    if labels is None or any(s is None for s in scores):
        return FilterDecision(refused=True, val_auc=None, cuts={},
                              reason="the filter's body parts have no validation set with both classes")
    mean = np.mean(np.asarray(scores, dtype=float), axis=0)
    y = np.asarray(labels)
    val_auc = auc(y, mean)
    if val_auc < spec.min_baseline_val_auc:
        return FilterDecision(
            refused=True, val_auc=val_auc, cuts={},
            reason=f"the baseline's validation AUC {val_auc:.3f} is below the floor "
                   f"{spec.min_baseline_val_auc:g} (filter.min_baseline_val_auc): it cannot tell "
                   "lesions from normals well enough to vet synthetic ones")
    if spec.kind == "probability":
        cuts = {float(t): float(t) for t in thresholds}
    else:
        cuts = {float(q): quantile_threshold(mean[y == 1], float(q)) for q in thresholds}
    return FilterDecision(refused=False, val_auc=val_auc, cuts=cuts, reason="")


def select(spec: SelectionSpec, bootstrap: BootstrapSpec, baselines: Sequence[BaselineRun],
           trials: Mapping[Any, Sequence[AugmentedRun] | Sequence[ArmRun]]) -> Selection:
    """Choose among {baseline, each trial} on validation only (see ``SelectionSpec``).

    A trial is a threshold t (its runs :class:`AugmentedRun`) or an arm's ``arm|ratio|t`` (its runs
    :class:`ArmRun`), one run per seed. Returns the per-trial validation comparison, the best trial
    (or None), and whether it is accepted: the best pooled paired ΔAUC must exceed
    ``min_val_delta`` with at most ``max_p`` of the resamples at ΔAUC <= 0.
    """
    from lesion_studio.evaluate.metrics import pooled_paired_delta_auc

    base_scores = [b.val_scores for b in baselines]
    labels = baselines[0].val_labels
    compared: list[dict[str, Any]] = []
    for t, runs in trials.items():
        row: dict[str, Any] = {"t": t, "kept": runs[0].kept}
        if isinstance(runs[0], ArmRun):  # arms: the trial is (arm, ratio, t)
            row = {"t": runs[0].t, "arm": runs[0].arm, "ratio": runs[0].ratio, "kept": runs[0].kept, "trial": t}
        if any(r.skipped for r in runs):
            row["note"] = "no candidate passed the threshold"
        elif labels is None or any(s is None for s in base_scores) or any(r.val_scores is None for r in runs):
            row["note"] = "no validation set with both classes"
        else:
            d = pooled_paired_delta_auc(np.asarray(labels), base_scores, [r.val_scores for r in runs],
                                        n_resamples=spec.resamples, confidence=bootstrap.confidence,
                                        seed=bootstrap.seed)
            row["val_delta"] = d.to_dict()
        compared.append(row)
    valid = [c for c in compared if "val_delta" in c]
    if not valid:
        return Selection(compared=compared, best_t=None, accepted=False,
                         reason=compared[0].get("note", "nothing to compare") if compared else "no thresholds")
    best = max(valid, key=lambda c: c["val_delta"]["delta"])
    d = best["val_delta"]
    accepted = d["delta"] > spec.min_val_delta and d["p_not_better"] <= spec.max_p
    what = f"{best['arm']} ratio={best['ratio']:g} t={best['t']:g}" if "arm" in best else f"t={best['t']:g}"
    reason = (f"{what}: validation ΔAUC {d['delta']:+.3f}, {d['p_not_better']:.0%} of paired resamples at "
              f"ΔAUC <= 0 (accept when ΔAUC > {spec.min_val_delta:g} and that share <= {spec.max_p:.0%})")
    return Selection(compared=compared, best_t=best["trial"] if "arm" in best else best["t"], accepted=accepted,
                     reason=reason)


def val_delta(selection: Selection, trial: str) -> float:
    """A trial's pooled validation ΔAUC against the baseline (−inf when it has none)."""
    d = selection.compared_at_trial(trial).get("val_delta")
    return float(d["delta"]) if d else float("-inf")


def val_vs_controls(spec: SelectionSpec, bootstrap: BootstrapSpec, baselines: Sequence[BaselineRun],
                    trials: Mapping[str, Sequence[ArmRun]], trial: str) -> dict[str, Any]:
    """Pooled paired validation ΔAUC of one arm trial against each control at the same ratio and t
    (``experiment/arms.py``: ``CONTROLS``); empty without validation scores."""
    from lesion_studio.evaluate.metrics import pooled_paired_delta_auc
    from lesion_studio.experiment.arms import CONTROLS

    runs = trials[trial]
    labels = baselines[0].val_labels
    out: dict[str, Any] = {}
    if labels is None or any(r.val_scores is None for r in runs):
        return out
    for control in CONTROLS:
        other = f"{control}|{runs[0].ratio:g}|{runs[0].t:g}"
        if other == trial or other not in trials or any(r.val_scores is None for r in trials[other]):
            continue
        d = pooled_paired_delta_auc(np.asarray(labels), [r.val_scores for r in trials[other]],
                                    [r.val_scores for r in runs], n_resamples=spec.resamples,
                                    confidence=bootstrap.confidence, seed=bootstrap.seed)
        out[control] = d.to_dict()
    return out


def study_status(decision: FilterDecision, trials: Mapping[float, Sequence[AugmentedRun]], selection: Selection,
                 best: Sequence[AugmentedRun] | None) -> str:
    """A threshold study's outcome: the filter refused, nothing kept, rejected or accepted on validation."""
    if decision.refused:
        return REFUSED
    if best is None:
        return NOTHING_KEPT if all(r[0].skipped for r in trials.values()) else REJECTED
    return ACCEPTED if selection.accepted else REJECTED
