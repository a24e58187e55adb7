"""The experiment's stages in run order, computed from the config alone (no torch, no project).

The runner reports progress by walking this plan, and the Experiments panel lists the same plan
before a run starts, so the two can never disagree on what is coming or on the step count.
"""

from __future__ import annotations

from dataclasses import dataclass

from lesion_studio.experiment.config import ExperimentConfig


def parts_label(parts: list[str]) -> str:
    return "+".join(parts)


def arm_stage_name(arm: str, key: str, ratio: float, t: float) -> str:
    """The progress name of one arm's classifier (before the seed tag)."""
    return f"{arm} {key} ratio={ratio:g} t={t:g}"


@dataclass(frozen=True)
class PlannedStage:
    """One progress step: ``kind`` is baseline, generator, synthesize, score, augmented, evaluate or report."""

    kind: str
    name: str


@dataclass(frozen=True)
class ExperimentPlan:
    stages: tuple[PlannedStage, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def __len__(self) -> int:
        return len(self.stages)

    @classmethod
    def from_config(cls, cfg: ExperimentConfig) -> ExperimentPlan:
        seeds = cfg.training_seeds
        tag = (lambda s: f" seed {s}") if len(seeds) > 1 else (lambda s: "")
        stages: list[PlannedStage] = []
        seen: set[str] = set()
        for study in cfg.studies:
            for parts in (study.body_parts, study.transfer_from or study.body_parts):
                label = parts_label(parts)
                if label in seen:
                    continue
                seen.add(label)
                stages += [PlannedStage("baseline", f"baseline {label}{tag(s)}") for s in seeds]
        for study in cfg.studies:
            target, source = study.body_parts, study.transfer_from or study.body_parts
            key = f"{parts_label(target)}<-{parts_label(source)}"
            stages += [PlannedStage("generator", f"generator {parts_label(source)}"),
                       PlannedStage("synthesize", f"synthesize {key}"), PlannedStage("score", f"score {key}")]
            arms = cfg.augmentation.arms
            if not arms:
                stages += [PlannedStage("augmented", f"augmented {key} t={float(t):g}{tag(s)}")
                           for t in cfg.thresholds for s in seeds]
                continue
            if "copy_paste" in arms:
                stages += [PlannedStage("synthesize", f"copy-paste {key}"),
                           PlannedStage("score", f"score copy-paste {key}")]
            stages += [PlannedStage("augmented", arm_stage_name(arm, key, r, float(t)) + tag(s))
                       for r in cfg.augmentation.ratios for t in cfg.thresholds for arm in arms for s in seeds]
        stages += [PlannedStage("evaluate", "evaluate"), PlannedStage("report", "report")]
        return cls(tuple(stages))
