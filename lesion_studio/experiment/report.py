"""Report files of an experiment: results.json, Table 2 (Markdown), ROC PNGs, sample grids, configs.

Drawn with Pillow (matplotlib is not a dependency): plain axes, one colour per model, AUC in the
legend, which is all a ROC plot needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.config import write_config_file
from lesion_studio.files import atomic_write_text

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

COLOURS = {"Baseline": (90, 90, 90), "Augmented": (200, 60, 40), "TL": (40, 110, 200)}


def _fmt_auc(entry: dict[str, Any]) -> str:
    a = entry.get("auc")
    if not a:
        return "n/a (no model)"
    return f"{a['auc']:.3f} ({a['ci_low']:.3f}–{a['ci_high']:.3f})"


def _fmt_spread(spread: dict[str, Any] | None, signed: bool = False) -> str:
    if not spread:
        return "–"
    sign = "+" if signed else ""
    return f"{spread['mean']:{sign}.3f} ± {spread['sd']:.3f} (n={spread['n']})"


def _fmt_t(e: dict[str, Any]) -> str:
    if e.get("t") is None:
        return "–"
    cut = e.get("cut")
    return f"{e['t']:g}" + (f" (score > {cut:.3f})" if cut is not None and cut != e["t"] else "")


def fmt_rate(r: dict[str, Any] | None) -> str:
    """A rate with its CI and count, e.g. the pointing game's (also the Results panel's)."""
    if not r or r.get("rate") is None:
        return "– (none)"
    return f"{r['rate']:.0%} ({r['ci_low']:.0%}–{r['ci_high']:.0%}), n={r['n']}"


def _fmt_chance(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _fmt_delta(d: dict[str, Any] | None) -> str:
    return f"{d['delta']:+.3f} ({d['ci_low']:+.3f}–{d['ci_high']:+.3f})" if d else "–"


def table_markdown(results: dict[str, Any]) -> str:
    """The paper's Table 2 layout, one table per evaluation line (headline first), pooled over seeds."""
    cfg = results["config"]
    seeds = results.get("seeds") or [cfg.get("seed", 0)]
    filt = cfg.get("filter") or {}
    t_meaning = ("t is a quantile of the baseline's scores on real validation lesions"
                 if filt.get("kind", "lesion_quantile") == "lesion_quantile" else "t is a lesion probability")
    if filt.get("require_map_on_lesion"):
        t_meaning += ("; a candidate above the cut is kept only when the filter's map also peaks on its own lesion "
                      "(filter.require_map_on_lesion)")
    lines = [f"# {results['name']}: classification results", "",
             f"Test set: {results['test_set']}. Each classifier trained with {len(seeds)} seed(s) "
             f"({', '.join(map(str, seeds))}); generators and candidates are shared by the seeds. "
             f"ROC AUC is the seeds' mean with a pooled {cfg['bootstrap']['confidence']:.0%} bootstrap CI "
             f"({cfg['bootstrap']['resamples']} resamples of the test images, seed {cfg['bootstrap']['seed']}); "
             f"ΔAUC pairs each seed's augmented model with the same seed's baseline. {t_meaning}. "
             "An augmented model replaces the baseline only when it beats it on validation.", ""]
    evals = results["evaluations"]
    for line in dict.fromkeys(e["line"] for e in evals):
        lines += _evaluation_lines(line, evals)
    quality = {s["key"].split("<-")[1]: s.get("generator_quality") for s in results["studies"]}
    measured = {g: q for g, q in quality.items() if q and "realism" in q}
    if measured:
        from lesion_studio.evaluate.generator_quality import report_lines

        lines += ["## Generator quality (validation patches the generator never trained on)", ""]
        for g, q in measured.items():
            lines += [f"**{g}**", ""] + [f"- {text}" for text in report_lines(q)] + [""]
    return "\n".join(lines + _selection_lines(results["studies"])) + "\n"


