"""Does the review queue help? A simulated reader labels training images in queue order or at random.

    python benchmarks/active_learning.py /work/main/results/fracatlas-project --body-parts hand --png
    python benchmarks/active_learning.py PROJECT --start 50 --stop 300 --step 50 --seeds 0 1 2

The project's reviewed training images (of ``--body-parts``) are the pool, with their labels
hidden until "read"; its validation split measures each model. For each seed: the same random
``--start`` images (both classes) train the first detector; then, step by step up to ``--stop``,

- **queue** (``uncertainty``): the simulated reader reads the ``--step`` unread images whose score
  from the latest model is closest to its operating point (the review queue's own ordering,
  ``assist.queue.order_ids``; the operating point is the threshold maximising Youden's J on the
  validation scores, as retraining stores it), and the detector is retrained on all read images;
- **random**: the reader reads ``--step`` unread images at random (seeded), and the detector is
  retrained likewise.

Every model is trained the same way: the classifier trainer of the product (``ClassifierTrainer``)
with the settings below, ``select: last`` (validation measures the models, it does not choose
their epoch), and at least ``--min-steps`` optimizer steps (epochs = ⌈steps × batch / images⌉), so
a small labelled set is not also an undertrained model. Validation ROC AUC per step per seed goes
to ``active_learning.json`` (with each step's read image ids, so a result can be checked), a mean
± sd table to ``active_learning.md``, and with ``--png`` the two curves to ``active_learning.png``.

**Resumable**: each finished point is written at once (atomically) with what the next step needs
(the model's scores of the unread images); a rerun with the same settings skips every finished
point and trains only the missing ones. Changed settings start a new file (the old one is kept
under another name).

Cost: (1 + 2 × steps) trainings per seed. The defaults (``drn_d_22_half``, 96 px, cropped to the
body, image head, 60 steps of 16) aim at about 30 minutes for 50→300 in steps of 50 over three
seeds on two CPU cores; the first line printed gives the time of the first training, to judge.
Opening the project applies its schema upgrades (with a backup), as any command does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from lesion_studio.assist.queue import order_ids, youden_threshold  # noqa: E402
from lesion_studio.files import atomic_write_json, atomic_write_text  # noqa: E402

log = logging.getLogger("active_learning")

STRATEGIES = ("uncertainty", "random")
LABELS = {"uncertainty": "queue (uncertainty)", "random": "random order"}


@dataclass
class Settings:
    """Everything that fixes the simulation's numbers (a changed field starts a new results file)."""

    body_parts: list[str] = field(default_factory=list)
    start: int = 50
    stop: int = 300
    step: int = 50
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    arch: str = "drn_d_22_half"
    input_size: int = 96
    crop_to_body: bool = True
    head: str = "image"
    batch_size: int = 16
    min_steps: int = 60
    lr: float = 1e-3

    def sizes(self) -> list[int]:
        if not 1 <= self.start <= self.stop or self.step < 1:
            raise SystemExit("error: need 1 <= --start <= --stop and --step >= 1.")
        return list(range(self.start, self.stop + 1, self.step))

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()[:12]

    def classifier(self, n_images: int, seed: int):  # noqa: ANN201 - ClassifierConfig
        from lesion_studio.classifier.config import ClassifierConfig

        epochs = max(1, math.ceil(self.min_steps * self.batch_size / n_images))
        return ClassifierConfig(arch=self.arch, input_size=self.input_size, crop_to_body=self.crop_to_body,
                                head=self.head, epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                                schedule="cosine", select="last", seed=seed, device="cpu", amp=False)


@dataclass
class Pool:
    """The pool's and the validation set's prepared images and labels, loaded once."""

    train: Any  # LabelledSet of the pool (training split)
    val: Any  # LabelledSet of the validation split
    ids: list[int]  # the pool's image ids, in the order of ``train``


