"""ONNX Runtime sessions for every ONNX model the app runs (translators, classifiers).

onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU and then prints a
screen of errors when it fails to load; so CUDA is offered only when a CUDA driver with at least
one device is really present — asked of torch when torch is already imported, else of the driver
library directly (no torch import just for this) — and onnxruntime's log is kept at errors-only.
``LESION_STUDIO_ORT_DEVICE=cpu`` forces the CPU. Nothing here imports torch.

How onnxruntime-gpu finds CUDA and cuDNN: the wheel ships neither. torch's CUDA wheels install
them as pip packages (``nvidia-cublas``, ``nvidia-cudnn-cu13``, ... under ``site-packages/nvidia``),
and :func:`onnxruntime.preload_dlls` loads them from there before the first CUDA session (when
torch is already imported, its own loading has done the same). The CUDA major version of the
onnxruntime-gpu build (``onnxruntime.capi.build_and_package_info.cuda_version``) must match
torch's (``torch.version.cuda``); otherwise the CUDA provider fails to start and sessions fall
back to the CPU with one log line.

Session options (measured on the ``fast`` translator, see benchmarks/translate_bench.py): full
graph optimisation (its NCHWc layout pass alone is worth ~30 % on x86), intra-op threads = the
physical cores this process may use (set explicitly from the CPU affinity, so a job pinned to a
few CPUs does not get a thread per host core whatever the onnxruntime version decides), and
spinning only where it pays: between the translator's many small convolutions, worker threads that
busy-wait pick up the next op at once, as torch's OpenMP threads do (one 128² patch on 2 threads:
0.68-0.74x torch with spinning, 1.10-1.16x without; docs/performance.md).
The GUI turns it off for its process (:func:`set_spinning`): there idle threads must sleep, not
burn a core between previews.
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

#: Whether new sessions' intra-op threads busy-wait between ops (see the module doc). The GUI sets False.
_SPINNING = {"on": True}


def set_spinning(on: bool) -> None:
    """Spinning of the intra-op threads of sessions made from now on (the GUI process turns it off)."""
    _SPINNING["on"] = bool(on)


def spinning() -> bool:
    return _SPINNING["on"]


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


@lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once)."""
    try:
        cores = set()
        for cpu in os.sched_getaffinity(0):
            topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        return max(1, len(cores))
    except (OSError, AttributeError):  # not Linux: assume two hyper-threads per core
        return max(1, (os.cpu_count() or 2) // 2)


@lru_cache(maxsize=1)
def preload_cuda_libraries() -> None:
    """Load the CUDA/cuDNN libraries of torch's nvidia-* wheels for onnxruntime-gpu (see the module doc)."""
    import contextlib
    import io

    import onnxruntime as ort

    if not hasattr(ort, "preload_dlls"):
        return
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):  # it prints its failures; keep CLI output clean
            ort.preload_dlls(cuda=True, cudnn=True, msvc=False)
    except Exception as exc:  # noqa: BLE001 - a failed preload only means the CPU will be used
        log.info("onnxruntime could not preload the CUDA libraries: %s", exc)
    if out.getvalue().strip():
        log.info("onnxruntime CUDA library preload: %s", out.getvalue().strip())


def make_session(path: str | Path, *, prefer_cuda: bool = True, threads: int | None = None,
                 spin: bool | None = None) -> Any:
    """An onnxruntime InferenceSession on CUDA when a GPU is really there, else the CPU, quietly.

    ``threads``: intra-op threads; default the physical cores this process may use.
    ``spin``: busy-wait between ops; default :func:`spinning` (on, except in the GUI).
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or physical_cores()
    spin = spinning() if spin is None else spin
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    providers: list[Any] = session_providers(prefer_cuda)
    if "CUDAExecutionProvider" in providers:
        preload_cuda_libraries()
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
