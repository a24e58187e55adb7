"""What every trainer shares: device choice, seeding, DDP, and safetensors checkpoints.

Conventions every trainer follows (the GAN and the classifier alike):
- ``device="auto"`` picks CUDA when it is really there, else CPU; an explicit ``cuda`` without a
  GPU is a ConfigError, not a crash.
- Randomness per step comes from generators seeded by (seed, step) (:func:`step_generator`), so a
  resumed run draws exactly what the uninterrupted run would have drawn.
- Checkpoints are one ``.safetensors`` file (model + optimizer + scaler tensors) and a ``.json``
  sidecar (config, step, non-tensor optimizer state, data summary, hashes). Both are written
  atomically (temp file + rename). Loading never unpickles: safetensors and JSON only. The format
  and device choice are defined in :mod:`lesion_studio.models.checkpoint` (inference loads weights
  without the trainers); trainers import them from there.
- The same code runs under ``torchrun --nproc_per_node=N``: :class:`Distributed` reads the torchrun
  environment, picks NCCL on GPU and Gloo on CPU, and only rank 0 writes files or reports progress.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from dataclasses import dataclass

import numpy as np

from lesion_studio.extras import require

torch = require("torch", "Training")


log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- device and seeds
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed for (run seed, step, stream): independent streams, reproducible on resume."""
    digest = hashlib.blake2b(f"{seed}:{step}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def step_generator(seed: int, step: int, stream: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(step_seed(seed, step, stream))
    return gen


# ---------------------------------------------------------------------------- distributed
@dataclass
class Distributed:
    """The torchrun environment, or a single process when there is none."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised: bool = False

    @classmethod
    def from_env(cls, device_request: str = "auto") -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        wants_cuda = device_request in ("cuda", "gpu") or (device_request == "auto" and torch.cuda.is_available())
        backend = "nccl" if wants_cuda else "gloo"
        if wants_cuda:
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        log.info("DDP rank %d/%d on %s", rank, world, backend)
        return cls(rank=rank, world_size=world, local_rank=local_rank, initialised=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.initialised:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # Buffers (BatchNorm running statistics) follow rank 0 at every forward, so every rank
        # evaluates, and rank 0 saves, the same model.
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=True)

    def mean(self, value: float) -> float:
        """Average a scalar over ranks (for logging the same numbers everywhere)."""
        if not self.initialised:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics) before evaluating.

        DDP broadcasts buffers at the start of each forward, so after the last training step each
        rank still holds statistics updated by its own batch.
        """
        if not self.initialised:
            return
        import torch.distributed as dist

        for buf in unwrap(module).buffers():
            dist.broadcast(buf.data, src=0)

    def barrier(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.initialised = False


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if hasattr(module, "module") and isinstance(module.module, torch.nn.Module) else module


# ---------------------------------------------------------------------------- memory layout
#: oneDNN's smallest channel block on x86 (AVX-512 kernels work in blocks of 16 channels).
_ONEDNN_CHANNEL_BLOCK = 16


def conv_memory_format(model: torch.nn.Module) -> torch.memory_format:
    """The memory layout a network trains in: channels-last (oneDNN's and cuDNN's fast layout)
    unless the network has a convolution that oneDNN's channels-last weight gradient crashes on.

    Why: the oneDNN bundled with torch 2.14 (v3.12) segfaults in the AVX-512 1x1-convolution weight
    gradient (``jit_avx512_common_1x1_convolution_bwd_weights``) when a strided 1x1 convolution has
    fewer input channels than its channel block and runs channels-last (measured on an AMD EPYC
    host: ``Conv2d(8, 16, 1, stride=2)`` on a 16x8x48x48 channels-last batch kills the process;
    16 or more input channels, stride 1, or the plain layout are fine; oneDNN issue 6035 describes
    the same out-of-bounds write). The tiny DRNs (tests, the demo) have such a downsample. The plain
    layout computes the same maths, only slower, and those networks are small.
    """
    for module in model.modules():
        if (isinstance(module, torch.nn.Conv2d) and module.kernel_size == (1, 1)
                and any(s > 1 for s in module.stride) and module.in_channels < _ONEDNN_CHANNEL_BLOCK):
            return torch.contiguous_format
    return torch.channels_last


# ---------------------------------------------------------------------------- precision
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles).

    Only there does bf16 autocast pay: elsewhere oneDNN emulates it and is slower than fp32.
    torch exposes the CPU feature probes as private helpers, so any failure reads as "no".
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in probes if hasattr(torch.cpu, name))
    except Exception:  # noqa: BLE001 - a probe that breaks must not stop training
        return False


def use_cpu_bf16(setting: bool | str, device: torch.device) -> bool:
    """Resolve a ``cpu_bf16`` setting (true, false or "auto") for the device a run trains on."""
    if device.type != "cpu":
        return False
    return cpu_has_native_bf16() if setting == "auto" else bool(setting)


def autocast(device: torch.device, enabled: bool):  # noqa: ANN201
    """Mixed precision on GPU only (bfloat16 when supported, else float16); a no-op on CPU."""
    if device.type != "cuda" or not enabled:
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