def load_pool(project_folder: Path, settings: Settings, cache_dir: Path | None) -> Pool:
    from lesion_studio.classifier.data import evaluation_set, image_examples, materialise, split_records
    from lesion_studio.classifier.preprocess import PreparedCache, Preprocessing
    from lesion_studio.store import Project

    parts = settings.body_parts or None
    prep = Preprocessing(settings.input_size, crop_to_body=settings.crop_to_body)
    with Project.open(project_folder) as project:
        cache = PreparedCache(prep, cache_dir or project.subfolder("cache") / "classifier")
        records = split_records(project, "train", parts)
        masks = settings.head == "image+map"
        train = materialise(image_examples(records, project), cache, what="pool images", masks=masks)
        val = evaluation_set(project, "val", cache, parts)
    if len(train) < settings.stop:
        raise SystemExit(f"error: the pool has {len(train)} reviewed training images, fewer than --stop "
                         f"{settings.stop}.")
    return Pool(train, val, [int(e.image_id) for e in train.examples])


def subset(data, idx: list[int]):  # noqa: ANN001, ANN201 - LabelledSet
    from lesion_studio.classifier.data import LabelledSet

    return LabelledSet([data.examples[i] for i in idx], data.arrays[idx],
                       data.masks[idx] if data.masks is not None else None)


def train_and_score(pool: Pool, read: list[int], settings: Settings, seed: int, work: Path) -> dict[str, Any]:
    """Train on the pool positions ``read``; the validation AUC, the operating point (Youden's J on
    validation) and the model's scores of the unread pool images."""
    import torch

    from lesion_studio.evaluate.metrics import auc
    from lesion_studio.training.classifier_trainer import ClassifierTrainer, load_classifier, predict

    t0 = time.perf_counter()
    cfg = settings.classifier(len(read), seed)
    if work.exists():
        shutil.rmtree(work)
    result = ClassifierTrainer(cfg, subset(pool.train, read), None, work).fit(resume=False)
    model, _ = load_classifier(result.path)
    device = torch.device("cpu")
    val_scores = predict(model, pool.val.arrays, device=device)
    unread = sorted(set(range(len(pool.ids))) - set(read))
    pool_scores = predict(model, pool.train.arrays[unread], device=device) if unread else np.zeros(0)
    shutil.rmtree(work, ignore_errors=True)
    return {"val_auc": auc(pool.val.labels, val_scores),
            "operating_point": youden_threshold(pool.val.labels, val_scores),
            "unread_scores": {str(pool.ids[i]): float(s) for i, s in zip(unread, pool_scores, strict=True)},
            "epochs": cfg.epochs, "seconds": round(time.perf_counter() - t0, 1)}


def first_read(pool: Pool, n: int, seed: int) -> list[int]:
    """``n`` random pool positions holding both classes (redrawn from the same seeded stream)."""
    rng = np.random.default_rng(seed)
    labels = pool.train.labels
    for _ in range(1000):
        idx = sorted(rng.choice(len(labels), size=n, replace=False).tolist())
        if 0 < labels[idx].sum() < n:
            return idx
    raise SystemExit(f"error: {n} random images never hold both classes; use a larger --start.")


def next_read(pool: Pool, read: list[int], previous: dict[str, Any], strategy: str, k: int,
              rng: np.random.Generator) -> list[int]:
    """The ``k`` pool positions the reader reads next."""
    unread = sorted(set(range(len(pool.ids))) - set(read))
    if strategy == "random":
        return sorted(rng.choice(unread, size=min(k, len(unread)), replace=False).tolist())
    position = {pool.ids[i]: i for i in unread}
    scores = {int(i): s for i, s in previous["unread_scores"].items()}
    queue = order_ids(position, scores, "uncertainty", previous["operating_point"])
    return sorted(position[i] for i in queue[:k])


class Results:
    """The results file: settings and finished points, written after each point."""

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.data: dict[str, Any] = {"settings": settings.__dict__, "settings_key": settings.key(), "points": {}}
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("settings_key") == settings.key():
                self.data = old
            else:
                kept = path.with_name(f"{path.stem}-{old.get('settings_key', 'old')}.json")
                path.rename(kept)
                log.warning("settings changed: the earlier results were kept as %s", kept.name)

    @staticmethod
    def key(seed: int, strategy: str, size: int) -> str:
        return f"{seed}/{strategy}/{size}"

    def get(self, seed: int, strategy: str, size: int) -> dict[str, Any] | None:
        return self.data["points"].get(self.key(seed, strategy, size))

    def put(self, seed: int, strategy: str, size: int, point: dict[str, Any]) -> None:
        self.data["points"][self.key(seed, strategy, size)] = point
        atomic_write_json(self.path, self.data, indent=1)


