"""What defines a classifier training run: the config, its presets and the DRN names (no torch).

These are plain facts that torch-free code needs too (the experiment planner, the GUI's forms, the
ONNX scorer's preprocessing), so they live here rather than in the trainer, which imports torch.
``models/drn.py`` builds the networks named in :data:`DRN_ARCHITECTURES` (``models.specs.DRN_ARCHS``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from lesion_studio.classifier.preprocess import Preprocessing
from lesion_studio.config import from_dict, to_dict
from lesion_studio.errors import ConfigError
from lesion_studio.models.specs import DRN_ARCHS

#: The DRN variants ``models.drn.build_drn`` can build (paper: DRN-C-26; D-22 and the tiny ones
#: are cheaper members of the same family for CPUs and tests), named once in ``models/specs.py``.
DRN_ARCHITECTURES = DRN_ARCHS
#: Epochs of a warm start unless a config says otherwise (``warm_start_epochs``).
WARM_START_EPOCHS = 6


@dataclass
class ClassifierConfig:
    """Everything that defines a classifier training run (saved next to every checkpoint)."""

    arch: str = "drn_d_22"
    input_size: int = 160
    #: Crop to the exposed body region before resizing (FracAtlas-style images have wide empty
    #: borders; cropping spends the input's pixels on bone).
    crop_to_body: bool = False
    epochs: int = 12
    batch_size: int = 16
    lr: float = 1e-3
    #: ``cosine``: one linear warm-up epoch, then cosine decay to 1% of ``lr`` by the last epoch.
    schedule: Literal["constant", "cosine"] = "constant"
    weight_decay: float = 1e-4  # L2 regularisation (the paper's)
    optimizer: Literal["adam", "sgd"] = "adam"
    balance: Literal["sampler", "loss", "none"] = "sampler"
    augment: bool = True
    rotation_deg: float = 10.0
    translate: float = 0.05
    scale_min: float = 0.9
    scale_max: float = 1.1
    hflip: bool = True
    #: Exposure augmentation: a random gamma in [1/(1 + j), 1 + j] and contrast in [1 - j/2,
    #: 1 + j/2] per training image (``classifier/augment.py: random_intensity``); 0 turns it off.
    intensity_jitter: float = 0.0
    select: Literal["best_val_auc", "last"] = "best_val_auc"
    #: Test-time augmentation: ``hflip`` averages the probabilities of the image and its mirror
    #: image (left and right limbs are mirror images; the training augmentation flips too). Used
    #: for validation (and so for choosing the epoch), scoring and evaluation, and baked into the
    #: ONNX export, so every path scores alike.
    tta: Literal["none", "hflip"] = "none"
    #: ``image``: the paper's DRN, image labels only. ``image+map``: a lesion-map head learns from
    #: the lesion boxes too (boxes of real images, and the box each synthetic sample carries), and
    #: the image score combines both heads (``models/drn.py``: ``combine_logits``).
    head: Literal["image", "image+map"] = "image"
    #: Weight of the lesion-map loss beside the image loss (``head: image+map``).
    map_weight: float = 1.0
    #: Train on random ``train_crop``-pixel squares of the ``input_size`` input instead of the whole
    #: input (0: the whole input). Scoring always sees the whole input. With a map head, crops buy
    #: resolution at the cost of a crop: a 128 px crop of a 256 px input costs what a 128 px input
    #: does, at twice the detail. A crop's label comes from the boxes (lesion when it holds part of
    #: one); a lesion image without boxes keeps its label. Needs ``head: image+map``.
    train_crop: int = 0
    #: Share of crops of a boxed lesion image that are placed over one of its boxes (the rest are
    #: placed at random, like crops of normal images).
    crop_lesion_prob: float = 0.7
    #: Warm start (domain pretraining): before training on its own images, the network first
    #: trains for ``warm_start_epochs`` on the training split of these body parts (``[all]``: every
    #: body part), and starts from those weights. Why: a study of one body part has a few hundred
    #: training images, while a project holds several times as many radiographs of other bones
    #: whose fractures look alike; no ImageNet weights can be downloaded here, so the project's own
    #: radiographs are the pretraining set. Only training-split images are used (validation and
    #: test stay held out), and the warm-start model is cached in the project, shared by every
    #: seed-equal run that asks for it (the baseline and every augmentation arm start alike).
    warm_start_parts: list[str] = field(default_factory=list)
    warm_start_epochs: int = WARM_START_EPOCHS
    #: ``ema``: validate, select and save an exponential moving average of the weights rather than
    #: the weights of the last step (``none``). Why: on a few hundred radiographs the validation
    #: AUC jumps by a few points from epoch to epoch, and averaging models of different seeds
    #: raised it (docs/experiments.md); an average over the steps of one run is the same idea at no
    #: extra training cost (Polyak averaging; ``torch.optim.swa_utils``). Batch-norm statistics are
    #: averaged too.
    weight_average: Literal["none", "ema"] = "none"
    #: The average's half-life in epochs: after this many epochs a step's weight in it has halved
    #: (per step, decay = 0.5 ** (1 / (half-life x steps per epoch))), so it means the same on a
    #: hand study and on a whole project.
    ema_half_life: float = 2.0
    #: Train on this share of the real training images (a seeded draw, the same share of lesion and
    #: of normal images; validation and test are untouched). Why: a learning curve (the same
    #: detector on 25, 50, 75 and 100 % of the images) says whether labelling more radiographs
    #: would help, the question behind every augmentation. Draws per epoch follow the smaller set,
    #: so raise ``epochs`` by 1/share to train as many steps as on all of it.
    train_fraction: float = 1.0
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        if self.arch not in DRN_ARCHITECTURES:
            raise ConfigError(f"classifier.arch: unknown architecture {self.arch!r}; "
                              f"choose one of {', '.join(DRN_ARCHITECTURES)}.")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"classifier.{name} must be at least 1.")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError("classifier.lr must be positive and weight_decay non-negative.")
        if self.tta not in ("none", "hflip"):
            raise ConfigError(f"classifier.tta must be none or hflip, not {self.tta!r}.")
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError("classifier.scale_min/scale_max must satisfy 0 < min <= max.")
        if self.head not in ("image", "image+map"):
            raise ConfigError(f"classifier.head must be image or image+map, not {self.head!r}.")
        if self.map_weight < 0:
            raise ConfigError("classifier.map_weight must be non-negative.")
        if self.train_crop and not 16 <= self.train_crop <= self.input_size:
            raise ConfigError(f"classifier.train_crop must be 0 (whole input) or 16..input_size "
                              f"({self.input_size}), not {self.train_crop}.")
        if self.train_crop and self.train_crop < self.input_size and self.head != "image+map":
            raise ConfigError("classifier.train_crop needs head: image+map (a crop's label comes from the boxes).")
        if not 0 <= self.crop_lesion_prob <= 1:
            raise ConfigError("classifier.crop_lesion_prob must lie in [0, 1].")
        if not all(isinstance(p, str) and p.strip() for p in self.warm_start_parts):
            raise ConfigError("classifier.warm_start_parts must be a list of body parts (or [all]).")
        if self.warm_start_epochs < 1:
            raise ConfigError("classifier.warm_start_epochs must be at least 1.")
        if not 0 <= self.intensity_jitter <= 1:
            raise ConfigError("classifier.intensity_jitter must lie in [0, 1].")
        if self.weight_average not in ("none", "ema"):
            raise ConfigError(f"classifier.weight_average must be none or ema, not {self.weight_average!r}.")
        if not self.ema_half_life > 0:
            raise ConfigError("classifier.ema_half_life must be positive (epochs).")
        if not 0 < self.train_fraction <= 1:
            raise ConfigError("classifier.train_fraction must lie in (0, 1] (a share of the training images).")
        if self.train_fraction < 1 and self.warm_start_parts:
            raise ConfigError("classifier.train_fraction cannot be combined with a warm start: the warm start "
                              "would pretrain on the training images the share leaves out.")
        self.preprocessing  # noqa: B018 - validates the size

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.input_size, crop_to_body=self.crop_to_body)

    @property
    def warm_start_body_parts(self) -> list[str] | None:
        """The body parts the warm start trains on, None for every body part."""
        parts = [p.strip() for p in self.warm_start_parts]
        return None if any(p.lower() == "all" for p in parts) else parts

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "classifier") -> ClassifierConfig:
        return from_dict(cls, data, where=where)

    def key_dict(self) -> dict[str, Any]:
        """The settings as a stage-cache key: every field, except the optional settings that are
        switched off (:data:`_OPTIONAL_SETTINGS`), so runs cached before they existed still match."""
        return _drop_unused_options(to_dict(self))

    def training_hash(self) -> str:
        """Identity of the settings that change the weights (device/amp/eval batch do not count)."""
        d = to_dict(self)
        for k in ("device", "amp", "eval_batch_size"):
            d.pop(k)
        for k, default in (("crop_to_body", False), ("schedule", "constant"), ("tta", "none"), ("head", "image"),
                           ("map_weight", 1.0), ("train_crop", 0), ("crop_lesion_prob", 0.7)):  # older runs resume
            # (these stay in key_dict, which cached stages already hold them in: not _OPTIONAL_SETTINGS)
            if d.get(k) == default:
                d.pop(k)
        _drop_unused_options(d)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: Options added after runs had been cached and trained, each as (switch, its "off" value, the
#: settings that mean something only when it is on). While a switch is off, the option is left
#: out of the stage-cache key and the training hash, so those runs still match and resume.
_OPTIONAL_SETTINGS: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("warm_start_parts", [], ("warm_start_epochs",)),
    ("weight_average", "none", ("ema_half_life",)),
    ("intensity_jitter", 0.0, ()),
    ("train_fraction", 1.0, ()),
)


def _drop_unused_options(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` (a config as a dict) without the optional settings that are switched off."""
    for switch, off, dependents in _OPTIONAL_SETTINGS:
        if d.get(switch) == off:
            for k in (switch, *dependents):
                d.pop(k, None)
    return d


