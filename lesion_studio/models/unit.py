"""UNIT (Liu, Breuel & Kautz, 2017): two VAE-GANs that share a latent space, for grayscale X-rays.

Domains are ``l`` (lesion) and ``h`` (healthy). Each domain has an encoder E and a generator
(decoder) G; the last ``n_shared`` residual blocks of the encoders and the first ``n_shared`` of
the generators are *the same modules* in both domains, which is what ties the two latent spaces
together (the UNIT paper's weight sharing). Translation is ``x_h→l = G_l(E_h(x_h) + noise)``.
Discriminators are multi-scale patch discriminators trained with the least-squares GAN loss.

Layout follows torchvision's ``resnet.py``: small blocks, the networks, then builder functions; the
architecture itself (``UnitArch`` and the named sizes) is plain data in :mod:`lesion_studio.models.specs`.
Blocks follow MUNIT's ``networks.py`` with three deliberate differences: one input channel (no
RGB tiling), no ``.cuda()`` anywhere, and the decoder's layer norm is ``GroupNorm(1, C)`` instead
of MUNIT's LayerNorm, which branches on ``batch size == 1`` and so cannot be exported with a
dynamic batch dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lesion_studio.errors import LesionStudioError
from lesion_studio.models.bounds import check_unit_arch
from lesion_studio.models.checkpoint import check_state_shapes, load_checkpoint
from lesion_studio.models.layout import UNIT_FORMAT
from lesion_studio.models.specs import DIS_NORMS, UnitArch

DOMAINS = ("l", "h")


# ---------------------------------------------------------------------------- blocks
def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "in":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "ln":  # layer norm over (C, H, W) per sample, with per-channel affine
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def make_activation(kind: str) -> nn.Module:
    return {"relu": nn.ReLU(inplace=True), "lrelu": nn.LeakyReLU(0.2, inplace=True), "tanh": nn.Tanh(),
            "none": nn.Identity()}[kind]


class ConvBlock(nn.Sequential):
    """Reflection-padded convolution → norm → activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int,
                 norm: str = "none", activation: str = "relu") -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, padding_mode="reflect" if padding else "zeros"),
            make_norm(norm, out_ch),
            make_activation(activation),
        )