def _evaluation_lines(line: str, evals: list[dict[str, Any]]) -> list[str]:
    """One evaluation line's table (with ΔAUC against the controls where arms ran), its pointing
    game, its test set and its per-body-part AUCs."""
    title = "Headline (excluded images left out)" if line == "headline" else f"Test images {line}"
    with_controls = any(e.get("delta_vs_controls") for e in evals)
    control_head = " ΔAUC vs oversample, pooled (95% CI) | ΔAUC vs copy_paste, pooled (95% CI) |" \
        if with_controls else ""
    lines = [f"## {title}", "",
             "| Body part | Type | Status | t | Augmented samples | ROC AUC, pooled (95% CI) | "
             "AUC per seed | AUC mean ± sd over seeds | ΔAUC vs baseline, pooled (95% CI) | ΔAUC mean ± sd |"
             + control_head,
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if with_controls else "")]
    for e in (e for e in evals if e["line"] == line):
        kind = e["type"] if e["type"] != "TL" else f"TL (from {e.get('transfer_from')})"
        status = e.get("status") or ""
        if status not in ("baseline", "accepted", "") and e.get("auc"):
            status += " (test shown for reference; the study's result is the baseline)"
        per_seed = ", ".join(f"{v:.3f}" for v in e.get("auc_per_seed") or []) or "–"
        controls = ""
        if with_controls:
            vs = e.get("delta_vs_controls") or {}
            controls = "".join(f" {_fmt_delta(vs.get(c))} |" for c in ("oversample", "copy_paste"))
        lines.append(f"| {e['target']} | {kind} | {status} | {_fmt_t(e)} | {e.get('augmented_samples') or 0} | "
                     f"{_fmt_auc(e)} | {per_seed} | {_fmt_spread(e.get('auc_spread'))} | "
                     f"{_fmt_delta(e.get('delta_vs_baseline'))} | {_fmt_spread(e.get('delta_spread'), signed=True)} |"
                     f"{controls}")
    pointed = [e for e in evals if e["line"] == line and e.get("pointing")]
    if pointed:
        from lesion_studio.evaluate.pointing import pointing_rule

        near = pointing_rule(pointed[0]["pointing"].get("tolerance_px"))
        lines += ["", f"Pointing game on the boxed test lesions: the seed-mean map's peak {near} a radiologist's "
                  "box (the pointing game's tolerance; *inside*: no tolerance). Chance: a peak placed at random "
                  "over the radiograph. 95% bootstrap CIs over the lesions.", "",
                  "| Body part | Type | Map | Detected lesions (p > 0.5) | All boxed lesions | "
                  "Detected, inside the box | Chance (inside) |", "|---|---|---|---|---|---|---|"]
        for e in pointed:
            pg = e["pointing"]
            strict, chance = pg.get("strict") or {}, pg.get("chance") or {}
            lines.append(f"| {e['target']} | {e['type']} | {pg.get('map')} | {fmt_rate(pg['detected'])} | "
                         f"{fmt_rate(pg['all'])} | {fmt_rate(strict.get('detected'))} | "
                         f"{_fmt_chance(chance.get('tolerance'))} ({_fmt_chance(chance.get('strict'))}) |")
    test = next((e["test"] for e in evals if e["line"] == line), {})
    lines += ["", f"Test images: {test.get('images')} ({test.get('lesion')} lesion, {test.get('normal')} normal).", ""]
    parts = [(e, p, a) for e in evals if e["line"] == line for p, a in (e.get("per_body_part") or {}).items()]
    if parts:
        lines += ["Per body part (seed-mean scores):", "", "| Target | Type | Body part | ROC AUC (95% CI) |",
                  "|---|---|---|---|"]
        lines += [f"| {e['target']} | {e['type']} | {p} | {_fmt_auc({'auc': a})} |" for e, p, a in parts]
        lines.append("")
    return lines


