"""Train UNIT (lesion ↔ healthy) on a project's patches: one trainer for CLI, GUI and torchrun.

    result = train_unit(project, preset_config("fast", iterations=5000, body_parts=["hand"]),
                        progress=callback, cancel=token)

Every iteration reports a :class:`ProgressEvent` (losses, ETA); every ``sample_every`` iterations
the event also carries translated sample patches (and a PNG is written). Checkpoints are written
atomically every ``checkpoint_every`` iterations, on cancel and at the end; ``resume=True``
continues from the last one and draws exactly the batches and noise the uninterrupted run would
have drawn (both come from generators seeded by (seed, iteration), see ``training.common``).
Under ``torchrun --nproc_per_node=N`` the same code runs with DistributedDataParallel; rank r
takes the r-th slice of every global batch and only rank 0 writes files or reports progress.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.config import to_dict, write_config_file
from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.extras import require
from lesion_studio.files import atomic_write, remove_stale_temp_files
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.models import layout
from lesion_studio.models.layout import (
    CHECKPOINT,
    CONFIG,
    HISTORY,
    ONNX,
    ONNX_L2H,
    ONNX_RESIDUAL,
    QUALITY_HISTORY,
    SAMPLES,
    WEIGHTS,
)
from lesion_studio.training.unit_config import RUN_FIELDS, UnitTrainConfig, default_model_name, load_config

torch = require("torch", "Training the GAN")

from lesion_studio.models import checkpoint  # noqa: E402
from lesion_studio.models.unit import (  # noqa: E402
    loss_terms,
    unit_discriminators,
    unit_generators,
)
from lesion_studio.training import common  # noqa: E402
from lesion_studio.training.unit_files import save_unit_model  # noqa: E402

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

LOSS_NAMES = ("dis", "gan", "recon", "kl", "cycle", "cycle_kl", "total")
LOSS_READ_EVERY_GPU = 25  # iterations between loss reads (host syncs) on a GPU; progress comes in bursts


def _augmenter(cfg: UnitTrainConfig, it: int, rank: int) -> Any:
    """The discriminator-input transform of iteration ``it`` (identity without a DiffAugment policy)."""
    from lesion_studio.training.diffaugment import diff_augment
    from lesion_studio.training.unit_config import parse_policy

    policy = parse_policy(cfg.diff_augment)
    if not policy:
        return lambda x: x
    g = common.step_generator(cfg.seed, it, 3 + rank * 8)
    return lambda x: diff_augment(x, policy, g)


# ---------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    name: str
    model_id: int | None
    model_dir: Path
    iteration: int
    iterations: int
    losses: dict[str, float]
    first_losses: dict[str, float]
    seconds: float
    iterations_per_s: float
    data_summary: dict[str, Any]
    onnx_path: Path | None
    cancelled: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    quality: dict[str, Any] | None = None  # the last generator quality report (config ``assess``)
    quality_history: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------- trainer
class UnitTrainer:
    """One UNIT training run. Build it, then call :meth:`run`."""

    def __init__(self, project: Project, config: UnitTrainConfig, *, name: str | None = None, resume: bool = False,
                 progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
                 patch_cache: str = "disk") -> None:
        self.project = project
        self.name = name or default_model_name(config)
        self.model_dir = layout.unit_dir(project.folder, self.name)
        self.resume = resume
        self.progress = progress
        self.cancel = cancel
        self.patch_cache = patch_cache
        self.config = self._resolve_config(config)
        self.history: list[dict[str, float]] = []
        self.quality_history: list[dict[str, Any]] = []
        self._quality_context: Any = None
        self.precision = "fp32"  # what the run computes in, set when it starts (cpu_bf16 "auto" resolves then)

    def _resolve_config(self, config: UnitTrainConfig) -> UnitTrainConfig:
        """On resume the saved config wins, except the fields of ``unit_config.RUN_FIELDS`` (length, device...)."""
        ckpt = self.model_dir / CHECKPOINT
        if not self.resume:
            existing = [m for m in self.project.models(kind="unit") if m.name == self.name]
            if existing or checkpoint.has_checkpoint(ckpt):
                raise LesionStudioError(f"A model named {self.name!r} already exists in this project. "
                                        "Resume it (--resume) or choose another --name.")
            return config
        if not checkpoint.has_checkpoint(ckpt):
            if any(m.name == self.name for m in self.project.models()):
                raise LesionStudioError(f"Model {self.name!r} has no checkpoint to resume ({ckpt} is missing).")
            log.info("no checkpoint for %s yet: starting a new run", self.name)
            self.resume = False
            return config
        saved = load_config(self.model_dir / CONFIG)
        return replace(saved, **{f: getattr(config, f) for f in RUN_FIELDS})

    # ------------------------------------------------------------------ run
    def run(self) -> TrainResult:
        from lesion_studio.patches.dataset import build_patch_set

        cfg = self.config
        dist = common.Distributed.from_env(cfg.device)
        try:
            device = checkpoint.select_device(cfg.device, dist.local_rank if dist.initialised else None)
            if device.type == "cpu" and cfg.cpu_threads > 0:
                torch.set_num_threads(cfg.cpu_threads)
            common.seed_everything(cfg.seed)
            if not dist.is_main:
                dist.barrier()  # let rank 0 fill the patch cache first
            patches = build_patch_set(self.project, body_parts=cfg.body_parts or None, splits=cfg.splits or None,
                                      params=cfg.patch_params(), cache=self.patch_cache,
                                      progress=self.progress if dist.is_main else no_progress,
                                      cancel=self.cancel)
            if dist.is_main:
                dist.barrier()
            return self._train(patches, device, dist)
        finally:
            dist.close()

    def _train(self, patches: Any, device: Any, dist: common.Distributed) -> TrainResult:
        cfg = self.config
        arch = cfg.arch()
        nets = self._networks(arch, device)
        start = self._resume_from_checkpoint(nets, arch) if self.resume else 0
        nets.wrap(dist, cfg.compile_mode)
        run_id = self._start_run(dist)
        sample_l, sample_h = patches.sample(4, "lesion"), patches.sample(4, "normal")
        clock = EtaClock(cfg.iterations, start)
        t0 = time.perf_counter()
        # Losses stay on the device and are read every `read_every` iterations (and before every
        # sample, checkpoint and the end): each read is a host sync that stalls a GPU. On the CPU a
        # read costs microseconds, so progress stays per iteration there.
        losses = _LossReader(lambda values, i: self._report(values, i, dist, clock, nets, sample_l, sample_h, patches),
                             dist, read_every=1 if device.type == "cpu" else LOSS_READ_EVERY_GPU)
        try:
            it, cancelled = self._iterate(nets, patches, dist, start, losses)
        except BaseException:
            if run_id is not None:
                self.project.update_run(run_id, status="failed", finished=True)
            raise
        seconds = time.perf_counter() - t0
        done = it - start
        result = TrainResult(
            name=self.name, model_id=None, model_dir=self.model_dir, iteration=it, iterations=cfg.iterations,
            losses=self.history[-1] if self.history else {}, first_losses=self.history[0] if self.history else {},
            seconds=seconds, iterations_per_s=done / seconds if seconds > 0 and done else 0.0,
            data_summary=patches.summary(), onnx_path=None, cancelled=cancelled, history=list(self.history),
            quality=self.quality_history[-1] if self.quality_history else None,
            quality_history=list(self.quality_history))
        registered = [m for m in self.project.models(kind="unit") if m.name == self.name]
        if dist.is_main and done == 0 and registered and (self.model_dir / WEIGHTS).exists():
            result.model_id = registered[0].id  # resumed a finished run: nothing new to save
            result.onnx_path = (self.model_dir / ONNX) if (self.model_dir / ONNX).exists() else None
        elif dist.is_main:
            self._save_and_register(nets, result, patches, run_id)
        dist.barrier()
        return result

    def _networks(self, arch: Any, device: Any) -> _Nets:
        """The seeded generators and discriminators, their optimizers and schedulers, and the
        precision the run computes in (``self.precision``)."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        # channels-last: oneDNN (CPU) and cuDNN (tensor cores) run these convolutions without
        # re-ordering every activation; the maths is unchanged (common.conv_memory_format: the same
        # rule as the classifier's, which keeps a layout oneDNN crashes on out).
        gen = unit_generators(arch)
        gen = gen.to(device, memory_format=common.conv_memory_format(gen))
        dis = unit_discriminators(arch, cfg.dis_norm)
        dis = dis.to(device, memory_format=common.conv_memory_format(dis))
        opt_g, opt_d = _adam(gen.parameters(), cfg), _adam(dis.parameters(), cfg)
        sched_g = torch.optim.lr_scheduler.StepLR(opt_g, cfg.lr_step, cfg.lr_gamma)
        sched_d = torch.optim.lr_scheduler.StepLR(opt_d, cfg.lr_step, cfg.lr_gamma)
        amp = cfg.mixed_precision and device.type == "cuda"
        fp16 = amp and not torch.cuda.is_bf16_supported()
        scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        cpu_bf16 = common.use_cpu_bf16(cfg.cpu_bf16, device)
        self.precision = "bf16" if cpu_bf16 else ("fp16" if fp16 else "bf16-amp" if amp else "fp32")
        log.info("%s trains in %s on %s", self.name, self.precision, device)
        return _Nets(gen, dis, opt_g, opt_d, sched_g, sched_d, scaler, device, amp, cpu_bf16)

    def _resume_from_checkpoint(self, nets: _Nets, arch: Any) -> int:
        """Load the last checkpoint into ``nets`` and cut the histories back to it: its iteration."""
        states, meta = checkpoint.load_checkpoint(self.model_dir / CHECKPOINT,
                                                  check=lambda st, md: _check_resumable(st, md, arch, self.config))
        nets.gen.load_state_dict(states["gen"])
        nets.dis.load_state_dict(states["dis"])
        _load_adam(nets.opt_g, states["opt_g"])
        _load_adam(nets.opt_d, states["opt_d"])
        nets.sched_g.load_state_dict(states["sched_g"])
        nets.sched_d.load_state_dict(states["sched_d"])
        if states.get("scaler"):
            nets.scaler.load_state_dict(states["scaler"])
        start = int(meta["iteration"])
        self.history = self._read_history()[:start]
        self.quality_history = [q for q in self._read_json(QUALITY_HISTORY) if q.get("iteration", 0) <= start]
        log.info("resuming %s at iteration %d", self.name, start)
        return start

    def _start_run(self, dist: common.Distributed) -> int | None:
        """On rank 0: the project's run record (its id), the model folder swept of temporary files
        left by a killed run, and the config written. None on the other ranks."""
        if not dist.is_main:
            return None
        run_id = self.project.start_run("unit", name=self.name, config=to_dict(self.config),
                                        output_dir=self.model_dir)
        self.model_dir.mkdir(parents=True, exist_ok=True)
        for stale in remove_stale_temp_files(self.model_dir):
            log.info("removed %s, left by a run that was killed while saving", stale.name)
        write_config_file(self.model_dir / CONFIG, to_dict(self.config))
        return run_id

    def _iterate(self, nets: _Nets, patches: Any, dist: common.Distributed, start: int,
                 losses: _LossReader) -> tuple[int, bool]:
        """Train from iteration ``start`` to the configured count, or until a cancel (checked before
        each iteration): (the iteration reached, whether it was cancelled)."""
        cfg = self.config
        it = start
        weights = {"gan": cfg.gan_w, "recon": cfg.recon_w, "kl": cfg.kl_w, "cycle": cfg.cycle_w,
                   "cycle_kl": cfg.cycle_kl_w}
        latent = cfg.arch().latent_shape(cfg.batch_size, cfg.resolution, cfg.resolution)
        cancelled = False
        while it < cfg.iterations:
            if self.cancel is not None and self.cancel.cancelled:
                cancelled = True
                break
            losses.add(self._step(nets, patches, it, dist, weights, latent))
            it += 1
            if (it % losses.read_every == 0 or it % cfg.sample_every == 0 or it % cfg.checkpoint_every == 0
                    or it == cfg.iterations):
                losses.read(it)
        losses.read(it)  # a cancelled run still records every iteration it did
        return it, cancelled

    def _step(self, nets: _Nets, patches: Any, it: int, dist: common.Distributed, weights: dict[str, float],
              latent: tuple[int, ...]) -> torch.Tensor:
        """Iteration ``it``: a discriminator step, then a generator step, on the iteration's batch and
        noise (both seeded by the iteration). Returns its losses (``LOSS_NAMES``), still on the device."""
        cfg = self.config
        device, gen, dis, opt_g, opt_d, scaler = nets.device, nets.gen, nets.dis, nets.opt_g, nets.opt_d, nets.scaler
        x_l_np, x_h_np = patches.batch(it, cfg.batch_size, rank=dist.rank, world_size=dist.world_size)
        x_l = torch.from_numpy(x_l_np).to(device)
        x_h = torch.from_numpy(x_h_np).to(device)
        gen_noise = torch.randn((4, *latent), generator=common.step_generator(cfg.seed, it, 1 + dist.rank * 8))
        dis_noise = torch.randn((2, *latent), generator=common.step_generator(cfg.seed, it, 2 + dist.rank * 8))
        gen_noise, dis_noise = gen_noise.to(device), dis_noise.to(device)

        # discriminator step: fakes from the current generators, detached
        with torch.no_grad(), nets.autocast():
            fake_l = gen.decode(gen.encode(x_h, "h") + dis_noise[0], "l")
            fake_h = gen.decode(gen.encode(x_l, "l") + dis_noise[1], "h")
        opt_d.zero_grad(set_to_none=True)
        aug = _augmenter(cfg, it, dist.rank)
        dis.requires_grad_(True)
        with nets.autocast():
            loss_d = cfg.gan_w * nets.dis_ddp(aug(x_l), aug(fake_l.float()), aug(x_h), aug(fake_h.float()))
        scaler.scale(loss_d).backward()
        scaler.step(opt_d)

        # generator step: VAE + cycle + adversarial. D is used without DDP and frozen: the
        # generators need gradients *through* D, never D's own weight gradients.
        opt_g.zero_grad(set_to_none=True)
        dis.requires_grad_(False)
        with nets.autocast():
            out = nets.gen_ddp(x_l, x_h, gen_noise)
            terms = loss_terms(gen, out, x_l, x_h)
            terms["gan"] = dis.generator_loss(aug(out["x_hl"]), aug(out["x_lh"]))
            total = sum(weights[k] * v for k, v in terms.items())
        scaler.scale(total).backward()
        scaler.step(opt_g)
        scaler.update()
        nets.sched_g.step()
        nets.sched_d.step()
        row = {"dis": loss_d, "total": total, **terms}
        return torch.stack([row[k].detach().float() for k in LOSS_NAMES])

    def _save_and_register(self, nets: _Nets, result: TrainResult, patches: Any, run_id: int | None) -> None:
        """Rank 0 at the end (or pause): the checkpoint, the model file and its registration, the
        quality report, and the run record's outcome (failed, if any of that fails)."""
        it = result.iteration
        try:
            self._save_checkpoint(nets, it, patches)
            self._finish(nets.gen, result, nets.device)
            if self.quality_history and result.model_id is not None:
                from lesion_studio.evaluate.generator_quality import store_report

                last = self.quality_history[-1] if self.quality_history[-1]["iteration"] == it else None
                store_report(self.project, self.project.model(result.model_id), last,
                             history=self.quality_history)
        except BaseException:
            if run_id is not None:
                self.project.update_run(run_id, status="failed", finished=True)
            raise
        if run_id is not None:
            self.project.update_run(run_id, status="cancelled" if result.cancelled else "finished",
                                    metrics={"iteration": it, "losses": result.losses,
                                             "iterations_per_s": result.iterations_per_s},
                                    model_id=result.model_id, finished=True)

    def _report(self, values: dict[str, float], it: int, dist: common.Distributed, clock: EtaClock, nets: _Nets,
                sample_l: np.ndarray, sample_h: np.ndarray, patches: Any) -> None:
        """History, samples, checkpoint and progress event of iteration ``it`` (losses already read)."""
        cfg = self.config
        self.history.append({k: round(values[k], 6) for k in LOSS_NAMES})
        if not dist.is_main:
            return
        data: dict[str, Any] = {"iteration": it, "losses": values}
        if it % cfg.sample_every == 0 or it == cfg.iterations:
            data["samples"] = self._samples(nets.gen, sample_l, sample_h, nets.device, it)
        if it % cfg.checkpoint_every == 0 or it == cfg.iterations:
            # Before the checkpoint: a run resumed from it then has every report up to its iteration.
            quality = self._assess(nets.gen, nets.device, it)
            if quality is not None:
                data["quality"] = quality
        if it % cfg.checkpoint_every == 0 and it < cfg.iterations:
            self._save_checkpoint(nets, it, patches)
        msg = f"recon {values['recon']:.3f} cycle {values['cycle']:.3f} gan {values['gan']:.3f} " \
              f"dis {values['dis']:.3f}"
        self.progress(ProgressEvent("train-gan", it, cfg.iterations, msg, eta_s=clock.eta(it), data=data))

    # ------------------------------------------------------------------ files
    def _samples(self, gen: Any, sample_l: np.ndarray, sample_h: np.ndarray, device: Any, it: int) -> dict[str, Any]:
        from lesion_studio.io.images import grid, patch_uint8, save_png

        with torch.no_grad():
            x_h = torch.from_numpy(sample_h).to(device)
            x_l = torch.from_numpy(sample_l).to(device)
            h2l = gen.translate(x_h, "h2l").float().cpu().numpy()
            l2h = gen.translate(x_l, "l2h").float().cpu().numpy()
        arrays = {"normal": sample_h[:, 0], "h2l": h2l[:, 0], "lesion": sample_l[:, 0], "l2h": l2h[:, 0]}
        rows = [[patch_uint8(a) for a in arrays[k]] for k in ("normal", "h2l", "lesion", "l2h")]
        png = save_png(self.model_dir / SAMPLES / f"iter_{it:07d}.png", grid(rows))
        return {**arrays, "png": str(png)}

    def _save_checkpoint(self, nets: _Nets, it: int, patches: Any) -> None:
        states = {"gen": nets.gen.state_dict(), "dis": nets.dis.state_dict(), "opt_g": nets.opt_g.state_dict(),
                  "opt_d": nets.opt_d.state_dict(), "sched_g": nets.sched_g.state_dict(),
                  "sched_d": nets.sched_d.state_dict(),
                  "scaler": nets.scaler.state_dict() if nets.scaler.is_enabled() else {}}
        # The history first: a checkpoint never covers iterations its history lacks (resume cuts
        # the history back to the checkpoint's iteration).
        atomic_write(self.model_dir / HISTORY, json.dumps(self.history).encode())
        checkpoint.save_checkpoint(self.model_dir / CHECKPOINT, states,
                                   {"iteration": it, "config": to_dict(self.config), "name": self.name,
                                    "data": patches.summary()}, keep_previous=True)

    def _read_history(self) -> list[dict[str, float]]:
        return self._read_json(HISTORY)

    def _read_json(self, name: str) -> list[Any]:
        path = self.model_dir / name
        try:
            return json.loads(path.read_text()) if path.exists() else []
        except (OSError, ValueError):
            return []

    def _assess(self, gen: Any, device: Any, it: int) -> dict[str, Any] | None:
        """The cheap quality report of the current generators (config ``assess``), kept in
        ``quality_history.json``. Never fails the run: without a validation split it is skipped."""
        if not self.config.assess or self._quality_context is False:
            return None
        from lesion_studio.evaluate.generator_quality import QualityContext, QualitySettings

        cfg = self.config
        try:
            if self._quality_context is None:
                self._quality_context = QualityContext(
                    self.project, resolution=cfg.resolution, body_parts=cfg.body_parts, train_params=cfg.patch_params(),
                    train_splits=cfg.splits, settings=QualitySettings(seed=cfg.seed).cheap(),
                    patch_cache=self.patch_cache)
            report = self._quality_context.assess(_LiveTranslator(gen, device, cfg.resolution), model=self.name,
                                                  iteration=it).to_dict()
        except LesionStudioError as exc:
            log.warning("generator quality report skipped for %s: %s", self.name, exc)
            self._quality_context = False
            return None
        report.pop("settings", None)
        self.quality_history.append(report)
        atomic_write(self.model_dir / QUALITY_HISTORY, json.dumps(self.quality_history).encode())
        log.info("quality at iteration %d: %s", it, report["headline"])
        return report

    def _finish(self, gen: Any, result: TrainResult, device: Any) -> None:
        cfg = self.config
        bad = sorted(k for k, v in result.losses.items() if not math.isfinite(v))
        if bad:
            raise LesionStudioError(
                f"Training {self.name} diverged: at iteration {result.iteration} the losses {', '.join(bad)} are not "
                "finite, so the model is not registered. Resume from an earlier checkpoint with a lower learning "
                "rate, or train again.")
        gen = common.unwrap(gen).to(memory_format=torch.contiguous_format)  # plain layout for files and export
        meta = {"config": to_dict(cfg), "iteration": result.iteration, "resolution": cfg.resolution,
                "data": result.data_summary, "body_parts": list(cfg.body_parts), "name": self.name,
                "losses": result.losses, "device": str(device), "precision": self.precision,
                "complete": not result.cancelled}
        sha = save_unit_model(self.model_dir / WEIGHTS, gen, meta)
        onnx_sha: dict[str, str] = {}
        if cfg.export_onnx and result.cancelled:
            # A pause returns at once: the three exports took 40-59 s on two busy cores. The
            # translator exports each direction when it is first used (synthesis/deferred_onnx.py).
            log.info("%s paused: its ONNX files will be exported on first use", self.name)
        elif cfg.export_onnx:
            from lesion_studio.models.unit_onnx import export_unit_onnx

            try:
                onnx_sha = export_unit_onnx(common.unwrap(gen), self.model_dir, resolution=cfg.resolution)
                result.onnx_path = self.model_dir / ONNX
            except LesionStudioError as exc:  # the torch backend still works; say so once
                log.warning("ONNX export failed, the torch backend will be used: %s", exc)
        registry_meta = {**meta, "weights_sha256": sha, "onnx_sha256": onnx_sha.get("h2l"),
                         "onnx_l2h_sha256": onnx_sha.get("l2h"),
                         "onnx_h2l_residual_sha256": onnx_sha.get("h2l_residual"),
                         "onnx_weights_sha256": sha if onnx_sha else None, "arch": cfg.arch().to_dict(),
                         "files": {"weights": WEIGHTS, "checkpoint": CHECKPOINT, "config": CONFIG,
                                   "onnx": ONNX if onnx_sha else None, "onnx_l2h": ONNX_L2H if onnx_sha else None,
                                   "onnx_h2l_residual": ONNX_RESIDUAL if onnx_sha else None},
                         "iterations_per_s": result.iterations_per_s}
        body_parts = cfg.body_parts or sorted(set(result.data_summary["lesion"]["body_parts"]))
        result.model_id = self.project.register_model(
            self.name, "unit", self.model_dir / WEIGHTS, sha256=sha, body_parts=body_parts, config=to_dict(cfg),
            metadata=registry_meta, replace_existing=True)


