"""GPU check: the trainers and the experiment on CUDA, as a GPU user runs them. Prints JSON.

Run on a machine with a CUDA GPU (it refuses to run without one):

    python -m benchmarks.gpu_check [--out DIR]

It builds the demo project, trains UNIT (fast and paper presets, mixed precision) and the DRN
classifier (gpu preset) for a short while, runs DDP over NCCL under torchrun, compares onnxruntime
on CUDA with torch on CUDA (translator and classifier), and runs the demo experiments
(demo-gpu.yaml, demo-tiny.yaml) with ``device: auto`` (so on the GPU). Results are written to
OUT/gpu_check.json after every check; each check carries ``ok`` (true/false) and the numbers it
judged by, so a run can be read at a glance. These paths cannot run in the CPU test suite.

Checks (``--skip`` names):
- ``unit_fast`` / ``unit_paper``: CUDA training with mixed precision (bf16 autocast, or fp16 with a
  grad scaler): ok when the autocast dtype is reduced precision, losses stay finite and recon falls.
- ``ddp_nccl_torchrun``: the UNIT trainer under torchrun on NCCL, one process per GPU (2 when there
  are 2): ok when every rank ends with the same weights.
- ``onnx_cuda_parity``: the exported translator and classifier on onnxruntime's CUDA provider
  against torch on CUDA: ok when the CUDA provider really ran and the outputs agree (TF32 and
  kernel choice allow ~1e-3).

Speed checks (the performance issue's targets; ``--only ort_cuda,unit_fast_b1,unit_fast_b1_compiled,
unit_fast_batches,unit_paper_speed`` runs just these, about 10 minutes), first in the run:
- ``ort_cuda``: onnxruntime-gpu translation of 1 and 64 128² patches with the ``fast`` translator
  (targets ≤ 5 ms and ≤ 20 ms), timed in a fresh interpreter that never imports torch, as the GUI
  and batch synthesis run it: the CUDA/cuDNN libraries then come from torch's nvidia-* wheels
  through ``onnxruntime.preload_dlls`` (see :mod:`lesion_studio.onnx_runtime`). Reports the
  providers the session got, the CUDA version onnxruntime was built for and torch's.
- ``unit_fast_b1``: ``fast`` training it/s at batch 1, eager (target ≥ 50 it/s; 9.8 before losses
  stayed on the device and Adam was fused).
- ``unit_fast_b1_compiled``: the same with ``compile_mode: reduce-overhead`` (torch.compile with
  CUDA graphs), else ``default``.
- ``unit_fast_batches``: patches/s at batch 1, 8, 32, 64 and the best (target ≥ 10 × batch 1).
- ``unit_paper_speed``: ``paper`` (64 channels, 256²) at batch 1 and 8: it/s and patches/s.
Training rates are taken over whole bursts of progress events after the first (warm-up and
compilation): on a GPU losses are read every ``LOSS_READ_EVERY_GPU`` iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DDP_WORKER = r"""
import hashlib, json, os, sys
from lesion_studio.store import Project
from lesion_studio.training import unit_config, unit_trainer
created = []  # the generator each rank trains, to compare the ranks' final weights
_build = unit_trainer.unit_generators
unit_trainer.unit_generators = lambda arch: created.append(_build(arch)) or created[-1]
project = Project.open(sys.argv[1])
cfg = unit_config.preset_config("tiny", iterations=20, device="cuda", export_onnx=False, sample_every=1000,
                                 checkpoint_every=1000)
result = unit_trainer.train_unit(project, cfg, name="ddp-nccl")
h = hashlib.sha256()
for name, tensor in sorted(created[-1].state_dict().items()):
    h.update(tensor.detach().float().cpu().numpy().tobytes())
print("RESULT " + json.dumps({"rank": int(os.environ.get("RANK", "0")), "iterations": result.iteration,
                              "recon": result.losses["recon"], "weights": h.hexdigest()}), flush=True)