def simulate(project_folder: Path, out: Path, settings: Settings, *, cache_dir: Path | None = None,
             png: bool = False) -> dict[str, Any]:
    """Run (or resume) the simulation; returns the results with a ``trained`` count for this call."""
    sizes = settings.sizes()
    out.mkdir(parents=True, exist_ok=True)
    results = Results(out / "active_learning.json", settings)
    pool = None
    trained = 0

    def point(seed: int, strategy: str, size: int, read: list[int]) -> dict[str, Any]:
        nonlocal pool, trained
        done = results.get(seed, strategy, size)
        if done is not None:
            return done
        pool = pool or load_pool(project_folder, settings, cache_dir)
        scored = train_and_score(pool, read, settings, seed, out / "work")
        trained += 1
        labels = pool.train.labels
        made = {"seed": seed, "strategy": strategy, "read": size, "lesions_read": int(labels[read].sum()),
                "read_ids": sorted(pool.ids[i] for i in read), **scored}
        results.put(seed, strategy, size, made)
        log.info("seed %d %-11s %3d read: validation AUC %.3f (%d epochs, %.0f s)", seed, strategy, size,
                 made["val_auc"], made["epochs"], made["seconds"])
        return made

    for seed in settings.seeds:
        shared = results.get(seed, STRATEGIES[0], sizes[0])
        if shared is None:
            pool = pool or load_pool(project_folder, settings, cache_dir)
            shared = point(seed, STRATEGIES[0], sizes[0], first_read(pool, sizes[0], seed))
        for strategy in STRATEGIES:
            if results.get(seed, strategy, sizes[0]) is None:  # the same first model for both orders
                results.put(seed, strategy, sizes[0], {**shared, "strategy": strategy})
            previous = results.get(seed, strategy, sizes[0])
            for size in sizes[1:]:
                done = results.get(seed, strategy, size)
                if done is None:
                    pool = pool or load_pool(project_folder, settings, cache_dir)
                    position = {pid: i for i, pid in enumerate(pool.ids)}
                    read = [position[i] for i in previous["read_ids"]]
                    rng = np.random.default_rng([seed, 1, size])  # per step: a resumed run draws the same
                    read = sorted(read + next_read(pool, read, previous, strategy, size - len(read), rng))
                    done = point(seed, strategy, size, read)
                previous = done
    data = results.data
    table = table_markdown(data, sizes)
    atomic_write_text(out / "active_learning.md", table)
    if png:
        curve_png(out / "active_learning.png", data, sizes)
    return {**data, "table": table, "trained": trained}


def summary(data: dict[str, Any], sizes: list[int]) -> dict[str, dict[int, tuple[float, float, int]]]:
    """strategy → size → (mean AUC, sd over seeds, seeds)."""
    out: dict[str, dict[int, tuple[float, float, int]]] = {}
    for strategy in STRATEGIES:
        for size in sizes:
            aucs = [p["val_auc"] for p in data["points"].values() if p["strategy"] == strategy and p["read"] == size]
            if aucs:
                sd = float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0
                out.setdefault(strategy, {})[size] = (float(np.mean(aucs)), sd, len(aucs))
    return out


def table_markdown(data: dict[str, Any], sizes: list[int]) -> str:
    s = summary(data, sizes)
    lines = ["| images read | " + " | ".join(LABELS[k] for k in STRATEGIES) + " | queue − random |",
             "|---:|" + "---:|" * (len(STRATEGIES) + 1)]
    for size in sizes:
        cells, means = [], []
        for strategy in STRATEGIES:
            got = s.get(strategy, {}).get(size)
            cells.append(f"{got[0]:.3f} ± {got[1]:.3f} (n={got[2]})" if got else "–")
            means.append(got[0] if got else None)
        diff = f"{means[0] - means[1]:+.3f}" if None not in means else "–"
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {diff} |")
    cfg = data["settings"]
    lines += ["", f"Validation ROC AUC, mean ± sd over seeds {cfg['seeds']}; {cfg['arch']} at {cfg['input_size']} px"
              f"{' cropped to the body' if cfg['crop_to_body'] else ''}, {cfg['head']} head, ≥ {cfg['min_steps']} "
              f"steps of {cfg['batch_size']}; body parts: {', '.join(cfg['body_parts']) or 'all'}."]
    return "\n".join(lines) + "\n"