@dataclass
class _Nets:
    """A run's networks with their optimizers, schedulers and gradient scaler (what a checkpoint
    holds), the wrappers the steps call (DDP, compiled; the plain modules are what is saved), and
    the device and precision the steps compute in."""

    gen: Any
    dis: Any
    opt_g: Any
    opt_d: Any
    sched_g: Any
    sched_d: Any
    scaler: Any
    device: Any
    amp: bool
    cpu_bf16: bool
    gen_ddp: Any = None
    dis_ddp: Any = None

    def wrap(self, dist: common.Distributed, compile_mode: str) -> None:
        """The wrappers the steps call: DDP under torchrun, then compiled unless ``compile_mode`` is "none"."""
        self.gen_ddp, self.dis_ddp = dist.wrap(self.gen, self.device), dist.wrap(self.dis, self.device)
        if compile_mode != "none":  # the wrappers run compiled; gen/dis stay the plain modules to save
            self.gen_ddp = torch.compile(self.gen_ddp, mode=None if compile_mode == "default" else compile_mode)
            self.dis_ddp = torch.compile(self.dis_ddp, mode=None if compile_mode == "default" else compile_mode)

    def autocast(self) -> Any:
        """The precision context of a forward pass: bf16 on the CPU when asked, else AMP on a GPU."""
        if self.cpu_bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return common.autocast(self.device, self.amp)