"""


def _unit(project, preset: str, iterations: int) -> dict:  # noqa: ANN001
    import math

    import torch

    from lesion_studio.training import common
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    torch.cuda.reset_peak_memory_stats()
    cfg = preset_config(preset, iterations=iterations, device="auto", sample_every=max(1, iterations // 2),
                        checkpoint_every=iterations)
    assert cfg.mixed_precision, "the GPU presets train with mixed precision"
    with common.autocast(torch.device("cuda"), True):  # the dtype the trainer's autocast picks
        amp_dtype = str(torch.ones(2, 2, device="cuda").matmul(torch.ones(2, 2, device="cuda")).dtype)
    t0 = time.perf_counter()
    result = train_unit(project, cfg, name=f"gpu-{preset}")
    finite = all(math.isfinite(v) for h in result.history for v in h.values())
    first, last = result.first_losses["recon"], result.losses["recon"]
    return {
        "ok": bool(finite and last < first and amp_dtype in ("torch.bfloat16", "torch.float16")),
        "amp_dtype": amp_dtype, "losses_finite": finite,
        "iterations": result.iteration, "seconds": round(time.perf_counter() - t0, 1),
        "it_per_s": round(result.iterations_per_s, 2),
        "recon_first_last": [round(first, 3), round(last, 3)],
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
        "onnx": bool(result.onnx_path),
    }


def _onnx_cuda_parity(project) -> dict:  # noqa: ANN001
    """onnxruntime (CUDA provider) against torch on CUDA, for the translator and the classifier."""
    import numpy as np
    import torch

    from lesion_studio.classifier.scoring import scorer_for_weights
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.patches.dataset import PatchParams, build_patch_set
    from lesion_studio.synthesis.translator import open_translator
    from lesion_studio.training.classifier_trainer import predict

    out: dict = {}
    onnx_tr = open_translator(project, "gpu-fast", backend="onnx")
    torch_tr = open_translator(project, "gpu-fast", backend="torch", device="cuda")
    patches = build_patch_set(project, params=PatchParams(resolution=128, variants=1), cache="memory")
    x = patches.sample(8, "normal")
    diffs = [float(np.abs(onnx_tr.translate(x, direction=d, stochastic=True, seed=3)
                          - torch_tr.translate(x, direction=d, stochastic=True, seed=3)).max())
             for d in ("h2l", "l2h")]
    out["translator"] = {"providers": onnx_tr.providers, "max_abs_diff": max(diffs)}
    weights = project.resolve_path(project.model("gpu-drn").path)
    scorer = scorer_for_weights(weights)
    model, _ = load_classifier(weights, device="cuda")
    arrays = np.random.default_rng(0).uniform(0, 1, (16, scorer.prep.size, scorer.prep.size)).astype(np.float32)
    p_onnx = scorer.score_arrays(arrays)
    p_torch = predict(model, arrays, device=torch.device("cuda"))
    out["classifier"] = {"providers": scorer.providers, "max_abs_diff": float(np.abs(p_onnx - p_torch).max())}
    out["ok"] = all(part["providers"][0] == "CUDAExecutionProvider" and part["max_abs_diff"] <= 1e-2
                    for part in (out["translator"], out["classifier"]))
    return out


def _unit_speed(project, preset: str, iterations: int, *, batch: int = 1, compile_mode: str = "none",  # noqa: ANN001
          name: str | None = None) -> dict:
    import torch

    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    torch.cuda.reset_peak_memory_stats()
    cfg = preset_config(preset, iterations=iterations, device="auto", batch_size=batch, compile_mode=compile_mode,
                        sample_every=10**6, checkpoint_every=10**6, export_onnx=False)
    marks: list[tuple[int, float]] = []

    def progress(event) -> None:  # noqa: ANN001
        if event.stage == "train-gan":
            marks.append((event.done, time.perf_counter()))

    t0 = time.perf_counter()
    result = train_unit(project, cfg, name=name or f"speed-{preset}-b{batch}-{compile_mode}", progress=progress)
    # rate over whole bursts after the first (warm-up, compilation); events of one burst share a time
    bursts = sorted({t for _, t in marks})
    done_at = {t: max(d for d, tt in marks if tt == t) for t in bursts}
    steady = None
    if len(bursts) >= 3:
        first, last = bursts[0], bursts[-2]  # the last burst also draws the sample grid
        if last > first:
            steady = (done_at[last] - done_at[first]) / (last - first)
    return {
        "batch": batch, "compile_mode": compile_mode, "iterations": result.iteration,
        "seconds": round(time.perf_counter() - t0, 1), "first_burst_s": round(bursts[0] - t0, 1) if bursts else None,
        "it_per_s_overall": round(result.iterations_per_s, 2),
        "it_per_s_steady": round(steady, 2) if steady else None,
        "patches_per_s_steady": round(steady * batch, 1) if steady else None,
        "recon_first_last": [round(result.first_losses["recon"], 3), round(result.losses["recon"], 3)],
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
    }


def _unit_compiled(project) -> dict:  # noqa: ANN001
    out = {}
    for mode in ("reduce-overhead", "default"):
        try:
            out[mode] = _unit_speed(project, "fast", 400, compile_mode=mode)
            break
        except Exception as exc:  # noqa: BLE001 - report and try the next mode
            out[mode] = {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}
    return out


def _unit_batches(project) -> dict:  # noqa: ANN001
    out = {f"b{b}": _unit_speed(project, "fast", 150 if b <= 8 else 100, batch=b) for b in (1, 8, 32, 64)}
    rates = {k: v["patches_per_s_steady"] or 0 for k, v in out.items()}
    best = max(rates, key=rates.get)
    out["best"] = {"batch": best, "patches_per_s": rates[best],
                   "vs_batch_1": round(rates[best] / rates["b1"], 1) if rates["b1"] else None}
    return out


def _unit_paper_speed(project) -> dict:  # noqa: ANN001
    return {f"b{b}": _unit_speed(project, "paper", 60, batch=b) for b in (1, 8)}


ORT_WORKER = r"""
import json, sys, time
import numpy as np
import onnxruntime
from lesion_studio.onnx_runtime import make_session
from onnxruntime.capi import build_and_package_info as build
path = sys.argv[1]
out = {"torch_imported": "torch" in sys.modules, "ort_built_for_cuda": getattr(build, "cuda_version", None)}
for device in ("cuda", "cpu"):
    session = make_session(path, prefer_cuda=device == "cuda")
    row = {"providers": session.get_providers()}
    for n in (1, 64):
        x = np.random.default_rng(n).uniform(-1, 1, (n, 1, 128, 128)).astype(np.float32)
        z = np.zeros((n, 64, 32, 32), np.float32)
        for _ in range(5):
            session.run(["h2l"], {"patches": x, "noise": z})
        times = []
        for _ in range(30 if device == "cuda" else 5):
            t0 = time.perf_counter()
            session.run(["h2l"], {"patches": x, "noise": z})
            times.append(time.perf_counter() - t0)
        times.sort()
        row[f"{n}_patches_ms"] = {"median": round(1e3 * times[len(times) // 2], 2), "min": round(1e3 * times[0], 2)}
    out[device] = row
out["torch_imported_after"] = "torch" in sys.modules
print("RESULT " + json.dumps(out))
"""


def _ort_cuda(work: Path) -> dict:
    import torch

    from lesion_studio.models.specs import unit_fast
    from lesion_studio.models.unit import unit_generators
    from lesion_studio.models.unit_onnx import ONNX_FILES, export_unit_onnx

    torch.manual_seed(0)
    export_unit_onnx(unit_generators(unit_fast()).eval(), work / "ort", resolution=128, directions=("h2l",))
    script = work / "ort_worker.py"
    script.write_text(ORT_WORKER)
    proc = subprocess.run([sys.executable, str(script), str(work / "ort" / ONNX_FILES["h2l"])], capture_output=True,
                          text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    out = json.loads(lines[0][7:]) if lines else {"error": proc.stderr[-1500:]}
    out["torch_cuda"] = torch.version.cuda
    out["targets_ms"] = {"1_patches": 5.0, "64_patches": 20.0}
    return out


def _classifier(project) -> dict:  # noqa: ANN001
    from lesion_studio.classifier.config import preset
    from lesion_studio.training.classifier_trainer import train_classifier

    cfg = preset("gpu", epochs=3)
    t0 = time.perf_counter()
    result, _ = train_classifier(project, cfg, name="gpu-drn")
    return {"arch": cfg.arch, "input_size": cfg.input_size, "epochs": 3,
            "seconds": round(time.perf_counter() - t0, 1),
            "val_auc_per_epoch": [h.get("val_auc") for h in getattr(result, "history", [])]}


def _experiment(config: str, out_dir: Path, timeout: int, keep: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lesion_studio.cli.main", "experiment",
                           str(REPO / "resources" / "experiments" / config), "--output", str(out_dir)],
                          capture_output=True, text=True, timeout=timeout)
    out = {"returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
           "stderr_tail": proc.stderr[-800:] if proc.returncode else ""}
    table = out_dir / "table.md"
    if table.exists():
        out["table"] = table.read_text()[:2500]
    # Only a few files come back from a lent machine: keep the table and the picture of the samples.
    import shutil

    stem = Path(config).stem
    for pattern in ("table.md", "samples-*.png"):
        for found in sorted(out_dir.glob(pattern))[:1]:
            shutil.copy(found, keep / f"{stem}-{found.name}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", REPO / "benchmarks" / "out")))
    parser.add_argument("--skip", default="", help="comma-separated checks to skip")
    parser.add_argument("--only", default="", help="comma-separated checks to run (default: all)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA GPU"}))
        return 0
    import onnxruntime

    from lesion_studio.demo import build_demo_project

    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0),
                    "onnxruntime_providers": onnxruntime.get_available_providers()}

    def save() -> None:  # after every check, so a run cut short still reports what it did
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    work = Path(tempfile.mkdtemp())
    project = build_demo_project(work / "demo")
    folder = project.folder
    skip = set(args.skip.split(","))
    checks = [("ort_cuda", lambda: _ort_cuda(work)),
              ("unit_fast_b1", lambda: _unit_speed(project, "fast", 400)),
              ("unit_fast_b1_compiled", lambda: _unit_compiled(project)),
              ("unit_fast_batches", lambda: _unit_batches(project)),
              ("unit_paper_speed", lambda: _unit_paper_speed(project)),
              ("demo_gpu_experiment", lambda: _experiment("demo-gpu.yaml", work / "demo-gpu", 900, args.out)),
              ("ddp_nccl_torchrun", lambda: _ddp(folder, work)),
              ("unit_fast", lambda: _unit(project, "fast", 300)),
              ("drn_gpu_preset", lambda: _classifier(project)),
              ("onnx_cuda_parity", lambda: _onnx_cuda_parity(project)),
              ("unit_paper", lambda: _unit(project, "paper", 100)),
              ("demo_tiny_experiment", lambda: _experiment("demo-tiny.yaml", work / "demo-tiny", 900, args.out))]
    only = {c for c in args.only.split(",") if c}
    for name, fn in checks:
        if name in skip or (only and name not in only):
            continue
        try:
            report[name] = fn()
        except Exception as exc:  # report and go on: one failure must not hide the rest
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        save()
        print(name, json.dumps(report[name])[:600], flush=True)
    project.close()
    return 0


def _ddp(folder: Path, work: Path) -> dict:
    """NCCL needs one GPU per process: 2 processes when there are 2 GPUs, else 1 (then the run
    shows the NCCL set-up and the trainer under torchrun, not an all-reduce between processes)."""
    import torch

    nproc = min(2, torch.cuda.device_count())
    script = work / "ddp.py"
    script.write_text(DDP_WORKER)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", str(script), str(folder)],
                          capture_output=True, text=True, timeout=300)
    ranks = [json.loads(ln.split("RESULT ", 1)[1]) for ln in proc.stdout.splitlines() if "RESULT " in ln]
    if len(ranks) != nproc:
        return {"ok": False, "processes": nproc, "error": proc.stderr[-1500:]}
    return {"ok": len({r["weights"] for r in ranks}) == 1, "processes": nproc,
            "iterations": ranks[0]["iterations"], "recon": ranks[0]["recon"],
            "ranks_same_weights": len({r["weights"] for r in ranks}) == 1}


if __name__ == "__main__":
    sys.exit(main())