def _selection_lines(studies: list[dict[str, Any]]) -> list[str]:
    """How each study chose its filter and threshold, on validation only."""
    lines = ["## Filter and threshold choice (validation only)", ""]
    for s in studies:
        f = s.get("filter") or {}
        fv = "–" if f.get("val_auc") is None else f"{f['val_auc']:.3f}"
        lines.append(f"- **{s['key']}**: filter = seed-mean baseline of {s['key'].split('<-')[1]} "
                     f"(validation AUC {fv}). Status: **{s.get('status', '')}**. {s.get('selection_reason') or ''}")
    lines += ["", "| Study | t | Score cut | Kept / candidates | Validation AUC (seed mean) | "
              "Validation ΔAUC vs baseline (pooled 95% CI) | Share of resamples ΔAUC <= 0 |",
              "|---|---|---|---|---|---|---|"]
    for s in studies:
        for tr in s["threshold_trials"]:
            v = "–" if tr.get("val_auc") is None else f"{tr['val_auc']:.3f}"
            ident = tr.get("trial", tr["t"])
            mark = " ✔" if ident == s.get("chosen_t") else (" (best, rejected)" if ident == s.get("best_t") else "")
            vd = tr.get("val_delta")
            dtxt = _fmt_delta(vd) if vd else tr.get("note", "–")
            p = f"{vd['p_not_better']:.0%}" if vd else "–"
            cut = "–" if tr.get("cut") is None else f"{tr['cut']:.3f}"
            arm = f" {tr['arm']} ×{tr['ratio']:g}" if "arm" in tr else ""
            vs = tr.get("val_vs_controls") or {}
            vtxt = "; ".join(f"vs {c} {_fmt_delta(d)}" for c, d in vs.items())
            lines.append(f"| {s['key']}{arm} | {tr['t']:g}{mark} | {cut} | {tr['kept']} / {s['candidates']} | {v} | "
                         f"{dtxt}{' (' + vtxt + ')' if vtxt else ''} | {p} |")
    return lines + _map_on_lesion_lines(studies)


def _map_on_lesion_lines(studies: list[dict[str, Any]]) -> list[str]:
    """Where the filter looks on the synthetic lesions: the share of samples whose seed-mean map
    peaks on the painted lesion (a copy-paste sample's pasted real box), for all candidates and
    for what each arm added. A filter that passes samples without looking at their lesion is
    scoring something else about them."""
    mapped = [s for s in studies if s.get("map_on_lesion")]
    if not mapped:
        return []
    lines = ["", "Where the filter's map peaks on the synthetic lesions (the seed-mean lesion map of the "
             "baselines that score them; 95% bootstrap CI over the samples):", "",
             "| Study | Samples | Map peak on the lesion |", "|---|---|---|"]
    for s in mapped:
        for kind, rate in (s["map_on_lesion"] or {}).items():
            if rate:
                lines.append(f"| {s['key']} | all {kind} candidates | {fmt_rate(rate)} |")
        for tr in s["threshold_trials"]:
            if tr.get("map_on_lesion"):
                lines.append(f"| {s['key']} | added by {tr['arm']} ×{tr['ratio']:g}, t={tr['t']:g} | "
                             f"{fmt_rate(tr['map_on_lesion'])} |")
    return lines


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
    d.text((m, 26), "curves: seed-mean scores; AUC: mean ± sd over seeds", fill=(90, 90, 90), font=_font(11))
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