class _LossReader:
    """Each iteration's losses, kept on the device until they are read: then averaged over the
    ranks (one all-reduce per read) and handed to ``report`` one iteration at a time."""

    def __init__(self, report: Callable[[dict[str, float], int], None], dist: common.Distributed, *,
                 read_every: int) -> None:
        self.report = report
        self.dist = dist
        self.read_every = read_every
        self.pending: list[torch.Tensor] = []

    def add(self, row: torch.Tensor) -> None:
        self.pending.append(row)

    def read(self, it: int) -> None:
        """Report the pending iterations, the last of which is ``it``."""
        if not self.pending:
            return
        rows = torch.stack(self.pending).float()
        if self.dist.initialised:
            torch.distributed.all_reduce(rows)
            rows /= self.dist.world_size
        first = it - len(self.pending) + 1
        self.pending.clear()
        for i, row in enumerate(rows.cpu().tolist(), start=first):
            self.report(dict(zip(LOSS_NAMES, row, strict=True)), i)


class _LiveTranslator:
    """The generators being trained, seen through the :class:`Translator` interface (no export)."""

    backend = "torch"

    def __init__(self, gen: Any, device: Any, resolution: int) -> None:
        self.gen, self.device, self.resolution = common.unwrap(gen), device, resolution
        self.model_id, self.model_name, self.sha256 = None, "", ""

    def translate(self, patches: np.ndarray, *, stochastic: bool = False, seed: int | None = None,
                  direction: str = "h2l") -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32)).to(self.device)
            return self.gen.translate(x, direction).float().cpu().numpy()


