"""Bounds on architecture settings read from model files (torch-free).

A model folder's JSON sidecar says which network to build. It is a file like any other: a one-kB
edit could ask for a network of tens of gigabytes, and building it would take the machine down
before any weight was read. Every architecture read from a file is checked here first, against
bounds generous enough for any model Lesion Studio trains (the paper preset uses 64 base
channels, 2 downsamplings and 4 residual blocks) and far below what would exhaust memory.
"""

from __future__ import annotations

from typing import Any

from lesion_studio.errors import LesionStudioError

#: UnitArch field -> (lowest, highest) accepted value.
UNIT_ARCH_BOUNDS: dict[str, tuple[int, int]] = {
    "in_channels": (1, 4),
    "base_channels": (1, 256),
    "n_downsample": (0, 5),
    "n_res": (0, 16),
    "n_shared": (0, 16),
    "dis_channels": (1, 256),
    "dis_layers": (1, 8),
    "dis_scales": (1, 5),
}
#: Side of the square patches a translator takes.
RESOLUTION_BOUNDS = (8, 1024)


def _int_in(value: Any, low: int, high: int, what: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LesionStudioError(f"{source}: {what} must be a whole number, not {value!r}. "
                                "The model's metadata is damaged; retrain or restore the model folder.")
    if not low <= value <= high:
        raise LesionStudioError(f"{source}: {what} = {value} is outside {low}..{high}. "
                                "The model's metadata is damaged or was edited; retrain or restore it.")
    return value


def check_unit_arch(arch: Any, source: str) -> dict[str, int]:
    """The UNIT architecture dictionary of a model file, checked; raises a clear error otherwise."""
    if not isinstance(arch, dict):
        raise LesionStudioError(f"{source}: the UNIT architecture must be an object, not {type(arch).__name__}.")
    unknown = sorted(set(arch) - set(UNIT_ARCH_BOUNDS))
    if unknown:
        raise LesionStudioError(f"{source}: unknown UNIT architecture setting(s) {', '.join(map(str, unknown))}.")
    checked = {k: _int_in(v, *UNIT_ARCH_BOUNDS[k], k, source) for k, v in arch.items()}
    if checked.get("n_shared", 1) > checked.get("n_res", 4):
        raise LesionStudioError(f"{source}: n_shared ({checked['n_shared']}) exceeds n_res ({checked['n_res']}).")
    return checked


def check_resolution(value: Any, arch: dict[str, int], source: str) -> int:
    """A translator resolution: within bounds and a multiple of the downsampling factor."""
    resolution = _int_in(value, *RESOLUTION_BOUNDS, "resolution", source)
    factor = 2 ** arch.get("n_downsample", 2)
    if resolution % factor:
        raise LesionStudioError(f"{source}: resolution {resolution} is not a multiple of {factor}.")
    return resolution