class ResBlock(nn.Module):
    """x + conv(relu(conv(x))), instance-normalised (MUNIT's residual block)."""

    def __init__(self, channels: int, norm: str = "in") -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBlock(channels, channels, 3, 1, 1, norm, "relu"),
                                  ConvBlock(channels, channels, 3, 1, 1, norm, "none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def res_blocks(count: int, channels: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(count)))


# ---------------------------------------------------------------------------- networks
class UnitEncoder(nn.Module):
    """The private part of E: stem, stride-2 downsamplings, the unshared residual blocks."""

    def __init__(self, arch: UnitArch) -> None:
        super().__init__()
        ch = arch.base_channels
        layers: list[nn.Module] = [ConvBlock(arch.in_channels, ch, 7, 1, 3, "in", "relu")]
        for _ in range(arch.n_downsample):
            layers.append(ConvBlock(ch, ch * 2, 4, 2, 1, "in", "relu"))
            ch *= 2
        layers.append(res_blocks(arch.n_res - arch.n_shared, ch))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UnitDecoder(nn.Module):
    """The private part of G: unshared residual blocks, nearest-upsample + conv stages, tanh output."""

    def __init__(self, arch: UnitArch) -> None:
        super().__init__()
        ch = arch.latent_channels
        layers: list[nn.Module] = [res_blocks(arch.n_res - arch.n_shared, ch)]
        for _ in range(arch.n_downsample):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), ConvBlock(ch, ch // 2, 5, 1, 2, "ln", "relu")]
            ch //= 2
        layers.append(ConvBlock(ch, arch.in_channels, 7, 1, 3, "none", "tanh"))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


class UnitGenerators(nn.Module):
    """E_l, E_h, G_l, G_h and the shared blocks: the whole translator.

    ``forward`` runs one UNIT training pass (reconstructions, translations, cycles) so that a
    single DistributedDataParallel call covers every generator parameter.
    """

    def __init__(self, arch: UnitArch) -> None:
        super().__init__()
        self.arch = arch
        self.enc_l, self.enc_h = UnitEncoder(arch), UnitEncoder(arch)
        self.dec_l, self.dec_h = UnitDecoder(arch), UnitDecoder(arch)
        self.shared_enc = res_blocks(arch.n_shared, arch.latent_channels)
        self.shared_dec = res_blocks(arch.n_shared, arch.latent_channels)

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """The latent mean E_domain(x) (UNIT's VAE has unit variance, so the mean is all of it)."""
        return self.shared_enc((self.enc_l if domain == "l" else self.enc_h)(x))

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        return (self.dec_l if domain == "l" else self.dec_h)(self.shared_dec(z))

    def translate(self, x: torch.Tensor, direction: str = "h2l", noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_h→l = G_l(E_h(x) + noise) for ``h2l`` (and the reverse for ``l2h``); no noise = latent mean.

        ``h2l_residual`` is G_l(z) − G_h(z) for z = E_h(x) + noise: what the translation changes
        beyond the normal decoder's own reconstruction of the same code. Both decoders share the
        latent's blur, so it cancels; synthesis adds this residual to the untouched source window
        (``translation: residual`` in synthesis/pipeline.py).
        """
        if direction == "h2l_residual":
            z = self.encode(x, "h")
            return lesion_residual(self.shared_dec, self.dec_l, self.dec_h, z if noise is None else z + noise)
        src, dst = ("h", "l") if direction == "h2l" else ("l", "h")
        z = self.encode(x, src)
        return self.decode(z if noise is None else z + noise, dst)

    def forward(self, x_l: torch.Tensor, x_h: torch.Tensor, noise: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training pass; ``noise`` is (4, B, C, h, w): z_l, z_h, and the two cycle codes.

        Every norm here is per sample (instance norm, group norm), so passes through the same
        network are batched: the shared decoder blocks run once on [z_l; z_h] (not once per
        decode), and each decoder makes its reconstruction and its translation in one call.
        """
        b = x_l.shape[0]
        mu_l, mu_h = self.encode(x_l, "l"), self.encode(x_h, "h")
        z_l, z_h = mu_l + noise[0], mu_h + noise[1]
        s_l, s_h = self.shared_dec(torch.cat([z_l, z_h])).split(b)
        x_l_rec, x_hl = self.dec_l(torch.cat([s_l, s_h])).split(b)
        x_h_rec, x_lh = self.dec_h(torch.cat([s_h, s_l])).split(b)
        mu_h_cyc, mu_l_cyc = self.encode(x_hl, "l"), self.encode(x_lh, "h")
        x_hlh = self.decode(mu_h_cyc + noise[2], "h")
        x_lhl = self.decode(mu_l_cyc + noise[3], "l")
        return {"mu_l": mu_l, "mu_h": mu_h, "x_l_rec": x_l_rec, "x_h_rec": x_h_rec, "x_hl": x_hl,
                "x_lh": x_lh, "mu_l_cyc": mu_l_cyc, "mu_h_cyc": mu_h_cyc, "x_lhl": x_lhl, "x_hlh": x_hlh}


class PatchDiscriminator(nn.Module):
    """MUNIT's multi-scale discriminator: the same conv stack on 1×, ½×, ¼×… of the input."""

    def __init__(self, arch: UnitArch) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.scales = nn.ModuleList(self._stack(arch) for _ in range(arch.dis_scales))

    @staticmethod
    def _stack(arch: UnitArch) -> nn.Sequential:
        ch = arch.dis_channels
        layers: list[nn.Module] = [ConvBlock(arch.in_channels, ch, 4, 2, 1, "none", "lrelu")]
        for _ in range(arch.dis_layers - 1):
            layers.append(ConvBlock(ch, ch * 2, 4, 2, 1, "none", "lrelu"))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 1))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, stack in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            outs.append(stack(x))
        return outs


def lsgan_loss(outputs: list[torch.Tensor], target: float) -> torch.Tensor:
    return sum(torch.mean((o.float() - target) ** 2) for o in outputs)  # type: ignore[return-value]


