"""The settings of a UNIT training run and its presets (no torch: the GUI and planners read them).

:mod:`lesion_studio.training.unit_trainer` runs a config; this module only defines and validates
it, so choosing a preset or checking a config file never loads torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any, Literal

from lesion_studio.config import from_dict, read_config_file
from lesion_studio.errors import ConfigError
from lesion_studio.models.specs import DIS_NORMS, UNIT_ARCHS, UnitArch, unit_fast

#: What ``diff_augment`` may name; :mod:`lesion_studio.training.diffaugment` implements each.
DIFF_AUGMENT_POLICIES = ("brightness", "contrast", "translation", "cutout")
#: What a resumed run takes from the request that resumes it rather than from its saved config: the
#: run's length and how it runs and reports. Everything else (the networks, data, losses) is the
#: saved run's own.
RUN_FIELDS = ("iterations", "device", "cpu_threads", "sample_every", "checkpoint_every", "assess", "compile_mode",
              "cpu_bf16")
#: What ``compile_mode`` may name: "none" or a torch.compile mode.
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


#: The architecture fields of a UNIT config: those of :class:`UnitArch`, but the input channels
#: (radiographs are grey, always 1).
ARCH_FIELDS = tuple(f.name for f in fields(UnitArch) if f.name != "in_channels")


def _arch_settings(default: UnitArch) -> type:
    """A dataclass holding :data:`ARCH_FIELDS` as flat settings, defaulting to ``default``'s values:
    the config files stay flat (``base_channels: 16``) while the fields are UnitArch's own."""
    return make_dataclass("UnitArchSettings", [(name, int, field(default=getattr(default, name)))
                                               for name in ARCH_FIELDS])


@dataclass
class UnitTrainConfig(_arch_settings(unit_fast())):  # type: ignore[misc]
    """Every setting of a UNIT run. Saved as ``config.yaml`` next to every checkpoint. The
    architecture settings come first, from :class:`UnitArch` (the ``fast`` network by default)."""

    preset: str = "fast"
    # data
    resolution: int = 128
    body_parts: list[str] = field(default_factory=list)  # empty: every body part
    splits: list[str] = field(default_factory=lambda: ["train", "unassigned"])  # never val/test
    side_factors: tuple[float, float] = (1.5, 3.0)
    jitter: float = 0.5
    variants: int = 4
    normal_source: str = "both"
    #: "air": normal windows hold as much air as the lesion windows do (patches/sampling.py says
    #: why); "tissue": at least 70% tissue, as models before it were trained.
    normal_match: str = "air"
    # optimisation (UNIT defaults)
    iterations: int = 20000
    batch_size: int = 1
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    lr_step: int = 100000
    lr_gamma: float = 0.5
    gan_w: float = 1.0
    recon_w: float = 10.0
    kl_w: float = 0.01
    cycle_w: float = 10.0
    cycle_kl_w: float = 0.01
    #: DiffAugment policies for the discriminators' inputs, comma-separated (``training/diffaugment.py``):
    #: brightness, contrast, translation, cutout. Empty: the paper's UNIT, no augmentation.
    diff_augment: str = ""
    #: "spectral": spectral normalisation of every discriminator conv (models/specs.py
    #: ``DIS_NORMS``); "none": the paper's UNIT.
    dis_norm: str = "none"
    # run
    seed: int = 0
    device: str = "auto"
    cpu_threads: int = 0  # 0: torch's default; 1 is fastest for tiny models on a busy machine
    mixed_precision: bool = True
    # torch.compile for the generator and discriminator passes: "none", or a torch.compile mode
    # ("default", "reduce-overhead" = CUDA graphs, "max-autotune"). For GPUs, where batch-1 UNIT is
    # bound by kernel launches; on the CPU compiling costs minutes that a short run never earns back.
    compile_mode: str = "none"
    #: bfloat16 autocast on the CPU (convolutions in bf16, losses and Adam in fp32): true, false or
    #: "auto" = on where the CPU computes bf16 natively (AMX / AVX512-BF16; training/common.py
    #: ``cpu_has_native_bf16``), where it is 1.3-1.6x faster; elsewhere bf16 is emulated and slower.
    #: FracAtlas hand generators trained both ways scored the same (docs/performance.md).
    cpu_bf16: bool | Literal["auto"] = "auto"
    sample_every: int = 250
    checkpoint_every: int = 1000
    export_onnx: bool = True
    assess: bool = True  # the cheap generator quality report at every checkpoint (needs a val split)

    def __post_init__(self) -> None:
        try:
            arch = self.arch()
        except ValueError as exc:
            raise ConfigError(f"UNIT config: {exc}.") from exc
        f = arch.downsample_factor
        if self.resolution % f:
            raise ConfigError(f"UNIT config: resolution {self.resolution} must be a multiple of {f} "
                              f"(2^n_downsample).")
        smallest = self.resolution // 2 ** (self.dis_scales - 1) // 2**self.dis_layers
        if smallest < 1:
            raise ConfigError(f"UNIT config: resolution {self.resolution} is too small for {self.dis_scales} "
                              f"discriminator scales of {self.dis_layers} layers; lower them or raise it.")
        if self.iterations < 0 or self.batch_size < 1:
            raise ConfigError("UNIT config: iterations must be >= 0 and batch_size >= 1.")
        if self.normal_source not in ("picked", "auto", "both"):
            raise ConfigError("UNIT config: normal_source must be picked, auto or both.")
        if self.normal_match not in ("air", "tissue"):
            raise ConfigError("UNIT config: normal_match must be air or tissue.")
        if self.sample_every < 1 or self.checkpoint_every < 1:
            raise ConfigError("UNIT config: sample_every and checkpoint_every must be >= 1.")
        parse_policy(self.diff_augment)
        if self.dis_norm not in DIS_NORMS:
            raise ConfigError(f"UNIT config: dis_norm must be one of {', '.join(DIS_NORMS)}.")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"UNIT config: compile_mode must be one of {', '.join(COMPILE_MODES)}.")

    def arch(self) -> UnitArch:
        return UnitArch(in_channels=1, **{name: getattr(self, name) for name in ARCH_FIELDS})

    def patch_params(self) -> Any:
        from lesion_studio.patches.dataset import PatchParams

        return PatchParams(resolution=self.resolution, side_factors=tuple(self.side_factors),
                           jitter=self.jitter, variants=self.variants, normal_source=self.normal_source,
                           normal_match=self.normal_match, seed=self.seed)


