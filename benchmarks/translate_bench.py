"""Translation speed: onnxruntime (the app's session) against torch on the same network and input.

    python -m benchmarks.translate_bench [--preset fast] [--rounds 15] [--threads N] [--quick]

The ``fast`` translator (random weights, seeded: speed does not depend on training) is exported
with the app's exporter and run h2l on one 128² patch and on a batch of 16, with deterministic
(zero) noise, by torch (``no_grad``) and by :func:`lesion_studio.onnx_runtime.make_session` on
the CPU. Calls alternate torch / onnxruntime round by round, each after a 50 ms rest (so that threads one
runtime leaves spinning do not slow the other's call), and the medians are compared:
``ratio`` = onnxruntime ÷ torch (target ≤ 0.8); ``ratio_wall_gui`` is the GUI's session, whose
idle threads sleep instead of spinning (``onnx_runtime.set_spinning``). Both get the same thread count: the physical
cores by default (what onnxruntime picks by itself), and a one-thread row that is steadier on a
machine shared with other jobs. Wall time and the process's CPU time are both reported. Prints JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import emit

PAUSE_S = 0.05


def _compare(fns: dict, rounds: int) -> dict:
    for fn in fns.values():  # warm-up: kernel selection, memory arenas
        fn()
        fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            # a short rest first: a runtime whose idle threads still spin (onnxruntime's pool, torch's
            # OpenMP team) must not steal the cores from the next call, whichever runtime that is
            time.sleep(PAUSE_S)
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    out = {k: {"wall_ms": statistics.median(wall[k]) * 1e3, "cpu_ms": statistics.median(cpu[k]) * 1e3,
               "wall_ms_min": min(wall[k]) * 1e3} for k in fns}
    out["ratio_wall"] = out["onnxruntime"]["wall_ms"] / out["torch"]["wall_ms"]
    out["ratio_cpu"] = out["onnxruntime"]["cpu_ms"] / out["torch"]["cpu_ms"]
    for key in ("onnxruntime_gui", "translator"):
        if key in out:
            out[f"ratio_wall_{key.removeprefix('onnxruntime_')}"] = out[key]["wall_ms"] / out["torch"]["wall_ms"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fast")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=0, help="0: the physical cores")
    p.add_argument("--quick", action="store_true", help="7 rounds")
    args = p.parse_args(argv)
    os.environ.setdefault("LESION_STUDIO_ORT_DEVICE", "cpu")
    import logging

    import torch

    from lesion_studio.models.specs import UNIT_ARCHS
    from lesion_studio.models.unit import unit_generators
    from lesion_studio.models.unit_onnx import ONNX_FILES, export_unit_onnx
    from lesion_studio.onnx_runtime import make_session, physical_cores

    logging.basicConfig(level=logging.WARNING)
    rounds = 7 if args.quick else args.rounds
    threads = args.threads or physical_cores()
    resolution = {"paper": 256}.get(args.preset, 128)
    torch.manual_seed(0)
    gen = unit_generators(UNIT_ARCHS[args.preset]()).eval()
    work = Path(tempfile.mkdtemp(prefix="translate-bench-"))
    result: dict = {"preset": args.preset, "resolution": resolution, "physical_cores": physical_cores(),
                    "cpu_count": os.cpu_count(), "torch": torch.__version__}
    try:
        t0 = time.perf_counter()
        export_unit_onnx(gen, work, resolution=resolution, directions=("h2l",))
        result["export_s"] = round(time.perf_counter() - t0, 1)
        from lesion_studio.files import file_sha256
        from lesion_studio.synthesis.translator import OnnxTranslator, _Info

        onnx_file = work / ONNX_FILES["h2l"]
        translator = OnnxTranslator(onnx_file, _Info(resolution, None, "bench", "", gen.arch,
                                                     {"onnx_sha256": file_sha256(onnx_file)}), prefer_cuda=False)
        for n_threads in sorted({threads, 1}, reverse=True):
            torch.set_num_threads(n_threads)
            session = make_session(work / ONNX_FILES["h2l"], prefer_cuda=False, threads=n_threads)
            # the GUI's session: the same, but idle threads sleep (onnx_runtime.set_spinning(False))
            gui_session = make_session(work / ONNX_FILES["h2l"], prefer_cuda=False, threads=n_threads, spin=False)
            rows = {}
            for batch in (1, 16):
                x = np.random.default_rng(batch).uniform(-1, 1, (batch, 1, resolution, resolution)).astype(np.float32)
                noise = np.zeros(gen.arch.latent_shape(batch, resolution, resolution), np.float32)
                xt, nt = torch.from_numpy(x), torch.from_numpy(noise)

                def run_torch(xt=xt, nt=nt) -> None:
                    with torch.no_grad():
                        gen.translate(xt, "h2l", nt)

                def run_ort(x=x, noise=noise, session=session) -> None:
                    session.run(["h2l"], {"patches": x, "noise": noise})

                def run_ort_gui(x=x, noise=noise, session=gui_session) -> None:
                    session.run(["h2l"], {"patches": x, "noise": noise})

                # one patch is ~15 ms: 4x the rounds of the batch (~250 ms) for a steady median
                fns = {"torch": run_torch, "onnxruntime": run_ort, "onnxruntime_gui": run_ort_gui}
                if batch > 1 and n_threads == physical_cores():
                    # the app's translator: a batch runs as per-core chunks on one-thread sessions
                    fns["translator"] = lambda x=x: translator.translate(x)
                rows[f"batch_{batch}"] = _compare(fns, rounds * 4 if batch == 1 else rounds)
            result[f"threads_{n_threads}"] = rows
        result["target_ratio"] = 0.8
        result["load_avg_1m_after"] = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
