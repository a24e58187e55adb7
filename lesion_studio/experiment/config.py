"""Experiment configs (YAML/TOML): what to train, synthesize, filter and evaluate.

Paths in a config file are relative to the file (for a built-in config, shipped read-only in the
package: to the current folder). Without ``output``, results go to the user's data folder. A
``studies`` entry names the target body parts (the classifier is trained and tested on them) and,
for transfer learning, the body parts whose generator and baseline classifier make and filter the
synthetic lesions (``transfer_from``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lesion_studio.config import from_dict, read_config_file, to_dict
from lesion_studio.errors import ConfigError
from lesion_studio.models.layout import check_name
from lesion_studio.paths import default_results_dir, find_experiment_config, is_builtin_resource
from lesion_studio.synthesis.blend import BLEND_MODES, DEFAULT_BLEND, DEFAULT_N
from lesion_studio.synthesis.pipeline import DEFAULT_TRANSLATION, TRANSLATIONS


@dataclass
class ImportSpec:
    """Build (or reuse) a project from a folder of images with labels/boxes CSVs."""

    source: str
    project: str
    labels: str | None = None
    boxes: str | None = None
    split_fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    split_seed: int = 0


@dataclass
class TestSetSpec:
    """An external hold-out: a folder of images with the same labels/boxes CSV format."""

    folder: str
    labels: str | None = None  # default: folder/labels.csv
    boxes: str | None = None  # default: folder/boxes.csv when present


@dataclass
class GeneratorSpec:
    """Where synthetic lesions come from.

    ``unit``: a registered UNIT model (``model``, with ``{parts}`` replaced by the generator's body
    parts joined by '+'), trained with ``train_preset`` when it is missing. ``stub``: a deterministic
    "lesion painter" (a dark soft disc) for tests and protocol checks, no GAN involved.
    """

    kind: Literal["unit", "stub"] = "unit"
    model: str | None = "unit-{parts}"
    train_preset: str = "fast"
    train_overrides: dict[str, Any] = field(default_factory=dict)
    backend: Literal["auto", "onnx", "torch"] = "auto"


@dataclass
class SynthesisSpec:
    candidates_per_image: int = 2
    max_candidates: int = 400
    n: float = DEFAULT_N  # the blending exponent (the packaged configs pin the n they were measured with)
    stochastic: bool = False
    #: ``paper`` (the paper's α blend), ``matched`` (the translation's brightness offset outside the
    #: lesion core removed first) or ``moments`` (its mean and spread there matched to the source's
    #: first): ``synthesis/blend.py`` BLEND_MODES, where DEFAULT_BLEND says why it is the default.
    blend: Literal[BLEND_MODES] = DEFAULT_BLEND  # type: ignore[valid-type]
    #: ``direct`` (the paper: the window becomes the resized translation) or ``residual`` (the source
    #: plus the translation's residual over the normal decoder's reconstruction;
    #: ``synthesis/pipeline.py`` TRANSLATIONS says why).
    translation: Literal[TRANSLATIONS] = DEFAULT_TRANSLATION  # type: ignore[valid-type]


@dataclass
class StudySpec:
    body_parts: list[str]
    transfer_from: list[str] | None = None
    name: str = ""

    def label(self) -> str:
        return self.name or "+".join(self.body_parts)


@dataclass
class FilterSpec:
    """How the baseline filters synthetic candidates, and when it is not trusted to.

    ``thresholds`` (on the experiment) are read as ``kind``:

    - ``lesion_quantile`` (default): keep a candidate scored above the q-quantile of the filter's
      scores on the *real validation lesions* of the generator's body parts. The same q means the
      same thing for a strong and a weak baseline.
    - ``probability``: the paper's raw cut on the lesion probability.

    ``min_baseline_val_auc``: below this validation AUC the baseline is close to a coin flip, so
    the runner refuses to filter with it and reports the study as not augmented.

    ``require_map_on_lesion``: keep a candidate only when, besides its score, the filter's
    localisation map peaks on the candidate's own lesion (its blend core, or a copy-paste's pasted
    box; ``SyntheticSample.map_on_lesion``). On FracAtlas the filter's map peaked on the lesion for
    only 6–17 % of the candidates it kept: the rest were kept for something elsewhere in the image,
    so they teach the detector a lesion label where it sees none. Needs the ONNX scoring backend
    (which stores the map's peak with each score).
    """

    kind: Literal["lesion_quantile", "probability"] = "lesion_quantile"
    min_baseline_val_auc: float = 0.6
    require_map_on_lesion: bool = False


@dataclass
class SelectionSpec:
    """When an augmented model may replace the baseline (decided on validation only).

    The threshold with the best pooled validation ΔAUC (mean over seeds, paired on the same
    validation images) is accepted when that ΔAUC exceeds ``min_val_delta`` *and* a paired
    bootstrap on the validation images puts at most ``max_p`` of its resamples at ΔAUC <= 0.
    Otherwise the study reports "augmentation rejected on validation" and the baseline stands.
    """

    min_val_delta: float = 0.0
    max_p: float = 0.2
    resamples: int = 2000


@dataclass
class AugmentationSpec:
    """The augmentation arms and their controls (``experiment/arms.py``).

    Empty ``arms`` is the paper's protocol: one augmented model per threshold with every candidate
    the filter keeps. With arms, each arm adds the same number of lesion images, ``ratio`` per real
    training lesion, for each ratio; the selection on validation chooses among all arms and the
    baseline, and every arm is reported against the baseline and against the controls
    (``oversample``, ``copy_paste``). ``unit_pretrain`` uses the synthetic images in the first
    ``pretrain_fraction`` of the epochs, then fine-tunes on the real images.
    """

    arms: list[str] = field(default_factory=list)
    ratios: list[float] = field(default_factory=lambda: [0.25, 1.0])
    pretrain_fraction: float = 0.5

    def __post_init__(self) -> None:
        from lesion_studio.experiment.arms import ARMS

        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ConfigError(f"augmentation.arms: unknown arm {unknown[0]!r}; choose from {', '.join(ARMS)}.")
        if len(set(self.arms)) != len(self.arms):
            raise ConfigError("augmentation.arms lists an arm twice.")
        if self.arms and (not self.ratios or any(not 0 < r <= 10 for r in self.ratios)):
            raise ConfigError("augmentation.ratios must be a non-empty list of numbers in (0, 10].")
        if not 0 < self.pretrain_fraction < 1:
            raise ConfigError("augmentation.pretrain_fraction must lie in (0, 1).")


@dataclass
class BootstrapSpec:
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class ExperimentConfig:
    name: str
    studies: list[StudySpec]
    project: str | None = None
    import_spec: ImportSpec | None = None
    output: str = "results"  # a file without one: <user data folder>/results/<name>
    test_set: TestSetSpec | None = None
    seed: int = 0
    #: Every classifier (baseline and augmented) is trained once per seed; generators and the
    #: synthetic candidates are made once (with ``seed``) and shared by all seeds.
    seeds: list[int] | None = None
    include_excluded: bool = False
    #: Exclusion reasons whose images are added back for a second evaluation line (e.g. hardware).
    also_evaluate_including: list[str] = field(default_factory=list)
    classifier: dict[str, Any] = field(default_factory=lambda: {"preset": "cpu"})
    augmented_classifier: dict[str, Any] = field(default_factory=dict)  # overrides for augmented runs
    generator: GeneratorSpec = field(default_factory=GeneratorSpec)
    synthesis: SynthesisSpec = field(default_factory=SynthesisSpec)
    augmentation: AugmentationSpec = field(default_factory=AugmentationSpec)
    thresholds: list[float] = field(default_factory=lambda: [0.25, 0.5])
    filter: FilterSpec = field(default_factory=FilterSpec)
    selection: SelectionSpec = field(default_factory=SelectionSpec)
    bootstrap: BootstrapSpec = field(default_factory=BootstrapSpec)
    scoring_backend: Literal["onnx", "torch"] = "onnx"
    #: Only lesion images with a box of one of these types are lesion examples (others leave the
    #: study; normal images stay). None: every lesion image. See dataset/type_selection.py.
    lesion_types: list[str] | None = None
    #: Measure each UNIT generator with the quality report (evaluate/generator_quality.py) on
    #: validation patches it never trained on; the report goes into results.json and table.md.
    assess_generators: bool = True
    #: The pointing game's tolerance, in the radiograph's own pixels: a map peak this close to a
    #: radiologist's box counts as pointing at the lesion (15: the pointing game's convention,
    #: ``classifier/cam.py``). The report gives the strict rate (inside a box) beside it.
    pointing_tolerance_px: float = 15.0
    base_dir: str = "."  # filled in from the config file's folder

    def __post_init__(self) -> None:
        if not self.studies:
            raise ConfigError("An experiment needs at least one entry under 'studies'.")
        if (self.project is None) == (self.import_spec is None):
            raise ConfigError("Give exactly one of 'project' (a project folder, or 'demo') and 'import_spec'.")
        if not self.thresholds or any(not 0 <= t < 1 for t in self.thresholds):
            raise ConfigError("'thresholds' must be a non-empty list of numbers in [0, 1).")
        if self.filter.require_map_on_lesion and self.scoring_backend != "onnx":
            raise ConfigError("filter.require_map_on_lesion needs scoring_backend: onnx (it stores the map's peak "
                              "with each candidate's score).")
        if not 0 <= self.pointing_tolerance_px <= 1000:
            raise ConfigError("'pointing_tolerance_px' must be a number of pixels in [0, 1000].")
        for s in self.studies:
            if not s.body_parts:
                raise ConfigError("Every study needs 'body_parts'.")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError("'seeds' must be a non-empty list of distinct integers.")
        if not 0 <= self.filter.min_baseline_val_auc < 1:
            raise ConfigError("'filter.min_baseline_val_auc' must lie in [0, 1).")
        if not 0 < self.selection.max_p <= 1:
            raise ConfigError("'selection.max_p' must lie in (0, 1].")
        if self.lesion_types is not None:
            from lesion_studio.errors import LesionStudioError
            from lesion_studio.store.lesion_types import check_type

            if not self.lesion_types:
                raise ConfigError("'lesion_types' must name at least one lesion type (or be left out).")
            try:
                self.lesion_types = [check_type(t) for t in self.lesion_types]
            except LesionStudioError as exc:
                raise ConfigError(f"'lesion_types': {exc}") from exc
        for augmented in (False, True):  # validate early: a bad key fails before any work starts
            if self.classifier_config(augmented).train_fraction < 1:
                raise ConfigError("classifier.train_fraction is for single classifiers (a learning curve: "
                                  "lesion-studio train-classifier --train-fraction); an experiment's baseline, "
                                  "controls and synthetic arms all train on the whole training split.")

    @property
    def training_seeds(self) -> list[int]:
        """The seeds each classifier is trained with (``[seed]`` when ``seeds`` is not given)."""
        return list(self.seeds) if self.seeds else [self.seed]

    def path(self, value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    def classifier_config(self, augmented: bool = False, seed: int | None = None) -> Any:
        from lesion_studio.classifier.config import ClassifierConfig, preset

        data = dict(self.classifier)
        if augmented:
            data.update(self.augmented_classifier)
        if seed is None:
            data.setdefault("seed", self.seed)
        else:
            data["seed"] = seed
        name = data.pop("preset", None)
        if name is not None:
            return preset(str(name), **data)
        return ClassifierConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def read_experiment_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's settings, with those of the config it ``extends`` underneath.

    ``extends: fracatlas-arms`` (a built-in config's name, or a file path relative to this one)
    starts from that config: a variant of a study states only what it changes, so the two cannot
    drift apart. Mappings merge key by key (``classifier: {epochs: 25}`` keeps the other classifier
    settings); anything else replaces the base's value. A base may extend another.
    """
    data = read_config_file(path)
    ref = data.pop("extends", None)
    if ref is None:
        return data
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(f"{path.name}: 'extends' must name a config (a built-in name or a file path).")
    local = path.parent / ref
    base = local if local.is_file() else find_experiment_config(ref)
    seen = (*_seen, path.resolve())
    if base.resolve() in seen:
        raise ConfigError(f"{path.name}: 'extends: {ref}' comes back to a config it started from.")
    return merge_settings(read_experiment_file(base, seen), data)


def merge_settings(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` on top: nested mappings merged key by key, other values replaced."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_experiment_config(path: str | Path, **overrides: Any) -> ExperimentConfig:
    """A config file (with the config it ``extends`` underneath), with ``overrides`` on top.
    Overriding ``project`` replaces the config's own data source (its ``import_spec`` too): the
    protocol then runs on that project."""
    path = Path(path)
    data = read_experiment_file(path)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "project" in overrides:
        data.pop("import_spec", None)
    data.update(overrides)
    # A built-in config lives in the read-only package: its relative paths are the user's current
    # folder's, and its results go to the user's data folder unless it or --output names one.
    builtin = is_builtin_resource(path)
    data.setdefault("base_dir", str(Path.cwd() if builtin else path.resolve().parent))
    if "name" in data:  # it names the models and folders the experiment makes
        check_name(str(data["name"]), "experiment name")
    if "output" not in data and "name" in data:
        data["output"] = str(default_results_dir(str(data["name"])))
    return from_dict(ExperimentConfig, data, where=path.name)
