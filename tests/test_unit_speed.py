"""The training speed-ups change no maths: batched passes equal the per-call ones, Adam resumes as it was."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from lesion_studio.errors import ConfigError  # noqa: E402
from lesion_studio.models.specs import unit_tiny  # noqa: E402
from lesion_studio.models.unit import lsgan_loss, unit_discriminators, unit_generators  # noqa: E402


def _inputs(b: int = 2, size: int = 32):  # noqa: ANN202
    g = torch.Generator().manual_seed(0)
    arch = unit_tiny()
    return (arch, torch.rand(b, 1, size, size, generator=g) * 2 - 1, torch.rand(b, 1, size, size, generator=g) * 2 - 1,
            torch.randn((4, *arch.latent_shape(b, size, size)), generator=g))


def test_batched_generator_pass_equals_one_call_per_decode() -> None:
    arch, x_l, x_h, noise = _inputs()
    torch.manual_seed(0)
    gen = unit_generators(arch)
    out = gen(x_l, x_h, noise)
    with torch.no_grad():  # the reference UNIT's order: every decode its own call
        mu_l, mu_h = gen.encode(x_l, "l"), gen.encode(x_h, "h")
        z_l, z_h = mu_l + noise[0], mu_h + noise[1]
        x_hl, x_lh = gen.decode(z_h, "l"), gen.decode(z_l, "h")
        want = {"x_l_rec": gen.decode(z_l, "l"), "x_h_rec": gen.decode(z_h, "h"), "x_hl": x_hl, "x_lh": x_lh,
                "x_hlh": gen.decode(gen.encode(x_hl, "l") + noise[2], "h"),
                "x_lhl": gen.decode(gen.encode(x_lh, "h") + noise[3], "l")}
    for key, value in want.items():
        assert out[key].shape == value.shape
        assert float((out[key].detach() - value).abs().max()) < 1e-5, key
    # and the translations really differ from the reconstructions (the split is not off by one)
    assert float((out["x_hl"] - out["x_h_rec"]).detach().abs().max()) > 1e-3


def test_discriminator_loss_on_fake_and_real_at_once_equals_two_calls() -> None:
    arch, x_l, x_h, _ = _inputs()
    torch.manual_seed(0)
    dis = unit_discriminators(arch)
    fake_l, fake_h = torch.tanh(x_h * 3), torch.tanh(x_l * 3)
    got = dis(x_l, fake_l, x_h, fake_h)
    want = (lsgan_loss(dis.dis_l(fake_l), 0.0) + lsgan_loss(dis.dis_l(x_l), 1.0)
            + lsgan_loss(dis.dis_h(fake_h), 0.0) + lsgan_loss(dis.dis_h(x_h), 1.0))
    assert math.isclose(float(got.detach()), float(want.detach()), rel_tol=1e-5)


def test_resumed_adam_keeps_its_kernel_and_the_parameters_layout() -> None:
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import _adam, _load_adam

    cfg = preset_config("tiny")
    net = torch.nn.Conv2d(2, 4, 3).to(memory_format=torch.channels_last)
    old = torch.optim.Adam(net.parameters(), lr=cfg.lr)  # a checkpoint from before fused Adam
    net(torch.rand(1, 2, 8, 8)).sum().backward()
    old.step()
    state = old.state_dict()
    state["state"] = {k: {n: v.contiguous() for n, v in s.items()} for k, s in state["state"].items()}
    opt = _adam(net.parameters(), cfg)
    _load_adam(opt, state)
    assert opt.param_groups[0]["fused"] and opt.param_groups[0]["lr"] == cfg.lr
    moment = opt.state[net.weight]["exp_avg"]
    assert moment.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(moment, old.state[net.weight]["exp_avg"])


def test_cpu_bf16_training_runs_and_really_changes_precision(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    opts = {"iterations": 2, "device": "cpu", "cpu_threads": 1, "export_onnx": False, "sample_every": 1000,
            "checkpoint_every": 1000, "body_parts": ["femur"]}
    fp32 = train_unit(demo_project, preset_config("tiny", cpu_bf16=False, **opts), name="fp32")
    bf16 = train_unit(demo_project, preset_config("tiny", cpu_bf16=True, **opts), name="bf16")
    assert demo_project.model("fp32").metadata["precision"] == "fp32"
    assert demo_project.model("bf16").metadata["precision"] == "bf16"
    assert len(bf16.history) == 2 and all(math.isfinite(v) for h in bf16.history for v in h.values())
    first32, first16 = fp32.history[0], bf16.history[0]
    assert first32 != first16  # bf16 convolutions: same batches and weights, slightly different losses
    assert abs(first32["recon"] - first16["recon"]) < 0.05 * first32["recon"]


def test_cpu_bf16_auto_follows_the_cpus_native_bf16_and_never_applies_off_the_cpu(monkeypatch) -> None:  # noqa: ANN001
    import torch

    from lesion_studio.training import common
    from lesion_studio.training.unit_config import preset_config

    assert preset_config("fast").cpu_bf16 == "auto"  # the default
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native in (True, False):
        monkeypatch.setattr(common, "cpu_has_native_bf16", lambda native=native: native)
        assert common.use_cpu_bf16("auto", cpu) is native
        assert common.use_cpu_bf16(True, cpu) is True and common.use_cpu_bf16(False, cpu) is False
        assert common.use_cpu_bf16("auto", cuda) is False and common.use_cpu_bf16(True, cuda) is False
    with pytest.raises(ConfigError, match="true or false or 'auto'"):
        preset_config("fast", cpu_bf16="yes")