def _check_resumable(states: dict[str, Any], meta: dict[str, Any], arch: Any, cfg: UnitTrainConfig) -> None:
    """Refuse a checkpoint that lacks a part resume needs, or whose networks do not fit the config
    (raises LesionStudioError, so `checkpoint.load_checkpoint` tries the previous one)."""
    missing = [k for k in ("gen", "dis", "opt_g", "opt_d", "sched_g", "sched_d") if not isinstance(states.get(k), dict)]
    if missing or not isinstance(meta.get("iteration"), int):
        raise LesionStudioError(f"The checkpoint lacks {', '.join(missing) or 'its iteration'}, which resume needs.")
    checkpoint.check_state_shapes(lambda: unit_generators(arch), states["gen"], "the checkpoint's generators")
    checkpoint.check_state_shapes(lambda: unit_discriminators(arch, cfg.dis_norm), states["dis"],
                                  "the checkpoint's discriminators")


def _adam(params: Any, cfg: UnitTrainConfig) -> Any:
    """UNIT's Adam, fused (one kernel for every parameter) where this torch has it for the device."""
    adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2), "weight_decay": cfg.weight_decay}
    try:
        return torch.optim.Adam(params, **adam, fused=True)
    except (RuntimeError, ValueError):  # no fused kernel for this device or dtype
        return torch.optim.Adam(params, **adam, foreach=True)


