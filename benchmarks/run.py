"""Run every benchmark (or the named ones); write one JSON and a markdown table into benchmarks/out/.

    python -m benchmarks.run                 # every *_bench.py, full settings
    python -m benchmarks.run --quick         # shorter settings (what `make bench` runs; ~30 min on 2 cores)
    python -m benchmarks.run translate unit  # translate_bench.py and unit_bench.py only
    python -m benchmarks.run --render benchmarks/out/bench.json   # re-write the table only
    python -m benchmarks.run --merge experiment   # re-run one benchmark into the last bench.json

Writes ``benchmarks/out/bench.json`` (every script's JSON, the machine, the load) and
``benchmarks/out/bench.md`` (the figures and ratios that matter, one table, with the machine it
ran on: copy it into docs/performance.md). Each script runs in its own interpreter, one after
the other. Scripts that need ../shared/data report "skipped" without it. gpu_check.py and
gpu_detector.py are not ``*_bench.py``: they run only on a CUDA machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

# Shorter settings for --quick (a benchmark absent here has no quick mode: it is already short).
QUICK_ARGS = {
    "classifier": ["--size", "128", "--steps", "3"],
    "gui": ["--skip-fracatlas"],
    "pause": ["--quick"],
    "preview": ["--iterations", "5", "--repeat", "30"],
    "scoring": ["--quick"],
    "translate": ["--quick"],
    "unit": ["--quick"],
}
QUICK_ENV = {"synthesis": {"SYNTH_BENCH_ITERS": "10"}}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
                            "os": platform.platform(terse=True)}
    try:
        import onnxruntime
        import torch

        info.update(torch=torch.__version__, onnxruntime=onnxruntime.__version__,
                    cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:
        pass
    return info


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _f(v: Any, unit: str = "", digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}{unit}" if isinstance(v, int | float) else str(v)


def _pct(v: Any) -> float | None:
    return None if v is None else 100.0 * v


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(area, what, this project, reference / ratio, target) rows from the scripts' JSON."""
    rows: list[tuple[str, str, str, str, str]] = []
    tr = results.get("translate", {})
    cores = tr.get("physical_cores")
    for threads in sorted({k for k in tr if k.startswith("threads_")}, reverse=True):
        for batch in ("batch_1", "batch_16"):
            r = _get(tr, threads, batch)
            if r:
                n = batch.split("_")[1]
                rows.append(("translation", f"`{tr.get('preset')}` h2l, {n}×128², onnxruntime CPU, "
                             f"{threads.split('_')[1]} thread(s)",
                             f"{_f(r['onnxruntime']['wall_ms'], ' ms')} (CPU {_f(r['onnxruntime']['cpu_ms'], ' ms')})",
                             f"torch {_f(r['torch']['wall_ms'], ' ms')}: **{_f(r['ratio_wall'], '×', 2)}** "
                             f"(CPU time {_f(r['ratio_cpu'], '×', 2)})"
                             + (f"; GUI session (no spinning) {_f(r['ratio_wall_gui'], '×', 2)}"
                                if r.get("ratio_wall_gui") is not None else "")
                             + (f"; the app's translator (per-core chunks) **{_f(r['ratio_wall_translator'], '×', 2)}**"
                                if r.get("ratio_wall_translator") is not None else ""), "≤ 0.8×"))
    if cores:
        rows.append(("translation", "physical cores used by the sessions", str(cores), "", ""))
    un = results.get("unit", {})
    if "this_tree" in un:
        t, b = un["this_tree"], un.get("baseline")
        precision = un.get("this_tree_precision", "fp32")
        rows.append(("GAN training", f"UNIT `fast` {un.get('resolution', 128)}², batch 1, {un.get('threads')} threads, s/iteration, "
                     f"defaults (`cpu_bf16: auto` → {precision} on this CPU)",
                     f"{_f(t['s_per_iteration_wall'], ' s', 3)} (CPU {_f(t['s_per_iteration_cpu'], ' s', 3)})",
                     (f"baseline {un.get('baseline_commit')} {_f(b['s_per_iteration_wall'], ' s', 3)}: "
                      f"**{_f(un.get('speedup_wall'), '×', 2)}** faster (CPU time {_f(un.get('speedup_cpu'), '×', 2)})")
                     if b else "baseline skipped", "≥ 1.3×"))
        t32 = un.get("this_tree_fp32")
        if t32:
            rows.append(("GAN training", "the same forced to fp32 (`cpu_bf16: false`)",
                         f"{_f(t32['s_per_iteration_wall'], ' s', 3)} (CPU {_f(t32['s_per_iteration_cpu'], ' s', 3)})",
                         f"{_f(un.get('speedup_wall_fp32'), '×', 2)} faster than the baseline "
                         f"(CPU time {_f(un.get('speedup_cpu_fp32'), '×', 2)})", ""))
    for res, r in sorted((un.get("by_resolution") or {}).items(), key=lambda kv: -int(kv[0])):
        if int(res) == un.get("resolution") or "this_tree" not in r or "speedup_wall" not in r:
            continue  # the first resolution already has its rows above
        rows.append(("GAN training", f"the same at {res}², defaults", _f(r["this_tree"]["s_per_iteration_wall"], " s", 3),
                     f"baseline {_f(r['baseline']['s_per_iteration_wall'], ' s', 3)}: **{_f(r['speedup_wall'], '×', 2)}**"
                     f" faster; forced fp32 {_f(r.get('speedup_wall_fp32'), '×', 2)}", "≥ 1.3×"))
    sbs = results.get("classifier", {}).get("side_by_side", {})
    if "images_per_s" in sbs:
        ips = sbs["images_per_s"]
        rows.append(("Classifier training", f"product vs plain loop, DRN-D-22 {sbs.get('size')}², batch {sbs.get('batch')}, img/s",
                     f"{_f(ips.get('product'), '', 2)} vs {_f(ips.get('plain'), '', 2)}",
                     f"**{_f(sbs.get('product_vs_plain'), '×', 2)}**; resnet18 {_f(ips.get('resnet18'), '', 2)} img/s "
                     f"({_f(sbs.get('resnet18_vs_plain'), '×', 2)} the plain DRN loop)", "≥ 2×"))
        if "product_hand_study" in ips:
            rows.append(("Classifier training", "product's hand-study network (drn_d_22_half + map head) vs the "
                         "plain DRN-D-22 loop, img/s",
                         f"{_f(ips.get('product_hand_study'), '', 2)} vs {_f(ips.get('plain'), '', 2)}",
                         f"**{_f(sbs.get('product_hand_study_vs_plain'), '×', 2)}**", "≥ 2×"))
    sc = results.get("scoring", {})
    if "images_per_s" in sc:
        rows.append(("Scoring", f"ONNX batch scoring, DRN-D-22 + map head {sc.get('size')}², {sc.get('images')} images, img/s",
                     _f(sc["images_per_s"].get("onnx"), "", 1),
                     f"torch {_f(sc['images_per_s'].get('torch'), '', 1)}: **{_f(sc.get('onnx_vs_torch'), '×', 2)}**",
                     "≥ 1.2×"))
    cl = results.get("classifier", {})
    if "drn_c_26_images_per_s" in cl:
        rows.append(("DRN training", f"DRN-C-26 {cl.get('size')}², batch {cl.get('batch')}, img/s",
                     _f(cl["drn_c_26_images_per_s"], "", 2),
                     f"resnet18 {_f(cl.get('resnet18_images_per_s'), '', 2)}: {_f(cl.get('drn_c_26_vs_resnet18'), '×', 3)}",
                     ""))
        rows.append(("DRN training", f"DRN-D-22 {cl.get('size')}², batch {cl.get('batch')}, img/s",
                     _f(cl.get("drn_d_22_images_per_s"), "", 2), "", ""))
    io = results.get("io", {})
    for name in ("RG3_UNC", "RG3_J2KR"):
        r = _get(io, "dicom_open", name)
        if r:
            rows.append(("I/O", f"open {name}", _f(r["open_radiograph_s"] * 1e3, " ms"),
                         f"bare pydicom {_f(r['bare_pydicom_s'] * 1e3, ' ms')}: {_f(r['ratio'], '×', 2)}", "≤ 1.3×"))
    if _get(io, "fracatlas", "open_project_s") is not None:
        rows.append(("I/O", "open the FracAtlas project", _f(io["fracatlas"]["open_project_s"], " s", 3), "", "≤ 1 s"))
    gui = results.get("gui", {})
    if _get(gui, "start", "start_to_window_s") is not None:
        rows.append(("GUI", "start to main window (fresh interpreter)", _f(gui["start"]["start_to_window_s"], " s", 2),
                     f"torch imported: {gui['start'].get('torch_imported_at_start')}", ""))
    pa = results.get("pause", {})
    if _get(pa, "first", "pause_wall_s") is not None:
        where = "demo project" if pa.get("project") == "demo" else "the given project"
        rows.append(("GUI", f"pause a `{pa.get('preset')}` GAN run ({where}), cancel to return",
                     f"{_f(pa['first']['pause_wall_s'], ' s', 2)}, again {_f(pa['second']['pause_wall_s'], ' s', 2)}",
                     f"CPU {_f(pa['first']['pause_cpu_s'], ' s', 2)}; ONNX files written: "
                     f"{len(pa.get('onnx_files_after_pause', []))}", "≤ 5 s"))
        rows.append(("GUI", "second GAN start: patches prepared (from the project's cache)",
                     _f(pa.get("second_start_patches_s"), " s", 2),
                     f"first iteration at {_f(pa.get('second_start_to_iteration_s'), ' s', 1)}; first start: "
                     f"patches {_f(pa.get('first_start_patches_s'), ' s', 1)}", "≤ 5 s"))
    pv = results.get("preview", {})
    if _get(pv, "slider_demo_256", "ab_off", "median_ms") is not None:
        rows.append(("preview", "n slider to repaint, 256² window", _f(pv["slider_demo_256"]["ab_off"]["median_ms"], " ms"),
                     "", "≤ 16 ms"))
    if _get(pv, "move_to_translated_cpu", "median_ms") is not None:
        m = pv["move_to_translated_cpu"]
        rows.append(("preview", "window move to translated view (CPU)", _f(m["median_ms"], " ms"),
                     f"cold {_f(m.get('cold_ms'), ' ms')}", ""))
    sy = results.get("synthesis", {})
    if _get(sy, "translate_128_ms", "onnx", "median") is not None:
        rows.append(("synthesis", "one 128² translation after training (FracAtlas hand)",
                     _f(sy["translate_128_ms"]["onnx"]["median"], " ms"),
                     f"torch {_f(sy['translate_128_ms']['torch']['median'], ' ms')}", "≤ 60 ms"))
    q = sy.get("quality") if isinstance(sy, dict) else None
    if isinstance(q, dict) and q.get("headline"):
        h = q["headline"]
        rows.append(("synthesis", f"generator quality report of that model ({q.get('n_real')} real, "
                     f"{q.get('n_synthetic')} synthetic windows)", _f(q.get("seconds"), " s"),
                     f"realism AUC {_f(h.get('realism_auc'), '', 3)}, lesion rate ratio "
                     f"{_f(h.get('lesion_rate_ratio'), '', 2)}, drift {_f(_pct(h.get('intensity_drift')), ' %')}, "
                     f"KID {_f(h.get('kid'), '', 0)}", "≤ 120 s"))
    ex = results.get("experiment", {})
    if ex.get("stages"):
        total = sum(s.get("seconds", 0) for s in ex["stages"])
        by_kind: dict[str, float] = {}
        for s in ex["stages"]:
            kind = s["stage"].split("/")[0]
            by_kind[kind] = by_kind.get(kind, 0.0) + s.get("seconds", 0)
        for kind, sec in by_kind.items():
            rows.append(("experiment", f"{ex.get('experiment')}: {kind} stages", _f(sec, " s"), "", ""))
        rows.append(("experiment", f"{ex.get('experiment')}: whole protocol", _f(ex.get("wall_s"), " s"),
                     f"stages {_f(total, ' s')}", ""))
    for name, r in results.items():
        if isinstance(r, dict) and ("error" in r or "skipped" in r):
            rows.append((name, "not measured", str(r.get("skipped") or r.get("error"))[:120], "", ""))
    return rows


