"""Train the DRN lesion classifier on full radiographs (the paper's baseline and augmented models).

Conventions shared with the GAN trainer (see ``training/common.py``): ``device="auto"``, mixed
precision on GPU, a progress callback (one event per batch, and one per epoch carrying the
validation AUC), a cancel token polled between batches, per-step seeded randomness, atomic
safetensors checkpoints, resume, and torchrun/DDP (each rank trains on its shard of the epoch).

Files in ``out_dir``: ``last.safetensors`` (model + optimizer at the end of the latest epoch: what
resume reads) and ``model.safetensors`` (the selected weights: best validation AUC, or the last
epoch). Resume is epoch-granular: a crash mid-epoch replays that epoch from its seeded start, so
the resumed run equals the uninterrupted one.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.classifier.config import ClassifierConfig
from lesion_studio.classifier.data import LabelledSet, epoch_order
from lesion_studio.config import to_dict
from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require
from lesion_studio.files import file_sha256, remove_stale_temp_files
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.models import layout
from lesion_studio.models.checkpoint import (
    check_state_shapes,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
    select_device,
)
from lesion_studio.models.layout import DRN_FORMAT, LAST, WEIGHTS
from lesion_studio.training.common import Distributed, autocast, conv_memory_format, step_generator, unwrap

if TYPE_CHECKING:
    from lesion_studio.store.project import Project
    from lesion_studio.training.warm_start import WarmStart

torch = require("torch", "Classifier training")


log = logging.getLogger(__name__)



@dataclass
class TrainResult:
    path: Path  # the selected weights (model.safetensors)
    sha256: str
    val_auc: float | None
    epoch: int  # the epoch whose weights were selected (1-based)
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0


def data_fingerprint(data: LabelledSet) -> str:
    """What the training data is, for resume: every example and label (and, when the set carries
    lesion masks, every box: a moved box changes what the map head learns)."""
    h = hashlib.sha256()
    for e, y in zip(data.examples, data.labels, strict=True):
        h.update(f"{e.key}:{int(y)};".encode())
        if data.masks is not None and e.boxes:
            h.update(repr([tuple(round(v, 3) for v in b) for b in e.boxes]).encode())
    return h.hexdigest()[:16]


def predict(model: torch.nn.Module, arrays: np.ndarray, *, device: torch.device, batch_size: int = 32,
            amp: bool = False, tta: str = "none") -> np.ndarray:
    """Lesion probabilities for prepared (N, S, S) arrays; ``tta="hflip"`` averages the image's and
    its mirror image's probabilities (``ClassifierConfig.tta``)."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.asarray(arrays[i:i + batch_size], dtype=np.float32)).unsqueeze(1).to(device)
            with autocast(device, amp):
                p = torch.sigmoid(model(x).float()[:, 0])
                if tta == "hflip":
                    p = 0.5 * (p + torch.sigmoid(model(torch.flip(x, dims=(3,))).float()[:, 0]))
            out.append(p.cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def predict_localisation(model: torch.nn.Module, arrays: np.ndarray, *, device: torch.device,
                         batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N,), localisation maps (N, h, w) as probabilities) for prepared arrays: the lesion
    map of a network with the map head, else the sigmoid of the class-activation map."""
    model.eval()
    scores, maps = [], []
    with torch.no_grad():
        for i in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.asarray(arrays[i:i + batch_size], dtype=np.float32)).unsqueeze(1).to(device)
            score, loc = model.score_and_localisation(x)
            scores.append(torch.sigmoid(score.float()).cpu().numpy())
            maps.append(torch.sigmoid(loc.float()).cpu().numpy())
    if not scores:
        return np.zeros(0, np.float32), np.zeros((0, 1, 1), np.float32)
    return np.concatenate(scores), np.concatenate(maps)


def lesion_map_loss(map_logits: torch.Tensor, masks: torch.Tensor, mapped: torch.Tensor) -> torch.Tensor:
    """The lesion-map head's loss: per-cell binary cross-entropy against the share of each map
    cell the lesion boxes cover (the input-frame masks averaged down to the map's size), over the
    examples whose map is known (``mapped``: normal images, and lesions with boxes).

    Lesions cover a few cells of a radiograph's map, so lesion cells and background cells are
    averaged separately and the two means added: otherwise the easy answer "no lesion anywhere"
    would already score 99 % of the loss.
    """
    keep = mapped.to(torch.bool)
    if not bool(keep.any()):
        return map_logits.sum() * 0.0
    logits = map_logits[keep].float()
    target = torch.nn.functional.adaptive_avg_pool2d(masks[keep].float(), logits.shape[-2:])[:, 0]
    per_cell = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pos, neg = target, 1.0 - target
    loss = (per_cell * neg).sum() / neg.sum().clamp(min=1e-6)
    if float(pos.sum()) > 0:
        loss = loss + (per_cell * pos).sum() / pos.sum()
    return loss


def scheduled_lr(config: ClassifierConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate at optimizer step ``step`` (0-based).

    ``constant``: ``lr`` throughout. ``cosine``: a linear warm-up over the first epoch (a DRN
    trained from scratch with Adam at full rate on a few hundred images oscillates early), then a
    cosine decay to 1% of ``lr`` at the last step: the late, small steps are what let a short CPU
    run settle instead of ending mid-jump.
    """
    if config.schedule == "constant":
        return config.lr
    total = max(1, steps_per_epoch * config.epochs)
    warm = min(steps_per_epoch, total // 4)
    if step < warm:
        return config.lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm - 1)
    return config.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def ema_decay(half_life_epochs: float, steps_per_epoch: int) -> float:
    """The per-step decay of a moving average whose steps lose half their weight in
    ``half_life_epochs`` epochs of ``steps_per_epoch`` steps."""
    return 0.5 ** (1.0 / max(1e-9, half_life_epochs * max(1, steps_per_epoch)))


def weight_average(config: ClassifierConfig, model: torch.nn.Module, steps_per_epoch: int) -> Any:
    """The moving average of ``model``'s weights and batch-norm statistics that ``config`` asks
    for (``weight_average: ema``; ``torch.optim.swa_utils.AveragedModel``), else None. It starts
    from the model's current weights at its first update."""
    if config.weight_average != "ema":
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay = ema_decay(config.ema_half_life, steps_per_epoch)
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _val_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if labels.min() == labels.max():
        return None
    from lesion_studio.evaluate.metrics import auc

    return auc(labels, scores)


class ClassifierTrainer:
    """Fits one classifier; construct, then call :meth:`fit` (which resumes when it can)."""

    def __init__(
        self, config: ClassifierConfig, train: LabelledSet, val: LabelledSet | None, out_dir: str | Path, *,
        progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
        metadata: dict[str, Any] | None = None, pretrain_epochs: int | None = None,
        init_from: WarmStart | None = None,
    ) -> None:
        if len(train) == 0:
            raise LesionStudioError("The classifier has no training images.")
        if pretrain_epochs is not None and not 0 <= pretrain_epochs <= config.epochs:
            raise LesionStudioError(f"pretrain_epochs must lie in 0..{config.epochs}, not {pretrain_epochs}.")
        #: With synthetic images in ``train``: the epochs that use them; later epochs fine-tune on
        #: the real images only (None: every epoch uses everything).
        self.pretrain_epochs = pretrain_epochs
        #: Weights the network starts from instead of its seeded random ones (the warm start).
        self.init_from = init_from
        self.config = config
        self.train = train
        self.val = val
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.cancel = cancel or CancelToken()
        self.metadata = metadata or {}
        self.dist = Distributed.from_env(config.device)
        self.device = select_device(config.device, self.dist.local_rank if self.dist.initialised else None)
        self.memory_format = torch.channels_last  # fit() settles it for the network it builds
        self._resumed_average: dict[str, Any] | None = None  # the weight average a resume read

    @property
    def last_path(self) -> Path:
        return self.out_dir / LAST

    @property
    def model_path(self) -> Path:
        return self.out_dir / WEIGHTS

    def _identity(self) -> dict[str, str]:
        identity = {"config_hash": self.config.training_hash(), "train_data": data_fingerprint(self.train),
                    "val_data": data_fingerprint(self.val) if self.val is not None else ""}
        if self.pretrain_epochs is not None:
            identity["pretrain_epochs"] = str(self.pretrain_epochs)
        if self.init_from is not None:
            identity["init_from"] = self.init_from.sha256
        return identity

    def _network(self) -> torch.nn.Module:
        """The configured network (with its lesion-map head when the config asks for one): the one
        place that says which network this trainer trains, for building and for checking a
        checkpoint before resuming from it."""
        from lesion_studio.models.drn import build_drn

        return build_drn(self.config.arch, lesion_map=self.config.head == "image+map")

    def _build(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(self.config.seed)  # identical initial weights on every rank and every run
        model = self._network()
        if self.init_from is not None:
            model.load_state_dict(self.init_from.state(self._network))
        model = model.to(self.device)
        if self.config.optimizer == "adam":
            opt = torch.optim.AdamW(model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=self.config.lr, momentum=0.9,
                                  weight_decay=self.config.weight_decay)
        return model, opt

    def _try_resume(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any] | None:
        """The metadata of the checkpoint training continues from (its weights loaded), or None.

        Only a checkpoint whose tensors check out (hash, finite values) and hold every key of this
        network and an optimizer state is used, else the previous one; when neither is usable the
        run starts again from its seeded beginning, which ends in the same weights."""
        if not has_checkpoint(self.last_path):
            return None

        def check(states: dict[str, Any], meta: dict[str, Any]) -> None:
            if not isinstance(states.get("optimizer"), dict) or not isinstance(meta.get("epoch"), int):
                raise LesionStudioError(f"{self.last_path.name} lacks the optimizer state or epoch resume needs.")
            if self.config.weight_average != "none" and not isinstance(states.get("average"), dict):
                raise LesionStudioError(f"{self.last_path.name} lacks the weight average resume needs.")
            check_state_shapes(self._network, states.get("model") or {},
                               f"{self.last_path.name} (classifier)")

        try:
            states, meta = load_checkpoint(self.last_path, check=check)
        except LesionStudioError as exc:
            log.warning("not resuming, training from the start: %s", exc)
            return None
        if meta.get("identity") != self._identity():
            log.info("not resuming from %s: settings or data changed", self.last_path)
            return None
        model.load_state_dict(states["model"])
        try:
            opt.load_state_dict(states["optimizer"])
        except (ValueError, KeyError, RuntimeError) as exc:
            log.warning("not resuming, training from the start: the optimizer state does not fit (%s)", exc)
            model.load_state_dict(self._build()[0].state_dict())  # the seeded initial weights again
            return None
        log.info("resuming classifier training after epoch %d", meta["epoch"])
        self._resumed_average = states.get("average")
        return meta

    def _checkpoint_meta(self, epoch: int, history: list[dict[str, Any]], best: dict[str, Any]) -> dict[str, Any]:
        return {"format": DRN_FORMAT, "kind": "drn", "arch": self.config.arch,
                "config": to_dict(self.config), "preprocessing": self.config.preprocessing.to_dict(),
                "epoch": epoch, "history": history, "best": best, "identity": self._identity(),
                "train_summary": self.train.summary(),
                "val_summary": self.val.summary() if self.val is not None else None, **self.metadata}

    def _batch(self, idx: np.ndarray, step: int, mapped: np.ndarray) -> tuple[torch.Tensor, ...]:
        """One training batch: images (augmented, cropped), labels, masks and the mapped flags, on
        the device. The random warp and crop come from the step's own generator (resume-exact)."""
        from lesion_studio.classifier.augment import (
            crop_batch,
            crop_labels,
            crop_origins,
            random_affine,
            random_intensity,
            warp,
        )
        from lesion_studio.classifier.preprocess import BACKGROUND, MEAN, STD

        cfg = self.config
        x = torch.from_numpy(self.train.arrays[idx].astype(np.float32)).unsqueeze(1)
        y = torch.from_numpy(self.train.labels[idx].astype(np.float32))
        m = torch.from_numpy(self.train.masks[idx].astype(np.float32)).unsqueeze(1) \
            if self.train.masks is not None else None
        has = torch.from_numpy(mapped[idx])
        gen = step_generator(cfg.seed, step, stream=2)
        if cfg.augment:
            theta = random_affine(len(idx), self.affine, gen)
            x = warp(x, theta, fill=BACKGROUND)
            if m is not None:
                m = warp(m, theta)
            x = random_intensity(x, cfg.intensity_jitter, gen, mean=MEAN, std=STD)
        crop = cfg.train_crop
        if crop and crop < cfg.input_size:
            origins = crop_origins(m, has, cfg.input_size, crop, cfg.crop_lesion_prob, gen)
            x = crop_batch(x, origins, crop)
            if m is not None:
                m = crop_batch(m, origins, crop)
                y = crop_labels(m, has, y)
        x = x.to(self.device).contiguous(memory_format=self.memory_format)
        return x, y.to(self.device), (m.to(self.device) if m is not None else None), has.to(self.device)

    @property
    def affine(self):  # noqa: ANN201 - AffineRange, imported lazily with torch
        from lesion_studio.classifier.augment import AffineRange

        cfg = self.config
        return AffineRange(cfg.rotation_deg, cfg.translate, cfg.scale_min, cfg.scale_max, cfg.hflip)

    def _epoch_indices(self, epoch: int) -> np.ndarray:
        """The examples one epoch draws from: all of them, except that added synthetic images
        leave after ``pretrain_epochs`` (pretrain on real + synthetic, then fine-tune on real)."""
        everything = np.arange(len(self.train))
        if self.pretrain_epochs is None or epoch < self.pretrain_epochs:
            return everything
        return everything[~np.array([e.synthetic for e in self.train.examples], dtype=bool)]

    def fit(self, *, resume: bool = True) -> TrainResult:
        cfg = self.config
        if self.dist.is_main:
            remove_stale_temp_files(self.out_dir)
        model, opt = self._build()
        meta = self._try_resume(model, opt) if resume else None
        start = int(meta["epoch"]) if meta else 0
        history: list[dict[str, Any]] = list(meta["history"]) if meta else []
        best: dict[str, Any] = dict(meta["best"]) if meta else {"epoch": 0, "val_auc": None, "sha256": ""}
        self.memory_format = conv_memory_format(model)  # channels-last where oneDNN allows it
        model = model.to(memory_format=self.memory_format)
        ddp_model = self.dist.wrap(model, self.device)
        with_map = cfg.head == "image+map"
        if with_map and self.train.masks is None:
            raise LesionStudioError("The lesion-map head needs the training set's lesion masks.")
        run = self._fitting(ddp_model, opt, with_map, start)
        if run.average is not None and meta:
            run.average.load_state_dict(self._resumed_average)
        for epoch in range(start, cfg.epochs):
            running, running_map, seen = self._train_epoch(run, epoch)
            history.append(self._epoch_record(run, epoch, running, running_map, seen))
            if self.dist.is_main:
                best = self._keep_epoch(run, epoch, history, best)
            self.dist.barrier()
        if not self.model_path.exists():
            raise LesionStudioError(f"Training finished but {self.model_path} was not written.")
        sha = file_sha256(self.model_path)
        return TrainResult(path=self.model_path, sha256=sha, val_auc=best.get("val_auc"), epoch=best["epoch"],
                           epochs_done=len(history), history=history, resumed_from=start)

    def _fitting(self, ddp_model: torch.nn.Module, opt: torch.optim.Optimizer, with_map: bool,
                 start: int) -> _Fit:
        """The loss (weighted by the class balance when ``balance`` is "loss"), the gradient scaler
        and the step schedule of a fit that starts after epoch ``start``."""
        cfg = self.config
        labels = self.train.labels
        mapped = self.train.mapped
        pos = float(labels.sum())
        pos_weight = None
        if cfg.balance == "loss" and pos > 0:
            pos_weight = torch.tensor([(len(labels) - pos) / pos], device=self.device)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        use_scaler = self.device.type == "cuda" and cfg.amp and not torch.cuda.is_bf16_supported()
        scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

        # One epoch is as many draws as there are distinct real training images, whatever was
        # added (repeats, synthetic images): every arm of an experiment trains for the same number
        # of steps, so a difference between arms is the data's, not a longer schedule's.
        # Every rank gets a shard of the same length (the epoch order is padded by repeating its
        # start, as DistributedSampler does): a rank with one batch fewer would leave the others
        # waiting in all-reduce forever.
        epoch_draws = self.train.real_count
        shard = math.ceil(epoch_draws / self.dist.world_size)
        steps_per_epoch = math.ceil(shard / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        clock = EtaClock(total_steps, start_done=start * steps_per_epoch)
        return _Fit(ddp_model, opt, loss_fn, scaler, with_map, mapped, epoch_draws, shard, steps_per_epoch,
                    total_steps, clock, weight_average(cfg, unwrap(ddp_model), steps_per_epoch))

    def _train_epoch(self, run: _Fit, epoch: int) -> tuple[float, float, int]:
        """One epoch's steps on this rank's shard of the epoch's seeded order, a progress event per
        step (on rank 0): (summed loss, summed map loss, examples seen)."""
        cfg = self.config
        labels = self.train.labels
        pool = self._epoch_indices(epoch)
        order = pool[epoch_order(labels[pool], cfg.balance, step_generator(cfg.seed, epoch, stream=1),
                                 draws=run.epoch_draws)]
        if self.dist.world_size > 1:
            order = np.resize(order, run.shard * self.dist.world_size)[self.dist.rank::self.dist.world_size]
        run.model.train()
        running, running_map, seen = 0.0, 0.0, 0
        for b in range(run.steps_per_epoch):
            self.cancel.raise_if_cancelled("Classifier training")
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if len(idx) == 0:
                continue
            step = epoch * run.steps_per_epoch + b
            loss, map_loss = self._train_step(run, idx, step)
            running += float(loss.detach()) * len(idx)
            running_map += float(map_loss.detach()) * len(idx) if map_loss is not None else 0.0
            seen += len(idx)
            done = step + 1
            if self.dist.is_main:
                data = {"loss": running / seen}
                if run.with_map:
                    data["map_loss"] = running_map / seen
                self.progress(ProgressEvent("training classifier", done, run.total_steps,
                                            f"epoch {epoch + 1}/{cfg.epochs} loss {running / seen:.3f}",
                                            eta_s=run.clock.eta(done), data=data))
        return running, running_map, seen

    def _train_step(self, run: _Fit, idx: np.ndarray, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One optimizer step on the examples ``idx`` at the scheduled rate: (loss, map loss or None)."""
        cfg = self.config
        x, y, m, has = self._batch(idx, step, run.mapped)
        lr = scheduled_lr(cfg, step, run.steps_per_epoch)
        for group in run.opt.param_groups:
            group["lr"] = lr
        with autocast(self.device, cfg.amp):
            if run.with_map:
                image_logits, map_logits = run.model(x, heads=True)
            else:
                image_logits, map_logits = run.model(x), None
        loss = run.loss_fn(image_logits[:, 0].float(), y)
        map_loss = None
        if map_logits is not None and m is not None:
            map_loss = lesion_map_loss(map_logits, m, has)
            loss = loss + cfg.map_weight * map_loss
        run.opt.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
        if run.average is not None:
            run.average.update_parameters(unwrap(run.model))
        return loss, map_loss

    def _epoch_record(self, run: _Fit, epoch: int, running: float, running_map: float, seen: int) -> dict[str, Any]:
        """The epoch's history entry: its mean losses over the ranks and its validation AUC."""
        cfg = self.config
        self.dist.sync_buffers(run.model)
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": self.dist.mean(running / max(seen, 1))}
        if run.with_map:
            record["map_loss"] = self.dist.mean(running_map / max(seen, 1))
        if self.val is not None and len(self.val):
            scores = predict(run.scored, self.val.arrays, device=self.device,
                             batch_size=cfg.eval_batch_size, amp=cfg.amp, tta=cfg.tta)
            record["val_auc"] = _val_auc(self.val.labels, scores)
        return record

    def _keep_epoch(self, run: _Fit, epoch: int, history: list[dict[str, Any]],
                    best: dict[str, Any]) -> dict[str, Any]:
        """Rank 0 after an epoch: the selected weights when the epoch is the best so far (or the
        last, with ``select`` "last"), the resume checkpoint, and the epoch's progress event.
        Returns the best epoch so far."""
        cfg = self.config
        record = history[-1]
        improved = cfg.select == "last" or best["epoch"] == 0 or (
            record.get("val_auc") is not None
            and (best["val_auc"] is None or record["val_auc"] > best["val_auc"]))
        if improved:
            best = {"epoch": epoch + 1, "val_auc": record.get("val_auc")}
            best["sha256"] = save_checkpoint(self.model_path, {"model": _plain_state(run.scored)},
                                             self._checkpoint_meta(epoch + 1, history, best))
        states = {"model": _plain_state(unwrap(run.model)), "optimizer": run.opt.state_dict()}
        if run.average is not None:
            states["average"] = _plain_state(run.average)
        save_checkpoint(self.last_path, states, self._checkpoint_meta(epoch + 1, history, best), keep_previous=True)
        val_txt = f" val AUC {record['val_auc']:.3f}" if record.get("val_auc") is not None else ""
        self.progress(ProgressEvent("classifier epoch", epoch + 1, cfg.epochs,
                                    f"loss {record['loss']:.3f}{val_txt}", data=dict(record)))
        return best


@dataclass
class _Fit:
    """What one call of :meth:`ClassifierTrainer.fit` trains with: the network (DDP-wrapped when
    distributed), its optimizer, loss and gradient scaler, which examples the map loss may learn
    from, and the step schedule (every rank's shard of an epoch has one length)."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    loss_fn: torch.nn.Module
    scaler: Any
    with_map: bool
    mapped: np.ndarray
    epoch_draws: int
    shard: int
    steps_per_epoch: int
    total_steps: int
    clock: EtaClock
    #: The moving average of the weights (``weight_average: ema``; ``torch.optim.swa_utils.
    #: AveragedModel``), else None: what is validated, selected and saved as the model.
    average: Any = None

    @property
    def scored(self) -> torch.nn.Module:
        """The network whose scores count: the weight average when there is one."""
        return self.average.module if self.average is not None else unwrap(self.model)


def _plain_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict in the contiguous (NCHW) layout checkpoints are stored and loaded in."""
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def _prepared_dir(project: Project, cache_dir: Path | None) -> Path:
    """The prepared-image cache a training run reads: the given one, else the project's."""
    return cache_dir if cache_dir is not None else project.subfolder("cache") / "classifier"


def train_classifier(
    project: Project, config: ClassifierConfig, *, name: str, out_dir: str | Path | None = None,
    body_parts: list[str] | None = None, include_excluded: bool = False, synthetic: Any = (),
    register: bool = True, resume: bool = True, progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None, cache_dir: Path | None = None, repeats: Any = (),
    pretrain_epochs: int | None = None,
) -> tuple[TrainResult, int | None]:
    """Train on a project's training split (+ synthetic samples, + ``repeats``: training image ids
    seen twice) and register the model (kind "drn"). ``pretrain_epochs``: the synthetic samples
    take part in the first epochs only, the rest fine-tune on the real images.

    Returns (result, model id or None when not registered / not rank 0).
    """
    from lesion_studio.classifier.data import evaluation_set, training_set
    from lesion_studio.classifier.preprocess import PreparedCache

    out = Path(out_dir) if out_dir else layout.classifier_dir(project.folder, name)  # checks the name first
    prep = config.preprocessing
    prepared_dir = _prepared_dir(project, cache_dir)
    cache = PreparedCache(prep, prepared_dir)
    masks = config.head == "image+map"
    train = training_set(project, cache, body_parts, include_excluded=include_excluded, synthetic=synthetic,
                         progress=progress, masks=masks, repeats=list(repeats),
                         fraction=config.train_fraction, fraction_seed=config.seed)
    try:
        val = evaluation_set(project, "val", cache, body_parts, include_excluded=include_excluded,
                             progress=progress)
    except LesionStudioError:
        log.warning("no validation images%s: the last epoch is kept",
                    f" for {', '.join(body_parts)}" if body_parts else "")
        val = None
    init = None
    if config.warm_start_parts:
        init = warm_start(project, config, include_excluded=include_excluded, progress=progress, cancel=cancel,
                          cache_dir=prepared_dir)
    trainer = ClassifierTrainer(config, train, val, out, progress=progress, cancel=cancel,
                                metadata={"name": name, "body_parts": list(body_parts or []),
                                          **({"warm_start": init.describe()} if init else {})},
                                pretrain_epochs=pretrain_epochs, init_from=init)
    result = trainer.fit(resume=resume)
    model_id = None
    losses = [h.get("loss") for h in result.history[-1:]]
    if any(not isinstance(v, int | float) or not math.isfinite(v) for v in losses):
        raise LesionStudioError(f"Training {name} diverged: the last epoch's loss is {losses[0]}, so the model is "
                                "not registered. Train again with a lower learning rate.")
    if register and trainer.dist.is_main:
        model_id = project.register_model(
            name, "drn", result.path, sha256=result.sha256, body_parts=body_parts or (),
            config=to_dict(config), replace_existing=True,
            metadata={"val_auc": result.val_auc, "epoch": result.epoch, "train": train.summary(),
                      "preprocessing": prep.to_dict()},
        )
    return result, model_id


def warm_start(project: Project, config: ClassifierConfig, *, include_excluded: bool = False,
               progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
               cache_dir: Path | None = None) -> WarmStart:
    """The warm-start weights ``config`` asks for: trained now, resumed, or read from the cache."""
    from lesion_studio.classifier.data import training_set
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.training.warm_start import (
        WARM_START_FOLDER,
        WarmStart,
        warm_start_config,
        warm_start_key,
    )

    if not config.warm_start_parts:
        raise LesionStudioError("This classifier asks for no warm start (classifier.warm_start_parts is empty).")
    parts = config.warm_start_body_parts
    wcfg = warm_start_config(config)
    cache = PreparedCache(wcfg.preprocessing, _prepared_dir(project, cache_dir))
    train = training_set(project, cache, parts, include_excluded=include_excluded, progress=progress,
                         masks=wcfg.head == "image+map")
    out = project.subfolder("cache") / WARM_START_FOLDER / warm_start_key(wcfg, data_fingerprint(train))
    what = ", ".join(parts) if parts else "every body part"
    log.info("warm start: %d training images of %s, %d epochs (%s)", len(train), what, wcfg.epochs, out)
    progress(ProgressEvent("warm start", 0, 1, f"pretraining on {len(train)} images of {what}"))
    trainer = ClassifierTrainer(wcfg, train, None, out, progress=progress, cancel=cancel,
                                metadata={"name": f"warm start ({what})", "body_parts": parts or []})
    result = trainer.fit(resume=True)
    progress(ProgressEvent("warm start", 1, 1, f"pretrained on {len(train)} images of {what}"))
    return WarmStart(path=result.path, sha256=result.sha256, body_parts=parts, images=len(train),
                     epochs=wcfg.epochs)