def _load_adam(opt: Any, state: dict[str, Any]) -> None:
    """Load a checkpointed Adam state, keeping this run's kernel choice and the parameters' memory layout.

    ``load_state_dict`` restores the saved ``fused``/``foreach`` flags (old checkpoints have
    neither) and the moments come back contiguous, while the parameters are channels-last.
    """
    flags = [{k: g.get(k) for k in ("fused", "foreach")} for g in opt.param_groups]
    opt.load_state_dict(state)
    for group, kept in zip(opt.param_groups, flags, strict=True):
        group.update(kept)
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape:
                    opt.state[p][key] = torch.empty_like(p).copy_(value)


def train_unit(project: Project, config: UnitTrainConfig, *, name: str | None = None, resume: bool = False,
               progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
               patch_cache: str = "disk") -> TrainResult:
    """Train (or resume) a UNIT model on ``project`` and register it; see the module docstring.

    ``resume=True`` continues the named model's checkpoint when there is one and starts a new run
    when the name is still unused (so pipelines can always pass it); resuming a finished run
    returns the registered model without rewriting it. A cancelled run saves a checkpoint,
    registers what it has (``metadata.complete`` False) and raises
    :class:`~lesion_studio.errors.JobCancelled` with that result as ``partial`` — the cancel
    contract of every long job, the classifier trainer's included (a pipeline never mistakes a
    paused GAN for a trained one).
    """
    result = UnitTrainer(project, config, name=name, resume=resume, progress=progress, cancel=cancel,
                         patch_cache=patch_cache).run()
    if result.cancelled:
        raise JobCancelled("GAN training", partial=result)
    return result
