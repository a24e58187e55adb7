"""Report files of an experiment: results.json, Table 2 (Markdown), ROC PNGs, sample grids, configs.

Drawn with Pillow (matplotlib is not a dependency): plain axes, one colour per model, AUC in the
legend, which is all a ROC plot needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.config import write_config_file

COLOURS = {"Baseline": (90, 90, 90), "Augmented": (200, 60, 40), "TL": (40, 110, 200)}


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt_auc(entry: dict[str, Any]) -> str:
    a = entry.get("auc")
    if not a:
        return "n/a (no samples kept)"
    return f"{a['auc']:.3f} ({a['ci_low']:.3f}–{a['ci_high']:.3f})"


def table_markdown(results: dict[str, Any]) -> str:
    """The paper's Table 2 layout, one table per evaluation line (headline first)."""
    lines = [f"# {results['name']}: classification results", "",
             f"Test set: {results['test_set']}. ROC AUC with {results['config']['bootstrap']['confidence']:.0%} "
             f"bootstrap CI ({results['config']['bootstrap']['resamples']} resamples, seed "
             f"{results['config']['bootstrap']['seed']}); t chosen by validation AUC.", ""]
    evals = results["evaluations"]
    for line in dict.fromkeys(e["line"] for e in evals):
        title = "Headline (excluded images left out)" if line == "headline" else f"Test images {line}"
        lines += [f"## {title}", "",
                  "| Body part | Type | t | Augmented samples | ROC AUC (95% CI) | ΔAUC vs baseline (95% CI) |",
                  "|---|---|---|---|---|---|"]
        for e in (e for e in evals if e["line"] == line):
            kind = e["type"] if e["type"] != "TL" else f"TL (from {e.get('transfer_from')})"
            t = "–" if e.get("t") is None else f"{e['t']:g}"
            d = e.get("delta_vs_baseline")
            delta = f"{d['delta']:+.3f} ({d['ci_low']:+.3f}–{d['ci_high']:+.3f})" if d else "–"
            lines.append(f"| {e['target']} | {kind} | {t} | {e.get('augmented_samples') or 0} | {_fmt_auc(e)} | "
                         f"{delta} |")
        test = next((e["test"] for e in evals if e["line"] == line), {})
        lines += ["", f"Test images: {test.get('images')} ({test.get('lesion')} lesion, {test.get('normal')} normal).",
                  ""]
        parts = [(e, p, a) for e in evals if e["line"] == line for p, a in (e.get("per_body_part") or {}).items()]
        if parts:
            lines += ["Per body part:", "", "| Target | Type | Body part | ROC AUC (95% CI) |", "|---|---|---|---|"]
            lines += [f"| {e['target']} | {e['type']} | {p} | {_fmt_auc({'auc': a})} |" for e, p, a in parts]
            lines.append("")
    lines += ["## Threshold choice (validation AUC of the augmented classifier)", "",
              "| Study | t | Kept / candidates | Validation AUC |", "|---|---|---|---|"]
    for s in results["studies"]:
        for tr in s["threshold_trials"]:
            v = "–" if tr.get("val_auc") is None else f"{tr['val_auc']:.3f}"
            mark = " ✔" if tr["t"] == s["chosen_t"] else ""
            lines.append(f"| {s['key']} | {tr['t']:g}{mark} | {tr['kept']} / {s['candidates']} | {v} |")
    return "\n".join(lines) + "\n"


def _font(size: int):  # noqa: ANN202
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def roc_png(path: Path, title: str, curves: list[tuple[str, str, list[float], list[float]]]) -> None:
    """Curves as (label, type, fpr, tpr) on one plot."""
    from PIL import Image, ImageDraw

    size, m = 520, 60
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    span = size - 2 * m

    def xy(fx: float, ty: float) -> tuple[float, float]:
        return m + fx * span, size - m - ty * span

    d.rectangle([m, m, size - m, size - m], outline="black")
    for v in np.linspace(0, 1, 6):
        d.line([xy(v, 0), (xy(v, 0)[0], xy(v, 0)[1] + 5)], fill="black")
        d.text((xy(v, 0)[0] - 8, size - m + 8), f"{v:.1f}", fill="black", font=_font(12))
        d.line([xy(0, v), (xy(0, v)[0] - 5, xy(0, v)[1])], fill="black")
        d.text((m - 32, xy(0, v)[1] - 7), f"{v:.1f}", fill="black", font=_font(12))
    d.line([xy(0, 0), xy(1, 1)], fill=(190, 190, 190), width=1)
    d.text((size / 2 - 60, size - 26), "False positive rate", fill="black", font=_font(14))
    d.text((8, 20), "True positive rate", fill="black", font=_font(14))
    d.text((m, 8), title, fill="black", font=_font(15))
    for i, (label, kind, fpr, tpr) in enumerate(curves):
        colour = COLOURS.get(kind, (0, 150, 0))
        d.line([xy(f, t) for f, t in zip(fpr, tpr, strict=True)], fill=colour, width=3)
        ly = size - m - 20 - 18 * (len(curves) - 1 - i)
        d.line([(size - m - 210, ly + 7), (size - m - 190, ly + 7)], fill=colour, width=3)
        d.text((size - m - 185, ly), label, fill="black", font=_font(13))
    img.save(path)


