"""UNIT training speed on the CPU: this tree against a baseline commit, interleaved. Prints JSON.

    python -m benchmarks.unit_bench [--iterations 12] [--pairs 3] [--threads 2] [--baseline REV] [--quick] [--no-fp32]
        [--resolutions 128,64]

Both trees train the ``fast`` preset (batch 1, at 128² and 64²) on the demo project, each in its own
interpreter (the two trees cannot share one), alternating baseline / this tree ``--pairs`` times.
Each run times every iteration from its progress events: the first two (oneDNN picks its kernels)
and the last (it also draws the sample grid) are dropped, and the median of the rest is that run's
figure; the figure of a tree is the median over its runs. Wall time and process CPU time (all
threads) are both reported: on a machine shared with other jobs wall time swings with the load,
CPU time less so (but with 2 threads an oversubscribed OpenMP pool spin-waits, which counts as
CPU time too). ``speedup`` = the median over rounds of baseline s/iteration ÷ this tree's
s/iteration in the same round.

The baseline defaults to 41e66ca, the commit the performance issue measured ("at parity with the
reference UNIT", mingyuliutw/UNIT); it is checked out with ``git archive`` into a temporary folder,
so the working tree is never touched. Without git or that commit the baseline is skipped.

This tree runs with its defaults, so ``cpu_bf16: auto`` trains in bfloat16 where the CPU computes
it natively (``this_tree_precision`` says which); ``this_tree_fp32`` is the same tree forced to fp32,
to separate the bf16 gain from the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import emit

REPO = Path(__file__).resolve().parents[1]
BASELINE = "41e66ca"

WORKER = r"""
import json, sys, time
from lesion_studio.store import Project
from lesion_studio.training.unit_trainer import train_unit
from lesion_studio.training.unit_config import preset_config
folder, name, iterations, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
overrides = json.loads(sys.argv[5])
resolution = int(sys.argv[6])
project = Project.open(folder)
marks = [(0, time.perf_counter(), time.process_time())]
def progress(event):
    if event.stage == "train-gan":
        marks.append((event.done, time.perf_counter(), time.process_time()))
cfg = preset_config("fast", iterations=iterations, device="cpu", cpu_threads=threads, export_onnx=False,
                    sample_every=10**6, checkpoint_every=10**6, resolution=resolution, **overrides)
result = train_unit(project, cfg, name=name, progress=progress)
steps = [(b[1] - a[1], b[2] - a[2]) for a, b in zip(marks[1:], marks[2:])]
project.close()
print("RESULT " + json.dumps({"wall": [s[0] for s in steps], "cpu": [s[1] for s in steps],
                              "final_recon": result.losses.get("recon")}))
"""


def _run(tree: Path, folder: Path, name: str, iterations: int, threads: int, overrides: dict,
         resolution: int = 128) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", WORKER, str(folder), name, str(iterations), str(threads),
                           json.dumps(overrides), str(resolution)],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"training run failed in {tree}: {proc.stderr[-1500:]}")
    data = json.loads(lines[0][7:])
    keep = slice(1, -1)  # marks[1:] already drops iteration 1; drop iteration 2 and the last
    return {"wall_s": statistics.median(data["wall"][keep]), "cpu_s": statistics.median(data["cpu"][keep]),
            "final_recon": data["final_recon"]}


def _default_precision() -> str:
    """What this tree's default ``cpu_bf16: auto`` trains in on this CPU."""
    from lesion_studio.training.common import cpu_has_native_bf16

    return "bf16" if cpu_has_native_bf16() else "fp32"


def _baseline_tree(rev: str, dest: Path) -> Path | None:
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _race(trees: dict[str, tuple[Path, dict]], folder: Path, args: argparse.Namespace, resolution: int) -> dict:
    """Every tree ``args.pairs`` times at one resolution, interleaved; figures and speed-ups."""
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    iterations = args.iterations * max(1, (128 // resolution) ** 2)  # smaller patches: more, shorter steps
    for i in range(args.pairs):
        for key, (tree, overrides) in trees.items():  # the same order in every round
            runs[key].append(_run(tree, folder, f"{key}-{resolution}-{i}", iterations, args.threads,
                                  overrides, resolution))
    out: dict = {"iterations_per_run": iterations}
    for key, rs in runs.items():
        out[key] = {"s_per_iteration_wall": statistics.median(r["wall_s"] for r in rs),
                    "s_per_iteration_cpu": statistics.median(r["cpu_s"] for r in rs), "runs": rs}
        out[key]["iterations_per_s"] = 1.0 / out[key]["s_per_iteration_wall"]
    if "baseline" in runs:  # the median of per-round ratios: a load swing hits both runs of a round
        out["target_speedup"] = 1.3
        for key in (k for k in runs if k != "baseline"):
            suffix = "" if key == "this_tree" else key.removeprefix("this_tree")
            for what in ("wall", "cpu"):
                out[f"speedup_{what}{suffix}"] = statistics.median(
                    b[f"{what}_s"] / t[f"{what}_s"] for b, t in zip(runs["baseline"], runs[key], strict=True))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--baseline", default=BASELINE)
    p.add_argument("--quick", action="store_true", help="8 iterations, 2 pairs")
    p.add_argument("--resolutions", type=lambda t: [int(v) for v in t.split(",")], default=[128, 64],
                   help="patch sides to race at, comma-separated (64 is the FracAtlas recipe's)")
    p.add_argument("--no-fp32", action="store_true", help="skip timing this tree forced to fp32 (cpu_bf16: false)")
    args = p.parse_args(argv)
    if args.quick:
        args.iterations, args.pairs = 8, 2
    from lesion_studio.demo import build_demo_project

    work = Path(tempfile.mkdtemp(prefix="unit-bench-"))
    try:
        build_demo_project(work / "demo").close()
        base = _baseline_tree(args.baseline, work / "baseline")
        trees = {"this_tree": (REPO, {})} if base is None else {"baseline": (base, {}), "this_tree": (REPO, {})}
        if not args.no_fp32:
            trees["this_tree_fp32"] = (REPO, {"cpu_bf16": False})
        result: dict = {"preset": "fast", "batch": 1, "threads": args.threads,
                        "iterations_per_run": args.iterations, "pairs": args.pairs, "baseline_commit": args.baseline,
                        "cpu_count": os.cpu_count(), "this_tree_precision": _default_precision()}
        per_resolution = {res: _race(trees, work / "demo", args, res) for res in args.resolutions}
        # the first resolution's figures stay at the top level (what the table reads first)
        result.update(resolution=args.resolutions[0], **per_resolution[args.resolutions[0]],
                      by_resolution={str(r): v for r, v in per_resolution.items()})
        result["load_avg_1m_after"] = os.getloadavg()[0]
        if base is None:
            result["baseline_skipped"] = f"git archive {args.baseline} failed (no git or no such commit)"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
