"""ONNX Runtime sessions for every ONNX model the app runs (translators, classifiers).

onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU and then prints a
screen of errors when it fails to load; so CUDA is offered only when a CUDA driver with at least
one device is really present — asked of torch when torch is already imported, else of the driver
library directly (no torch import just for this) — and onnxruntime's log is kept at errors-only.
``LESION_STUDIO_ORT_DEVICE=cpu`` forces the CPU. Nothing here imports torch.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from lesion_studio.errors import LesionStudioError

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def cuda_device_present() -> bool:
    """True when a CUDA GPU can really be used (never imports torch just to find out)."""
    if os.environ.get("LESION_STUDIO_ORT_DEVICE", "").lower() == "cpu":
        return False
    if "torch" in sys.modules:
        try:
            return bool(sys.modules["torch"].cuda.is_available())
        except Exception:  # noqa: BLE001 - a broken torch install is "no GPU"
            return False
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
        except AttributeError:
            return False
    return False


def session_providers(prefer_cuda: bool = True) -> list[str]:
    """The execution providers to ask onnxruntime for: CUDA first only when this onnxruntime build
    has the CUDA provider (the CPU-only ``onnxruntime`` package has not) *and* a CUDA device is
    really present; the CPU always. The cheap build check comes first, so a CPU-only build never
    probes the driver."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if prefer_cuda and "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_present():
        providers.insert(0, "CUDAExecutionProvider")
    return providers


def make_session(path: str | Path, *, prefer_cuda: bool = True, threads: int | None = None) -> Any:
    """An onnxruntime InferenceSession on CUDA when a GPU is really there, else the CPU, quietly."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    # No busy-waiting between ops: on a shared or GUI machine spinning threads cost more than they save.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list[Any] = session_providers(prefer_cuda)
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        if "CUDAExecutionProvider" in providers and "CUDAExecutionProvider" not in session.get_providers():
            _note_cuda_fallback()  # e.g. CUDA/cuDNN libraries missing: onnxruntime fell back on its own
        return session
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own unexported types
        if len(providers) > 1:
            log.info("CUDA session failed (%s); using the CPU", exc)
            return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        raise LesionStudioError(f"Cannot load the ONNX model {Path(path).name}: {exc}") from exc


@lru_cache(maxsize=1)
def _note_cuda_fallback() -> None:
    log.info("onnxruntime could not start its CUDA provider; ONNX models run on the CPU")