def _real_fake_loss(dis: PatchDiscriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """lsgan(D(fake), 0) + lsgan(D(real), 1) with D run once on [fake; real] (D has no norms, so
    batching changes nothing but the number of calls)."""
    n = fake.shape[0]
    outs = dis(torch.cat([fake, real.to(fake.dtype)]))
    return lsgan_loss([o[:n] for o in outs], 0.0) + lsgan_loss([o[n:] for o in outs], 1.0)


class UnitDiscriminators(nn.Module):
    """D_l and D_h. ``forward`` is the discriminator loss (one DDP call per discriminator step)."""

    def __init__(self, arch: UnitArch) -> None:
        super().__init__()
        self.dis_l, self.dis_h = PatchDiscriminator(arch), PatchDiscriminator(arch)

    def forward(self, real_l: torch.Tensor, fake_l: torch.Tensor, real_h: torch.Tensor,
                fake_h: torch.Tensor) -> torch.Tensor:
        return _real_fake_loss(self.dis_l, real_l, fake_l) + _real_fake_loss(self.dis_h, real_h, fake_h)

    def generator_loss(self, fake_l: torch.Tensor, fake_h: torch.Tensor) -> torch.Tensor:
        """How far the fakes are from being called real (the generators' adversarial loss)."""
        return lsgan_loss(self.dis_l(fake_l), 1.0) + lsgan_loss(self.dis_h(fake_h), 1.0)


def lesion_residual(shared_dec: nn.Module, dec_l: nn.Module, dec_h: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G_l(z) − G_h(z): what the lesion decoder makes of a code beyond the normal decoder's
    reconstruction of it (the shared decoder blocks run once). Training and export share it."""
    s = shared_dec(z)
    return dec_l(s) - dec_h(s)


class UnitTranslatorNet(nn.Module):
    """The exported inference graph: (patches, noise) → translated patches, one direction."""

    def __init__(self, generators: UnitGenerators, direction: str = "h2l") -> None:
        super().__init__()
        self.residual = direction == "h2l_residual"
        src, dst = ("l", "h") if direction == "l2h" else ("h", "l")
        self.encoder = nn.Sequential(getattr(generators, f"enc_{src}"), generators.shared_enc)
        if self.residual:  # G_l(z) − G_h(z): the shared decoder blocks run once
            self.shared_dec, self.dec_l, self.dec_h = generators.shared_dec, generators.dec_l, generators.dec_h
        else:
            self.decoder = nn.Sequential(generators.shared_dec, getattr(generators, f"dec_{dst}"))

    def forward(self, patches: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        z = self.encoder(patches) + noise
        if self.residual:
            return lesion_residual(self.shared_dec, self.dec_l, self.dec_h, z)
        return self.decoder(z)


# ---------------------------------------------------------------------------- builders
def init_weights(module: nn.Module, kind: str = "kaiming") -> None:
    """Kaiming (generators) or N(0, 0.02) (discriminators) init of convs, as in UNIT/MUNIT."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def unit_generators(arch: UnitArch) -> UnitGenerators:
    gen = UnitGenerators(arch)
    init_weights(gen, "kaiming")
    return gen


def unit_discriminators(arch: UnitArch, norm: str = "none") -> UnitDiscriminators:
    """D_l and D_h with N(0, 0.02) weights; ``norm="spectral"`` wraps every conv in spectral norm.

    The power iteration's vectors are buffers, so they live in the checkpoint and a resumed run
    continues the same iteration (training stays bitwise resumable).
    """
    if norm not in DIS_NORMS:
        raise LesionStudioError(f"Unknown discriminator norm {norm!r}; choose from {', '.join(DIS_NORMS)}.")
    dis = UnitDiscriminators(arch)
    init_weights(dis, "gaussian")
    if norm == "spectral":
        for module in list(dis.modules()):
            if isinstance(module, nn.Conv2d):
                nn.utils.parametrizations.spectral_norm(module)
    return dis


def load_unit_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[UnitGenerators, dict[str, Any]]:
    """(UnitGenerators in eval mode on ``device``, metadata) from a trained model's weights file."""
    states, meta = load_checkpoint(path)
    if meta.get("format") != UNIT_FORMAT or "gen" not in states or not isinstance(states["gen"], dict):
        raise LesionStudioError(f"{Path(path).name} is not a UNIT model saved by Lesion Studio.")
    arch = UnitArch(**check_unit_arch(meta.get("arch"), Path(path).name))
    check_state_shapes(lambda: UnitGenerators(arch), states["gen"], f"{Path(path).name} (UNIT)")
    try:
        gen = UnitGenerators(arch)
        gen.load_state_dict(states["gen"])
    except (TypeError, KeyError, RuntimeError) as exc:
        raise LesionStudioError(f"{Path(path).name} does not match the UNIT architecture it names ({exc}).") from exc
    return gen.to(device).eval(), meta


def loss_terms(gen: UnitGenerators | nn.Module, out: dict[str, torch.Tensor], x_l: torch.Tensor,
               x_h: torch.Tensor) -> dict[str, torch.Tensor]:
    """The UNIT generator objective's parts (unweighted): VAE recon + KL, cycle recon + KL."""
    del gen
    return {
        "recon": F.l1_loss(out["x_l_rec"], x_l) + F.l1_loss(out["x_h_rec"], x_h),
        "kl": torch.mean(out["mu_l"].float() ** 2) + torch.mean(out["mu_h"].float() ** 2),
        "cycle": F.l1_loss(out["x_lhl"], x_l) + F.l1_loss(out["x_hlh"], x_h),
        "cycle_kl": torch.mean(out["mu_l_cyc"].float() ** 2) + torch.mean(out["mu_h_cyc"].float() ** 2),
    }