def curve_png(path: Path, data: dict[str, Any], sizes: list[int]) -> None:
    """Mean AUC against images read, one line per order, ± sd as whiskers (Pillow, like the
    experiment's ROC plots: matplotlib is not a dependency)."""
    from PIL import Image, ImageDraw

    from lesion_studio.experiment.report import _font

    s = summary(data, sizes)
    values = [m + d * sign for per in s.values() for m, d, _ in per.values() for sign in (-1, 1)]
    lo = math.floor(min(values, default=0.5) * 20) / 20
    hi = math.ceil(max(values, default=1.0) * 20) / 20
    hi = hi if hi > lo else lo + 0.05
    w, h, m = 640, 440, 64
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    span_x = max(sizes[-1] - sizes[0], 1)

    def xy(size: float, value: float) -> tuple[float, float]:
        return m + (size - sizes[0]) / span_x * (w - 2 * m), h - m - (value - lo) / (hi - lo) * (h - 2 * m)

    d.rectangle([m, m, w - m, h - m], outline="black")
    for size in sizes:
        x, y = xy(size, lo)
        d.line([(x, y), (x, y + 5)], fill="black")
        d.text((x - 10, y + 8), str(size), fill="black", font=_font(12))
    for v in np.arange(lo, hi + 1e-9, 0.05):
        x, y = xy(sizes[0], float(v))
        d.line([(x - 5, y), (x, y)], fill="black")
        d.text((x - 40, y - 7), f"{v:.2f}", fill="black", font=_font(12))
    d.text((w / 2 - 60, h - 28), "training images read", fill="black", font=_font(14))
    d.text((8, 16), "validation ROC AUC (mean ± sd over seeds)", fill="black", font=_font(14))
    colours = {"uncertainty": (200, 60, 40), "random": (90, 90, 90)}
    for i, strategy in enumerate(STRATEGIES):
        per = s.get(strategy, {})
        points = [xy(size, per[size][0]) for size in sizes if size in per]
        if len(points) > 1:
            d.line(points, fill=colours[strategy], width=3)
        for size in per:
            mean, sd, _ = per[size]
            (x, y0), (_, y1) = xy(size, mean - sd), xy(size, mean + sd)
            d.line([(x + 3 * (i - 0.5), y0), (x + 3 * (i - 0.5), y1)], fill=colours[strategy], width=1)
            d.ellipse([x - 3, xy(size, mean)[1] - 3, x + 3, xy(size, mean)[1] + 3], fill=colours[strategy])
        d.line([(w - m - 200, m + 14 + 18 * i), (w - m - 180, m + 14 + 18 * i)], fill=colours[strategy], width=3)
        d.text((w - m - 175, m + 7 + 18 * i), LABELS[strategy], fill="black", font=_font(13))
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("project", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "active-learning")
    p.add_argument("--body-parts", default="", help="comma-separated (default: all)")
    p.add_argument("--start", type=int, default=50)
    p.add_argument("--stop", type=int, default=300)
    p.add_argument("--step", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arch", default="drn_d_22_half")
    p.add_argument("--size", type=int, default=96, help="input size in pixels")
    p.add_argument("--no-crop", action="store_true", help="do not crop to the body")
    p.add_argument("--head", default="image", choices=("image", "image+map"))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--min-steps", type=int, default=60, help="optimizer steps per training at least")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--cache-dir", type=Path, help="prepared-image cache (default: the project's)")
    p.add_argument("--png", action="store_true", help="also draw active_learning.png")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    settings = Settings(body_parts=[b.strip() for b in args.body_parts.split(",") if b.strip()], start=args.start,
                        stop=args.stop, step=args.step, seeds=args.seeds, arch=args.arch, input_size=args.size,
                        crop_to_body=not args.no_crop, head=args.head, batch_size=args.batch,
                        min_steps=args.min_steps, lr=args.lr)
    result = simulate(args.project, args.out, settings, cache_dir=args.cache_dir, png=args.png)
    print(result["table"])
    print(f"{result['trained']} model(s) trained in this run; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
