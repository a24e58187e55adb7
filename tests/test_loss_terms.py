"""UNIT's objective as docs/synthesis.md states it, term by term and weight by weight.

"Losses as UNIT: gan 1, recon 10 (L1), kl 0.01 (mean of μ², noise N(0,1) added), cycle 10,
cycle kl 0.01; Adam 1e-4, betas (0.5, 0.999), weight decay 1e-4, StepLR." Each part is checked
where it lives: the defaults, :func:`loss_terms` against the formulas, the LSGAN losses against
the discriminators' outputs, and short runs whose reported total must be exactly the weighted sum
of their terms. (That the batched training pass is the plain composition of encoders, decoders and
noise is checked in test_unit_speed.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lesion_studio.models.specs import UNIT_ARCHS  # noqa: E402
from lesion_studio.training.unit_config import UnitTrainConfig, preset_config  # noqa: E402

WEIGHTS = {"gan": "gan_w", "recon": "recon_w", "kl": "kl_w", "cycle": "cycle_w", "cycle_kl": "cycle_kl_w"}


def test_the_defaults_are_units() -> None:
    cfg = UnitTrainConfig()
    assert {k: getattr(cfg, w) for k, w in WEIGHTS.items()} == {"gan": 1.0, "recon": 10.0, "kl": 0.01,
                                                                "cycle": 10.0, "cycle_kl": 0.01}
    assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.weight_decay) == (1e-4, 0.5, 0.999, 1e-4)
    for name in ("paper", "fast", "tiny"):  # presets change sizes and lengths, never the objective
        p = preset_config(name)
        assert {w: getattr(p, w) for w in WEIGHTS.values()} == {w: getattr(cfg, w) for w in WEIGHTS.values()}
    assert preset_config("tiny").lr == 5e-4 and preset_config("paper").lr == 1e-4


def _t(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    return torch.from_numpy(rng.uniform(-1, 1, shape).astype(np.float32))


def test_loss_terms_are_the_vae_and_cycle_objectives() -> None:
    from lesion_studio.models.unit import loss_terms

    rng = np.random.default_rng(0)
    x_l, x_h = _t(rng, 2, 1, 8, 8), _t(rng, 2, 1, 8, 8)
    out = {k: _t(rng, 2, 1, 8, 8) for k in ("x_l_rec", "x_h_rec", "x_hl", "x_lh", "x_lhl", "x_hlh")}
    out.update({k: _t(rng, 2, 4, 2, 2) for k in ("mu_l", "mu_h", "mu_l_cyc", "mu_h_cyc")})
    got = {k: float(v) for k, v in loss_terms(None, out, x_l, x_h).items()}
    n = {k: v.numpy().astype(np.float64) for k, v in out.items()}
    xl, xh = x_l.numpy().astype(np.float64), x_h.numpy().astype(np.float64)
    want = {
        "recon": np.abs(n["x_l_rec"] - xl).mean() + np.abs(n["x_h_rec"] - xh).mean(),  # L1, each domain
        "kl": (n["mu_l"] ** 2).mean() + (n["mu_h"] ** 2).mean(),  # unit-variance VAE: the mean of μ²
        "cycle": np.abs(n["x_lhl"] - xl).mean() + np.abs(n["x_hlh"] - xh).mean(),  # back to where it began
        "cycle_kl": (n["mu_l_cyc"] ** 2).mean() + (n["mu_h_cyc"] ** 2).mean(),
    }
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-5), k


def test_the_discriminators_and_generators_play_least_squares() -> None:
    """LSGAN: D pushes fakes to 0 and reals to 1 at every scale of both domains; G pushes its fakes to 1."""
    from lesion_studio.models.unit import unit_discriminators

    torch.manual_seed(0)
    dis = unit_discriminators(UNIT_ARCHS["tiny"]()).eval()
    rng = np.random.default_rng(2)
    real_l, fake_l, real_h, fake_h = (_t(rng, 2, 1, 32, 32) for _ in range(4))

    def sq(outs: list[torch.Tensor], target: float) -> float:
        assert len(outs) == 2  # the tiny preset's two scales
        return sum(float(((o - target) ** 2).mean()) for o in outs)

    with torch.no_grad():
        d_loss = float(dis(real_l, fake_l, real_h, fake_h))
        g_loss = float(dis.generator_loss(fake_l, fake_h))
        want_d = (sq(dis.dis_l(fake_l), 0.0) + sq(dis.dis_l(real_l), 1.0)
                  + sq(dis.dis_h(fake_h), 0.0) + sq(dis.dis_h(real_h), 1.0))
        want_g = sq(dis.dis_l(fake_l), 1.0) + sq(dis.dis_h(fake_h), 1.0)
    assert d_loss == pytest.approx(want_d, rel=1e-5)
    assert g_loss == pytest.approx(want_g, rel=1e-5)


def test_a_run_optimises_the_weighted_sum_with_units_adam(demo_project) -> None:  # noqa: ANN001
    """Two iterations with five different weights: each reported total is exactly Σ weight × term,
    and the checkpointed optimisers carry the config's Adam settings and StepLR decay."""
    from lesion_studio.models import checkpoint
    from lesion_studio.models.layout import CHECKPOINT
    from lesion_studio.training.unit_trainer import train_unit

    weights = {"gan_w": 1.5, "recon_w": 7.0, "kl_w": 0.3, "cycle_w": 4.0, "cycle_kl_w": 0.2}
    cfg = preset_config("tiny", iterations=2, cpu_threads=1, device="cpu", export_onnx=False, assess=False,
                        body_parts=["femur"], lr=3e-4, beta1=0.4, beta2=0.99, weight_decay=2e-4, lr_step=1,
                        lr_gamma=0.5, **weights)
    result = train_unit(demo_project, cfg, name="weights", patch_cache="memory")
    assert len(result.history) == 2
    for row in result.history:
        assert all(row[k] > 0 for k in WEIGHTS)
        total = sum(weights[w] * row[k] for k, w in WEIGHTS.items())
        assert row["total"] == pytest.approx(total, rel=1e-5, abs=1e-5), row
    # The discriminator's loss carries gan_w too: the first iteration (same weights, same batch)
    # with gan_w doubled reports twice the discriminator loss and the same VAE terms.
    double = train_unit(demo_project, preset_config("tiny", iterations=1, cpu_threads=1, device="cpu",
                                                    export_onnx=False, assess=False, body_parts=["femur"],
                                                    **{**weights, "gan_w": 3.0}),
                        name="weights-2", patch_cache="memory")
    first, again = result.history[0], double.history[0]
    assert again["dis"] == pytest.approx(2 * first["dis"], rel=1e-4)
    assert (again["recon"], again["kl"]) == pytest.approx((first["recon"], first["kl"]), rel=1e-5)
    states, _meta = checkpoint.load_checkpoint(result.model_dir / CHECKPOINT)
    for opt in ("opt_g", "opt_d"):
        group = states[opt]["param_groups"][0]
        assert tuple(group["betas"]) == pytest.approx((0.4, 0.99)) and group["weight_decay"] == pytest.approx(2e-4)
        assert group["lr"] == pytest.approx(3e-4 * 0.5**2)  # StepLR: halved after each of the 2 steps