def samples_png(path: Path, title: str, kept: list[dict[str, Any]], rejected: list[dict[str, Any]],
                threshold: float | None, tile: int = 112, per_row: int = 8) -> None:
    """Kept (top row) and rejected (bottom row) candidates: a crop around the window, with its score."""
    from PIL import Image, ImageDraw

    from lesion_studio.classifier.preprocess import Preprocessing, normalise_intensity
    from lesion_studio.io import open_radiograph

    def crop(sample: dict[str, Any]) -> Image.Image:
        try:
            px = open_radiograph(sample["path"]).pixels
        except Exception:  # noqa: BLE001 - a missing file shows as a grey tile, the report still completes
            return Image.new("L", (tile, tile), 128)
        x0, y0, x1, y1 = sample["box"]
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
        a = px[max(0, int(cy - r)):int(cy + r), max(0, int(cx - r)):int(cx + r)]
        a = normalise_intensity(a if a.size else px, Preprocessing())
        return Image.fromarray((a * 255).astype(np.uint8)).resize((tile, tile))

    rows = [("kept", kept[:per_row]), ("rejected", rejected[:per_row])]
    head, label_h = 28, 18
    img = Image.new("RGB", (per_row * (tile + 4) + 90, head + 2 * (tile + label_h + 8)), "white")
    d = ImageDraw.Draw(img)
    t = "" if threshold is None else f" (t = {threshold:g})"
    d.text((6, 6), f"{title}: kept vs rejected synthetic samples{t}", fill="black", font=_font(14))
    for r, (name, items) in enumerate(rows):
        y = head + r * (tile + label_h + 8)
        d.text((6, y + tile // 2 - 8), name, fill=(0, 120, 0) if name == "kept" else (170, 0, 0), font=_font(14))
        for i, s in enumerate(items):
            x = 86 + i * (tile + 4)
            img.paste(crop(s).convert("RGB"), (x, y))
            d.text((x + 2, y + tile + 2), f"score {s['score']:.3f}", fill="black", font=_font(12))
    img.save(path)


def write_report(out: Path, results: dict[str, Any], project: Any) -> dict[str, str]:
    out = Path(out)
    files: dict[str, str] = {}
    plain = {k: v for k, v in results.items()}
    _atomic_text(out / "results.json", json.dumps(plain, indent=1, sort_keys=False, default=str))
    files["results"] = str(out / "results.json")
    _atomic_text(out / "table.md", table_markdown(results))
    files["table"] = str(out / "table.md")
    write_config_file(out / "config.yaml", results["config"])
    files["config"] = str(out / "config.yaml")
    _atomic_text(out / "models.json", json.dumps(results["models"], indent=1, default=str))
    files["models"] = str(out / "models.json")
    for target in dict.fromkeys(e["target"] for e in results["evaluations"]):
        curves = [(f"{e['type']}{'' if e['type'] == 'Baseline' else ' t=' + format(e['t'], 'g')}  "
                   f"AUC {e['auc']['auc']:.3f}", e["type"], e["roc"]["fpr"], e["roc"]["tpr"])
                  for e in results["evaluations"] if e["target"] == target and e["line"] == "headline"
                  and e.get("roc")]
        path = out / f"roc-{target}.png"
        roc_png(path, f"ROC, {target} (test)", curves)
        files[f"roc {target}"] = str(path)
    for s in results["studies"]:
        scored = []
        for sid, score in s["scores"].items():
            rec = project.synthetic_sample(int(sid))
            scored.append({"path": str(project.resolve_path(rec.path)), "box": list(rec.box.as_tuple()),
                           "score": score})
        t = s["chosen_t"]
        cut = t if t is not None else 0.5
        kept = sorted((x for x in scored if x["score"] > cut), key=lambda x: -x["score"])
        rejected = sorted((x for x in scored if x["score"] <= cut), key=lambda x: -x["score"])
        path = out / f"samples-{s['key'].replace('<-', '_from_')}.png"
        samples_png(path, s["key"], kept, rejected, t)
        files[f"samples {s['key']}"] = str(path)
    return files
