"""Classifier benchmark: DRN-C-26 training throughput vs torchvision's resnet18 on the same input.

    python benchmarks/classifier_bench.py [--size 256] [--batch 8] [--steps 5] [--device auto]
    python benchmarks/classifier_bench.py --side-by-side [--side-size 128 --side-batch 16 --rounds 3]
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


def _plain_images(folder: Path, count: int) -> list[Path]:
    """Radiographs for the plain loop to decode: FracAtlas JPEGs when ../shared is there, else PNGs
    of the same size made here (a decode per image and step is what a plain loop pays)."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "xray" / "images"
    files = sorted(shared.glob("*.jpg"))[:count] if shared.is_dir() else []
    if len(files) == count:
        return files
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (454, 373), dtype=np.uint8)).save(path)
        out.append(path)
    return out


def side_by_side(args: argparse.Namespace) -> dict:
    """The product's classifier training against a plain PyTorch loop on the same DRN-D-22, and
    torchvision's resnet18 as a yardstick, interleaved in one run (images/s, ratios).

    - product: ``ClassifierTrainer.fit`` for one epoch over prepared, cached inputs (the batched warp,
      channels-last, its checkpoint at the end of the epoch), on DRN-D-22 with the image head, as in
      the plain loop (the levers alone);
    - product_hand_study: the same, with the network and head the hand studies train
      (``fracatlas-arms.yaml``: ``drn_d_22_half`` with the lesion-map head; its quality against
      DRN-D-22's is measured over three seeds in docs/experiments.md);
    - plain: what a researcher would write: decode each image every step, percentile-normalise,
      resize with Pillow, torchvision's RandomAffine per image, fp32 NCHW, default threads;
    - resnet18: the plain loop's step on in-memory tensors.
    """
    import tempfile

    import numpy as np
    import torch
    import torchvision
    from PIL import Image
    from torchvision.transforms import v2

    from lesion_studio.classifier.config import ClassifierConfig
    from lesion_studio.classifier.data import Example, LabelledSet
    from lesion_studio.models.drn import build_drn
    from lesion_studio.training.classifier_trainer import ClassifierTrainer

    size, batch, steps, rounds = args.side_size, args.side_batch, args.steps, args.rounds
    n = batch * steps
    tmp = Path(tempfile.mkdtemp(prefix="classifier-bench-"))
    files = _plain_images(tmp / "images", n)
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 2).astype(np.int64)
    arrays = rng.standard_normal((n, size, size)).astype(np.float16)
    box = ((size / 3, size / 3, 2 * size / 3, 2 * size / 3),)  # every lesion boxed: the map loss runs
    examples = [Example(key=f"k{i}", path=files[i], label=int(labels[i]), body_part="x",
                        boxes=box if labels[i] else ()) for i in range(n)]

    def product(arch: str = "drn_d_22", head: str = "image") -> float:
        cfg = ClassifierConfig(arch=arch, head=head, input_size=size, epochs=1, batch_size=batch, device="cpu",
                               balance="none")
        masks = None
        if head == "image+map":  # a box in the middle of every lesion image, as the map head learns from
            masks = np.zeros((n, size, size), dtype=np.uint8)
            masks[labels == 1, size // 3: 2 * size // 3, size // 3: 2 * size // 3] = 1
        trainer = ClassifierTrainer(cfg, LabelledSet(examples, arrays, masks), None, tmp / "product")
        t0 = time.perf_counter()
        trainer.fit(resume=False)
        return n / (time.perf_counter() - t0)

    affine = v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1))

    def load(path: Path) -> torch.Tensor:
        img = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
        lo, hi = np.percentile(img, [0.5, 99.5])
        img = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
        img = np.asarray(Image.fromarray(img, mode="F").resize((size, size), Image.Resampling.BILINEAR))
        return affine(torch.from_numpy((img - 0.5) / 0.25)[None])

    def plain_loop(model: torch.nn.Module, from_files: bool) -> float:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        model.train()
        t0 = time.perf_counter()
        for b in range(steps):
            idx = range(b * batch, (b + 1) * batch)
            x = (torch.stack([load(files[i]) for i in idx]) if from_files
                 else torch.from_numpy(arrays[list(idx)].astype(np.float32))[:, None])
            y = torch.from_numpy(labels[list(idx)].astype(np.float32))
            loss = loss_fn(model(x)[:, 0], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return n / (time.perf_counter() - t0)

    def resnet18() -> torch.nn.Module:
        m = torchvision.models.resnet18(num_classes=1)
        m.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return m

    runs: dict[str, list[float]] = {"product": [], "product_hand_study": [], "plain": [], "resnet18": []}
    torch.manual_seed(0)
    plain_loop(build_drn("drn_d_22"), True)  # warm-up: first-call allocations and kernel choices
    for _ in range(rounds):
        runs["product"].append(product())
        runs["product_hand_study"].append(product("drn_d_22_half", "image+map"))
        torch.manual_seed(0)
        runs["plain"].append(plain_loop(build_drn("drn_d_22"), True))
        runs["resnet18"].append(plain_loop(resnet18(), False))
    med = {k: float(np.median(v)) for k, v in runs.items()}
    return {"size": size, "batch": batch, "steps": steps, "rounds": rounds, "threads": torch.get_num_threads(),
            "images_per_s": {k: round(v, 2) for k, v in med.items()},
            "per_round": {k: [round(x, 2) for x in v] for k, v in runs.items()},
            "product_vs_plain": round(med["product"] / med["plain"], 3),
            "product_hand_study_vs_plain": round(med["product_hand_study"] / med["plain"], 3),
            "resnet18_vs_plain": round(med["resnet18"] / med["plain"], 3),
            "inputs": "FracAtlas JPEGs" if "shared" in str(files[0]) else "generated PNGs"}


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
    p.add_argument("--side-by-side", action="store_true",
                   help="the product's training against a plain loop and resnet18 (DRN-D-22, --size, --batch)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the side-by-side rows")
    p.add_argument("--side-size", type=int, default=128, help="input size of the side-by-side rows")
    p.add_argument("--side-batch", type=int, default=16, help="batch of the side-by-side rows")
    p.add_argument("--config", type=Path, help="experiment config for --fracatlas")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.fracatlas:
        out = fracatlas(args)
    elif args.side_by_side:
        out = side_by_side(args)
    else:  # the default run (make bench): the architectures' throughput and the side-by-side rows
        out = {**throughput(args), "side_by_side": side_by_side(args)}
    out["cpu_count"] = os.cpu_count()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