def parse_policy(text: str) -> tuple[str, ...]:
    """``"brightness,translation"`` → ("brightness", "translation"); empty text means none."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in DIFF_AUGMENT_POLICIES]
    if unknown:
        raise ConfigError(f"UNIT config: unknown diff_augment polic{'ies' if len(unknown) > 1 else 'y'} "
                          f"{', '.join(unknown)}; choose from {', '.join(DIFF_AUGMENT_POLICIES)}.")
    return names


def _arch_fields(arch: UnitArch) -> dict[str, Any]:
    return {name: getattr(arch, name) for name in ARCH_FIELDS}


PRESETS: dict[str, dict[str, Any]] = {
    # the paper: 64 channels, 2 downsamplings, 4 residual blocks at 256 px (a GPU job)
    "paper": {**_arch_fields(UNIT_ARCHS["paper"]()), "resolution": 256, "iterations": 100000, "sample_every": 1000,
              "checkpoint_every": 5000},
    # CPU default and live preview: 16 channels at 128 px
    "fast": {**_arch_fields(UNIT_ARCHS["fast"]()), "resolution": 128, "iterations": 20000},
    # tests: 16 channels at 32 px, two small discriminator scales, a higher learning rate
    "tiny": {**_arch_fields(UNIT_ARCHS["tiny"]()), "resolution": 32, "iterations": 200, "lr": 5e-4,
             "variants": 2, "sample_every": 50, "checkpoint_every": 100},
}


def preset_config(preset: str = "fast", **overrides: Any) -> UnitTrainConfig:
    """A config from a preset name, with any field overridden (validated like a config file)."""
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    return from_dict(UnitTrainConfig, {"preset": preset, **PRESETS[preset], **overrides},
                     where=f"preset {preset}")


def load_config(path: str | Path, **overrides: Any) -> UnitTrainConfig:
    """A config from YAML/TOML; a ``preset`` key there supplies the defaults the file leaves out."""
    data = {**read_config_file(path), **overrides}
    preset = data.pop("preset", "fast")
    return preset_config(preset, **data)


def default_model_name(config: UnitTrainConfig) -> str:
    parts = "+".join(config.body_parts) if config.body_parts else "all"
    return f"unit-{parts}-{config.preset}"
