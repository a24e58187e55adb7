"""What fixes the shape of each network, as plain data: no torch here.

The networks (:mod:`lesion_studio.models.unit`, :mod:`lesion_studio.models.drn`) are built from
these specs, and code that must not import torch reads them too: the translator runtime needs the
UNIT latent shape to draw noise for ONNX, the trainers' configs validate architecture names, and
the GUI offers the presets. One definition here means none of them keeps a copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


# ---------------------------------------------------------------------------- UNIT
@dataclass(frozen=True)
class UnitArch:
    """Everything that fixes the shape of the UNIT networks (and so of the weights file)."""

    in_channels: int = 1
    base_channels: int = 64
    n_downsample: int = 2
    n_res: int = 4
    n_shared: int = 1
    dis_channels: int = 64
    dis_layers: int = 4
    dis_scales: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.n_shared <= self.n_res:
            raise ValueError(f"n_shared ({self.n_shared}) must be between 0 and n_res ({self.n_res})")
        if self.base_channels < 1 or self.n_downsample < 0 or self.dis_layers < 1 or self.dis_scales < 1:
            raise ValueError("channels, downsamplings, discriminator layers and scales must be positive")

    @property
    def latent_channels(self) -> int:
        return self.base_channels * 2**self.n_downsample

    @property
    def downsample_factor(self) -> int:
        """Patch sides must be multiples of this; the latent map is side / factor wide."""
        return 2**self.n_downsample

    def latent_shape(self, batch: int, height: int, width: int) -> tuple[int, int, int, int]:
        f = self.downsample_factor
        return batch, self.latent_channels, height // f, width // f

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def unit_paper() -> UnitArch:
    """The paper's network: 64 channels, 2 downsamplings, 4 residual blocks (1 shared), D 4×3."""
    return UnitArch(base_channels=64, n_downsample=2, n_res=4, n_shared=1, dis_channels=64, dis_layers=4,
                    dis_scales=3)


def unit_fast() -> UnitArch:
    """Narrower (16 channels, 32-channel discriminators) for CPU training and live preview at 128 px.

    16 rather than 32 base channels: a 128² translation costs ~0.8 GMAC instead of ~3.2, which is
    what keeps single-patch onnxruntime latency near the 60 ms CPU target on two cores.
    """
    return UnitArch(base_channels=16, n_downsample=2, n_res=4, n_shared=1, dis_channels=32, dis_layers=4,
                    dis_scales=3)


def unit_tiny() -> UnitArch:
    """For tests: 16 channels, 2 downsamplings, 2 residual blocks, small discriminators (32 px)."""
    return UnitArch(base_channels=16, n_downsample=2, n_res=2, n_shared=1, dis_channels=16, dis_layers=2,
                    dis_scales=2)


UNIT_ARCHS = {"paper": unit_paper, "fast": unit_fast, "tiny": unit_tiny}


# ---------------------------------------------------------------------------- DRN
#: The classifier architectures by config name; ``models.drn`` has one builder function of each name.
DRN_ARCHS = ("drn_c_26", "drn_d_22", "drn_d_22_half", "drn_d_22_slim", "drn_c_tiny", "drn_d_tiny")


#: How the UNIT discriminators' convolutions are normalised: "none" (UNIT/MUNIT) or "spectral"
#: (Miyato et al. 2018: every weight divided by its largest singular value, one power iteration a
#: step, which bounds D's Lipschitz constant so it cannot win by a margin the generator cannot follow).
DIS_NORMS = ("none", "spectral")