def markdown(results: dict[str, Any], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [f"Measured {meta['date']} on {m['cpu']} ({m['logical_cpus']} logical CPUs), "
             f"torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}, GPU: {m.get('cuda') or 'none'}; "
             f"`{meta['command']}`" + (f" in {meta['seconds'] / 60:.0f} min" if meta.get("seconds") else "")
             + f"; 1-minute load average {meta['load_before']:.1f} at the start, {meta['load_after']:.1f} at the end."
             + "".join(f" Re-run on {r['date']} (`--merge`): {', '.join(r['names'])}." for r in meta.get("reruns", [])),
             "",
             "| area | what | this project | reference and ratio | target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in table(results)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="benchmarks to run (default: every *_bench.py)")
    p.add_argument("--quick", action="store_true", help="shorter settings where a script has them")
    p.add_argument("--render", type=Path, help="only re-write bench.md from this bench.json")
    p.add_argument("--merge", action="store_true",
                   help="put the named benchmarks' new results into the existing bench.json (the table says so)")
    args = p.parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text())
        text = markdown(data["results"], data["meta"])
        (OUT / "bench.md").write_text(text)
        sys.stdout.write(text)
        return 0
    names = args.names or sorted(p.stem.removesuffix("_bench") for p in HERE.glob("*_bench.py"))
    OUT.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
                            "command": "python -m benchmarks.run" + (" --quick" if args.quick else ""),
                            "load_before": os.getloadavg()[0]}
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name in names:
        extra = QUICK_ARGS.get(name, []) if args.quick else []
        env = {**os.environ, **(QUICK_ENV.get(name, {}) if args.quick else {})}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}_bench", *extra], cwd=HERE.parent,
                              capture_output=True, text=True, env=env)
        try:
            results[name] = json.loads(proc.stdout)
        except ValueError:
            results[name] = {"error": " / ".join(proc.stderr.strip().splitlines()[-3:]), "returncode": proc.returncode}
        results[name]["bench_seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {results[name]['bench_seconds']} s", file=sys.stderr, flush=True)
    meta.update(seconds=time.perf_counter() - t0, load_after=os.getloadavg()[0])
    if args.merge and (OUT / "bench.json").is_file():  # re-run some benchmarks into the last full run
        last = json.loads((OUT / "bench.json").read_text())
        rerun = {"names": names, "date": meta["date"], "load_before": meta["load_before"],
                 "load_after": meta["load_after"]}
        meta = {**last["meta"], "reruns": [*last["meta"].get("reruns", []), rerun]}
        results = {**last["results"], **results}
    (OUT / "bench.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    (OUT / "bench.md").write_text(markdown(results, meta))
    sys.stdout.write(markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