def pointing_png(path: Path, title: str, rows: list[tuple[str, list[dict[str, Any]]]], tile: int = 88) -> None:
    """The pointing game lesion by lesion: one line per model row, one column per boxed test
    lesion (the same lesion in a column, so arms can be compared), each the whole radiograph with
    the radiologist's box (green) and the row's map peak (a cross: green for a hit, red for a miss)."""
    from PIL import Image, ImageDraw

    from lesion_studio.io import open_radiograph
    from lesion_studio.io.display import thumbnail_array

    order = sorted(rows[0][1], key=lambda x: (x["path"], str(x["boxes"])))  # a column is one lesion
    columns = {(x["path"], str(x["boxes"])): c for c, x in enumerate(order)}
    thumbs: dict[str, np.ndarray | None] = {}
    for lesion in order:
        try:
            thumbs[lesion["path"]] = thumbnail_array(open_radiograph(lesion["path"]), tile)
        except Exception:  # noqa: BLE001 - a missing file shows as a grey tile, the report still completes
            thumbs[lesion["path"]] = None
    head, label_w, gap = 30, 150, 4
    img = Image.new("RGB", (label_w + len(order) * (tile + gap), head + len(rows) * (tile + gap)), "white")
    d = ImageDraw.Draw(img)
    d.text((6, 6), f"{title}: green box = radiologist's, cross = map peak (red: a miss)", fill="black", font=_font(14))
    for r, (label, lesions) in enumerate(rows):
        y = head + r * (tile + gap)
        hits = sum(bool(x["hit"]) for x in lesions)
        d.text((6, y + tile // 2 - 14), label, fill="black", font=_font(13))
        d.text((6, y + tile // 2 + 2), f"{hits} of {len(lesions)} hit", fill=(90, 90, 90), font=_font(12))
        for lesion in lesions:
            c = columns.get((lesion["path"], str(lesion["boxes"])))
            if c is None:
                continue
            x = label_w + c * (tile + gap)
            arr = thumbs.get(lesion["path"])
            if arr is None:
                d.rectangle([x, y, x + tile - 1, y + tile - 1], fill=(128, 128, 128))
                continue
            img.paste(Image.fromarray(arr).convert("RGB"), (x, y))
            scale = arr.shape[1] / float(lesion["size"][0])
            for x0, y0, x1, y1 in lesion["boxes"]:
                d.rectangle([x + x0 * scale, y + y0 * scale, x + x1 * scale, y + y1 * scale], outline=(60, 210, 90))
            px, py = x + lesion["peak"][0] * scale, y + lesion["peak"][1] * scale
            colour = (60, 210, 90) if lesion["hit"] else (235, 70, 55)
            d.line([(px - 5, py), (px + 5, py)], fill=colour, width=2)
            d.line([(px, py - 5), (px, py + 5)], fill=colour, width=2)
    img.save(path)


def write_report(out: Path, results: dict[str, Any], project: Project) -> dict[str, str]:
    out = Path(out)
    files: dict[str, str] = {}
    plain = {k: v for k, v in results.items()}
    atomic_write_text(out / "results.json", json.dumps(plain, indent=1, sort_keys=False, default=str))
    files["results"] = str(out / "results.json")
    atomic_write_text(out / "table.md", table_markdown(results))
    files["table"] = str(out / "table.md")
    write_config_file(out / "config.yaml", results["config"])
    files["config"] = str(out / "config.yaml")
    atomic_write_text(out / "models.json", json.dumps(results["models"], indent=1, default=str))
    files["models"] = str(out / "models.json")
    for target in dict.fromkeys(e["target"] for e in results["evaluations"]):
        curves = [(f"{e['type']}{'' if e['type'] == 'Baseline' else ' t=' + format(e['t'], 'g')}  "
                   f"AUC {e['auc']['auc']:.3f}" + (f"±{e['auc_spread']['sd']:.3f}" if e.get("auc_spread") else ""),
                   e["type"], e["roc"]["fpr"], e["roc"]["tpr"])
                  for e in results["evaluations"] if e["target"] == target and e["line"] == "headline"
                  and e.get("roc")]
        path = out / f"roc-{target}.png"
        roc_png(path, f"ROC, {target} (test)", curves)
        files[f"roc {target}"] = str(path)
        pointed = [(e["type"], e["pointing"]["lesions"]) for e in results["evaluations"]
                   if e["target"] == target and e["line"] == "headline" and (e.get("pointing") or {}).get("lesions")]
        if pointed:
            path = out / f"pointing-{target}.png"
            pointing_png(path, f"Where it looks, {target} (test)", pointed)
            files[f"pointing {target}"] = str(path)
    for s in results["studies"]:
        scored = []
        for sid, score in s["scores"].items():
            rec = project.synthetic_sample(int(sid))
            scored.append({"path": str(project.resolve_path(rec.path)), "box": list(rec.box.as_tuple()),
                           "score": score})
        best = s.get("best_t")  # a threshold, or with arms the best trial (arm|ratio|t)
        trial = next((tr for tr in s["threshold_trials"] if tr.get("trial", tr["t"]) == best), None)
        t = trial["t"] if trial else None
        cut = trial["cut"] if trial and trial.get("cut") is not None and np.isfinite(trial["cut"]) else 0.5
        kept = sorted((x for x in scored if x["score"] > cut), key=lambda x: -x["score"])
        rejected = sorted((x for x in scored if x["score"] <= cut), key=lambda x: -x["score"])
        path = out / f"samples-{s['key'].replace('<-', '_from_')}.png"
        samples_png(path, s["key"], kept, rejected, t)
        files[f"samples {s['key']}"] = str(path)
    return files
