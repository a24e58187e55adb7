"""GPU check: the trainers and the experiment on CUDA, as a GPU user runs them. Prints JSON.

Run on a machine with a CUDA GPU (it refuses to run without one):

    python -m benchmarks.gpu_check [--out DIR]

It builds the demo project, trains UNIT (fast and paper presets, mixed precision) and the DRN
classifier (gpu preset) for a short while, runs DDP over NCCL under torchrun, and runs the demo
experiments (demo-gpu.yaml, demo-tiny.yaml) with ``device: auto`` (so on the GPU). Results are
written to OUT/gpu_check.json after every check.
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
import json, os, sys
from lesion_studio.store import Project
from lesion_studio.training.unit_trainer import preset_config, train_unit
project = Project.open(sys.argv[1])
cfg = preset_config("tiny", iterations=20, device="cuda", export_onnx=False, sample_every=1000,
                    checkpoint_every=1000)
result = train_unit(project, cfg, name="ddp-nccl")
if os.environ.get("RANK", "0") == "0":
    print("RESULT " + json.dumps({"iterations": result.iteration, "recon": result.losses["recon"]}), flush=True)
"""


def _unit(project, preset: str, iterations: int) -> dict:  # noqa: ANN001
    import torch

    from lesion_studio.training.unit_trainer import preset_config, train_unit

    torch.cuda.reset_peak_memory_stats()
    cfg = preset_config(preset, iterations=iterations, device="auto", sample_every=max(1, iterations // 2),
                        checkpoint_every=iterations)
    t0 = time.perf_counter()
    result = train_unit(project, cfg, name=f"gpu-{preset}")
    return {
        "iterations": result.iteration, "seconds": round(time.perf_counter() - t0, 1),
        "it_per_s": round(result.iterations_per_s, 2),
        "recon_first_last": [round(result.first_losses["recon"], 3), round(result.losses["recon"], 3)],
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
        "onnx": bool(result.onnx_path),
    }


def _classifier(project) -> dict:  # noqa: ANN001
    from lesion_studio.training.classifier_trainer import preset, train_classifier

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
    checks = [("demo_gpu_experiment", lambda: _experiment("demo-gpu.yaml", work / "demo-gpu", 900, args.out)),
              ("ddp_nccl_torchrun", lambda: _ddp(folder, work)),
              ("unit_fast", lambda: _unit(project, "fast", 300)),
              ("drn_gpu_preset", lambda: _classifier(project)),
              ("unit_paper", lambda: _unit(project, "paper", 100)),
              ("demo_tiny_experiment", lambda: _experiment("demo-tiny.yaml", work / "demo-tiny", 900, args.out))]
    for name, fn in checks:
        if name in skip:
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
    script = work / "ddp.py"
    script.write_text(DDP_WORKER)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                           str(script), str(folder)], capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if "RESULT " in ln]
    return json.loads(lines[0].split("RESULT ", 1)[1]) if lines else {"error": proc.stderr[-1500:]}


if __name__ == "__main__":
    sys.exit(main())