#: The detector that learns from the boxes, as measured best on a 2-core CPU (docs/experiments.md,
#: "Is it the data or the steps?": FracAtlas hand, validation AUC 0.745 +- 0.007 over 3 seeds).
_CPU_MAP = {"arch": "drn_d_22_half", "input_size": 128, "crop_to_body": True, "epochs": 25, "batch_size": 16,
            "schedule": "cosine", "head": "image+map"}

#: Ready-made settings: ``tiny`` is for tests and the demo (seconds on CPU); ``cpu`` is the paper's
#: image-level DRN sized for a 2-core workstation; ``cpu-map`` is the box-supervised detector with
#: the schedule that measured best on 2 cores (11-13.5 min a FracAtlas hand seed on the 2-core host
#: of 2026-12-06; hosts differ by 1.5x, docs/performance.md); ``cpu-quick``
#: is the same detector for quick iterations (a narrower network, 112 px training crops and 12
#: epochs: about a third of ``cpu-map``'s time, 4.5 min a hand seed, at a lower validation AUC;
#: fewer epochs or smaller crops lose more, docs/performance.md);
#: ``gpu`` is paper scale (the paper's DRN-C-26 at 512 px) with the lesion-map head, the detector
#: that learns from the boxes.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"arch": "drn_d_tiny", "input_size": 96, "epochs": 20, "batch_size": 16, "lr": 5e-3},
    "cpu": {"arch": "drn_d_22", "input_size": 160, "epochs": 12, "batch_size": 16},
    "cpu-map": _CPU_MAP,
    "cpu-quick": {**_CPU_MAP, "arch": "drn_d_22_slim", "epochs": 12, "train_crop_share": 0.875},  # 112 of 128 px
    "gpu": {"arch": "drn_c_26", "input_size": 512, "crop_to_body": True, "epochs": 40, "batch_size": 32,
            "lr": 5e-4, "schedule": "cosine", "head": "image+map"},
}


def preset(name: str, **overrides: Any) -> ClassifierConfig:
    """The preset's settings with ``overrides``.

    A preset's training crop is a share of its input (``train_crop_share``), so that a form or a
    command that changes the input size keeps a crop that fits it (``cpu-quick`` at 96 px crops
    80 px squares, not an impossible 112), rounded to the network's output stride of 8 px.
    """
    if name not in PRESETS:
        raise ConfigError(f"Unknown classifier preset {name!r}; choose one of {', '.join(PRESETS)}.")
    settings = {**PRESETS[name], **overrides}
    share = settings.pop("train_crop_share", None)
    if share is not None and "train_crop" not in overrides:
        size = int(settings.get("input_size", ClassifierConfig.input_size))
        settings["train_crop"] = min(size, max(16, 8 * round(share * size / 8)))
    return ClassifierConfig.from_dict(settings)
