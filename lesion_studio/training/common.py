"""What every trainer shares: device choice, seeding, DDP, and safetensors checkpoints.

Conventions every trainer follows (the GAN and the classifier alike):
- ``device="auto"`` picks CUDA when it is really there, else CPU; an explicit ``cuda`` without a
  GPU is a ConfigError, not a crash.
- Randomness per step comes from generators seeded by (seed, step) (:func:`step_generator`), so a
  resumed run draws exactly what the uninterrupted run would have drawn.
- Checkpoints are one ``.safetensors`` file (model + optimizer + scaler tensors) and a ``.json``
  sidecar (config, step, non-tensor optimizer state, data summary, hashes). Both are written
  atomically (temp file + rename). Loading never unpickles: safetensors and JSON only.
- The same code runs under ``torchrun --nproc_per_node=N``: :class:`Distributed` reads the torchrun
  environment, picks NCCL on GPU and Gloo on CPU, and only rank 0 writes files or reports progress.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.errors import ConfigError, LesionStudioError
from lesion_studio.extras import require

torch = require("torch", "Training")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- device and seeds
def select_device(requested: str = "auto", local_rank: int | None = None) -> torch.device:
    requested = (requested or "auto").lower()
    if requested == "gpu":
        requested = "cuda"
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                "A CUDA GPU was requested (device 'cuda'), but PyTorch sees none on this machine. "
                "Use --device cpu (or auto)."
            )
        if local_rank is not None and requested == "cuda":
            return torch.device("cuda", local_rank)
        return torch.device(requested)
    if requested != "cpu":
        raise ConfigError(f"Unknown device {requested!r}; use auto, cpu or cuda.")
    return torch.device("cpu")


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


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng(step_seed(seed, step, stream))


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


# ---------------------------------------------------------------------------- state encoding
def encode_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Split a (nested) state dict into JSON-able structure + flat tensors.

    Tensors are replaced by {"__tensor__": key}; dicts with non-string keys (optimizer state uses
    ints) become {"__items__": [[key, value], ...]}; tuples become lists. The inverse is
    :func:`decode_state`. This is how optimizer state is checkpointed without pickle.
    """
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: encode_state(v, tensors, f"{prefix}.{k}") for k, v in obj.items()}
        return {"__items__": [[k, encode_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [encode_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {prefix}")


def decode_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: decode_state(v, tensors) for k, v in obj["__items__"]}
        return {k: decode_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_state(v, tensors) for v in obj]
    return obj


# ---------------------------------------------------------------------------- checkpoints
def _atomic_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def sidecar_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(path: str | Path, states: dict[str, Any], metadata: dict[str, Any]) -> str:
    """Save named state dicts (``{"model": ..., "optimizer": ...}``) and metadata atomically.

    Returns the sha256 of the weights file (recorded in the model registry and in provenance).
    The sidecar is written after the weights, so a sidecar always describes complete weights.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    structure = {name: encode_state(state, tensors, name) for name, state in states.items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={"format": "lesion-studio-checkpoint-1"})
        _atomic_replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LesionStudioError(f"Could not write the checkpoint {path}: {exc.strerror or exc}.") from exc
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    sidecar = {**metadata, "weights_file": path.name, "weights_sha256": digest, "state_structure": structure}
    side = sidecar_path(path)
    tmp_side = side.with_name(f".{side.name}.tmp-{os.getpid()}")
    try:
        tmp_side.write_text(json.dumps(sidecar, indent=1, sort_keys=True))
        _atomic_replace(tmp_side, side)
    except OSError as exc:
        tmp_side.unlink(missing_ok=True)
        raise LesionStudioError(f"Could not write the checkpoint metadata {side}: {exc.strerror or exc}.") from exc
    return digest


def load_checkpoint(path: str | Path, *, verify: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load (states, metadata) saved by :func:`save_checkpoint`. Never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    side = sidecar_path(path)
    if not path.exists() or not side.exists():
        raise LesionStudioError(f"Checkpoint {path} (or its .json sidecar) is missing.")
    try:
        metadata = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise LesionStudioError(f"The checkpoint metadata {side.name} is unreadable ({exc}).") from exc
    if verify and metadata.get("weights_sha256"):
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        if digest != metadata["weights_sha256"]:
            raise LesionStudioError(
                f"{path.name} does not match its metadata (hash mismatch): the file was changed or is "
                "incomplete. Use another checkpoint or retrain."
            )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LesionStudioError(f"{path.name} is not a valid safetensors file ({exc}).") from exc
    structure = metadata.pop("state_structure", {})
    states = {name: decode_state(s, tensors) for name, s in structure.items()}
    return states, metadata


def rng_state() -> dict[str, Any]:
    """Global RNG states as checkpointable data (belt and braces next to per-step generators)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"].to(torch.uint8))
    if "python" in state:
        random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.to(torch.uint8) for t in state["cuda"]])


def autocast(device: torch.device, enabled: bool):  # noqa: ANN201
    """Mixed precision on GPU only (bfloat16 when supported, else float16); a no-op on CPU."""
    if device.type != "cuda" or not enabled:
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
