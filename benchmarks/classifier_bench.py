"""Classifier benchmark: DRN-C-26 training throughput vs torchvision's resnet18 on the same input.

    python benchmarks/classifier_bench.py [--size 256] [--batch 8] [--steps 5] [--device auto]
    python benchmarks/classifier_bench.py --fracatlas      # the CPU FracAtlas experiment (~1.5 h on 2 cores)

Prints one JSON object. Both networks take the same single-channel input (resnet18's stem is
rebuilt for one channel) with one output logit, and train with the same AdamW + BCE step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def train_throughput(model, size: int, batch: int, steps: int, device: str) -> float:  # noqa: ANN001
    import torch

    from lesion_studio.models.checkpoint import select_device
    from lesion_studio.training.common import autocast

    dev = select_device(device)
    model = model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, size, size, device=dev)
    y = torch.randint(0, 2, (batch,), device=dev).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        with autocast(dev, True):
            out = model(x)[:, 0]
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def throughput(args: argparse.Namespace) -> dict:
    import torch
    import torchvision

    from lesion_studio.models.drn import drn_c_26, drn_d_22

    def resnet18():  # noqa: ANN202
        m = torchvision.models.resnet18(num_classes=1)
        m.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return m

    torch.manual_seed(0)
    res = {"size": args.size, "batch": args.batch, "steps": args.steps, "threads": torch.get_num_threads(),
           "device": args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")}
    if torch.cuda.is_available() and res["device"] == "cuda":
        res["gpu"] = torch.cuda.get_device_name(0)
    res["drn_c_26_images_per_s"] = round(train_throughput(drn_c_26(), args.size, args.batch, args.steps, args.device), 2)
    res["drn_d_22_images_per_s"] = round(train_throughput(drn_d_22(), args.size, args.batch, args.steps, args.device), 2)
    res["resnet18_images_per_s"] = round(train_throughput(resnet18(), args.size, args.batch, args.steps, args.device), 2)
    res["drn_c_26_vs_resnet18"] = round(res["drn_c_26_images_per_s"] / res["resnet18_images_per_s"], 3)
    return res


def fracatlas(args: argparse.Namespace) -> dict:
    from lesion_studio.experiment.config import load_experiment_config
    from lesion_studio.experiment.runner import run_experiment

    root = Path(__file__).resolve().parents[1]
    cfg = load_experiment_config(args.config or root / "resources" / "experiments" / "fracatlas.yaml")
    t0 = time.perf_counter()
    result = run_experiment(cfg)
    return {"experiment": cfg.name, "wall_s": round(time.perf_counter() - t0, 1),
            "stages": result.stage_events, "output": str(result.output),
            "table": (result.output / "table.md").read_text()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--fracatlas", action="store_true")
    p.add_argument("--config", type=Path, help="experiment config for --fracatlas")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    out = fracatlas(args) if args.fracatlas else throughput(args)
    out["cpu_count"] = os.cpu_count()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
