"""Turn a model trained in a project into a built-in model (lesion_studio/resources/models/NAME/).

    python tools/make_builtin_model.py PROJECT MODEL NAME --command "lesion-studio train-gan ..." \
        --wall-s 1234 --data "..." --licence "..." [--sample PNG]

Copies the inference files (weights + sidecar, ONNX, config), writes ``builtin.json`` from the
project's registry row and ``MODEL_CARD.md`` (data and licence, exact command, iterations, wall
time, final losses and any metrics the registry holds), and checks the result (hashes, 20 MB).
The training checkpoint is left out: a built-in model is for inference and is never resumed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from lesion_studio.builtin_models import CARD, DESCRIPTOR, FILES, check_builtin, find_builtin
    from lesion_studio.models import layout
    from lesion_studio.paths import builtin_models_dir
    from lesion_studio.store.project import Project

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("model", help="the model's name in the project")
    ap.add_argument("name", help="the built-in model's name (folder), e.g. phantom-unit")
    ap.add_argument("--command", required=True, help="the exact command that trained it")
    ap.add_argument("--wall-s", type=float, required=True, help="measured training wall time in seconds")
    ap.add_argument("--cpu", default="", help="the machine it was trained on")
    ap.add_argument("--data", required=True, help="what it was trained on")
    ap.add_argument("--licence", required=True, help="the data's licence and attribution")
    ap.add_argument("--summary", default="", help="one line for listings")
    ap.add_argument("--sample", type=Path, help="a sample sheet PNG to ship beside the card")
    ap.add_argument("--quality", type=Path, action="append", default=[],
                    help="a JSON file of `lesion-studio assess-generator --json` to put in the card (repeatable: "
                         "e.g. one per report seed or body part)")
    ap.add_argument("--limits", default=_PHANTOM_LIMITS, help="the card's Limits section (what not to use it for)")
    args = ap.parse_args(argv)

    project = Project.open(args.project)
    record = project.model(args.model)
    src = project.resolve_path(record.path).parent
    project.close()
    dest = builtin_models_dir() / args.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in FILES:  # the model's own files; the card and descriptor are written below
        if name not in (CARD, DESCRIPTOR) and (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    meta = dict(record.metadata)
    if record.kind == "unit" and not (dest / layout.ONNX_RESIDUAL).is_file():
        meta["onnx_h2l_residual_sha256"] = _export_residual(dest, meta)  # trained before the residual graph
    if args.sample:
        shutil.copy2(args.sample, dest / "samples.png")
    descriptor = {"kind": record.kind, "sha256": record.sha256, "body_parts": list(record.body_parts),
                  "config": record.config, "metadata": meta, "summary": args.summary}
    (dest / DESCRIPTOR).write_text(json.dumps(descriptor, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (dest / CARD).write_text(_card(args, record, meta), encoding="utf-8")
    model = find_builtin(args.name)
    assert model is not None
    check_builtin(model)
    print(f"{dest}: {model.size_bytes() / 2**20:.2f} MB")
    return 0


def _export_residual(dest: Path, meta: dict) -> str:
    """Export the residual graph (``translation: residual``) of a model trained before it existed."""
    from lesion_studio.models import layout
    from lesion_studio.models.unit import load_unit_model
    from lesion_studio.models.unit_onnx import export_unit_onnx

    generators, _ = load_unit_model(dest / layout.WEIGHTS)
    return export_unit_onnx(generators, dest, resolution=int(meta["resolution"]),
                            directions=("h2l_residual",))["h2l_residual"]


def _card(args: argparse.Namespace, record, meta: dict) -> str:  # noqa: ANN001
    cfg = record.config
    losses = meta.get("losses") or {}
    data = meta.get("data") or {}
    lines = [
        f"# Built-in model: {args.name}",
        "",
        args.summary,
        "",
        f"- **Kind**: {record.kind} (UNIT lesion translator), {cfg.get('resolution')} px, preset "
        f"`{cfg.get('preset')}` ({cfg.get('base_channels')} base channels, {cfg.get('n_res')} residual blocks)",
        f"- **Body parts**: {', '.join(record.body_parts)}",
        f"- **Use it**: `lesion-studio translate PROJECT --model builtin-{args.name} ...`, the Synthesis panel "
        f"(listed as built-in), or `generator: {{model: builtin-{args.name}}}` in an experiment config",
        "",
        "## Data and licence",
        "",
        args.data,
        "",
        args.licence,
        "",
        "## How it was made",
        "",
        "```bash",
        args.command,
        "```",
        "",
        f"- **Iterations**: {meta.get('iteration')} (batch size {cfg.get('batch_size')}, seed {cfg.get('seed')})",
        f"- **Training data**: {data.get('lesion', {}).get('patches', '?')} lesion patches "
        f"from {data.get('lesion', {}).get('images', '?')} images, "
        f"{data.get('normal', {}).get('patches', '?')} normal patches from "
        f"{data.get('normal', {}).get('images', '?')} images (training split only)",
        f"- **Wall time**: {args.wall_s / 60:.1f} min ({args.wall_s:.0f} s) on {args.cpu or 'CPU'}",
        f"- **Device**: {meta.get('device')}",
        "",
        "## Metrics",
        "",
        "Final training losses (last logged iteration):",
        "",
        "| " + " | ".join(losses) + " |",
        "|" + "---|" * len(losses),
        "| " + " | ".join(f"{v:.3f}" for v in losses.values()) + " |",
        "",
    ]
    reports = [json.loads(Path(q).read_text(encoding="utf-8")) for q in args.quality]
    reports = reports or ([meta["quality"]] if meta.get("quality") else [])
    if reports:
        lines += ["Generator quality report (`lesion-studio assess-generator`, validation windows the model never",
                  "trained on; realism 0.5 = indistinguishable from real lesion windows; \"untouched windows\" is the",
                  "realism of the same source windows left as they were, the floor a generator starts from; blend",
                  f"{reports[0].get('settings', {}).get('blend_mode', '?')}, n = "
                  f"{reports[0].get('settings', {}).get('n', '?')}):", "",
                  "| body part | report seed | realism AUC (95% CI) | untouched windows | lesion rate: synthetic / real |"
                  " drift | KID | CAM in window |", "|---|---|---|---|---|---|---|---|"]
        lines += [_quality_row(r) for r in reports]
        lines.append("")
    else:
        lines += ["The generator quality report (`lesion-studio assess-generator`) was not available when this",
                  "model was made; run it on the demo project to measure realism, lesion signal and drift.", ""]
    lines += [
        "## Limits",
        "",
        args.limits,
        "",
        "Files: `model.safetensors` + `model.json` (weights, never unpickled), `model.onnx` (inference",
        "without torch), `model-h2l-residual.onnx` (the residual graph of `--translation residual`, where",
        "exported), `config.yaml` (the training config), `builtin.json` (registry entry)" +
        (", `samples.png` (the trainer's last sample sheet: normal, translated, lesion, reconstructed)." if args.sample
         else "."),
        "",
    ]
    return "\n".join(lines)


_PHANTOM_LIMITS = ("Trained on procedural phantoms for demonstration: it paints phantom-like lytic lesions and\n"
                   "says nothing about real radiographs. Do not use it for research results.")


def _quality_row(report: dict) -> str:
    """One card table row from a quality report dict (the CLI's --json output or a sidecar's)."""
    r, s, d, k = report["realism"], report["lesion_signal"], report["intensity_drift"], report["kid"]
    loc = (report.get("localisation") or {}).get("fraction_inside")
    return (f"| {', '.join(report.get('body_parts') or []) or 'all'} | {report.get('seed')} | "
            f"{r['auc']:.3f} ({r['ci_low']:.3f}–{r['ci_high']:.3f}) | "
            f"{'–' if r.get('untouched_auc') is None else format(r['untouched_auc'], '.3f')} | "
            f"{s['synthetic_rate']:.0%} / {s['real_rate']:.0%} (ratio {s['ratio']:.2f}) | {d['drift']:.1%} | "
            f"{k['kid']:.0f} | {'–' if loc is None else f'{loc:.0%}'} |")


if __name__ == "__main__":
    sys.exit(main())
