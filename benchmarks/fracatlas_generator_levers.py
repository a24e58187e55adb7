"""Generator levers on FracAtlas: trained UNIT models × source-window rule × blend, full quality report.

    python -m benchmarks.fracatlas_generator_levers PROJECT OUT.json MODEL [MODEL ...]
        [--body-part hand] [--rules air,tissue] [--blends paper,matched] [--seeds 0,1] [--n 2]
    python -m benchmarks.fracatlas_generator_levers --table OUT.json [OUT2.json ...]

PROJECT is a FracAtlas project with splits (``lesion-studio experiment fracatlas`` builds one);
the models are UNIT models registered there (``lesion-studio train-gan``). Every model is measured
on the validation windows of each rule (``PatchParams.normal_match``: "tissue", the rule models
before 2026-11-30 were trained and used with, or "air"), next to the untranslated source windows
("no translation"), which is where a generator starts from. Each report seed redraws the
validation windows and refits the patch classifier, so the spread shows the report's own noise.
``--residual`` adds each model with ``translation: residual`` (synthesis/pipeline.py; the same
windows and patch classifier). The table in docs/synthesis.md
("FracAtlas hand") came from this.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _residual_translator(project: Any, record: Any) -> Any:
    from lesion_studio.models import layout
    from lesion_studio.synthesis.translator import open_translator

    has_graph = layout.onnx_path(project.resolve_path(record.path)).with_name(layout.ONNX_RESIDUAL).exists()
    return open_translator(project, record.id, backend="auto" if has_graph else "torch", device="cpu")


class _Identity:
    """The source windows themselves: what a generator that changed nothing would score."""

    def translate(self, patches: np.ndarray, **_: Any) -> np.ndarray:
        return np.asarray(patches, np.float32)


def lever_table(rows: list[dict[str, Any]]) -> str:
    """The docs' markdown table from lever rows: mean ± sd over report seeds per (model, blend,
    translation), with the realism AUC over the untouched windows of the same report seed (paired,
    so most of the report-seed noise cancels)."""
    import statistics

    floor = {r["seed"]: r["realism_auc"] for r in rows if r["model"] == "no translation"}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["model"] != "no translation":
            groups.setdefault((r["model"], r["blend"]), []).append(r)

    def cell(values: list[float], spec: str) -> str:
        if len(values) == 1:
            return format(values[0], spec)
        return f"{format(statistics.mean(values), spec)} ± {format(statistics.stdev(values), spec.lstrip('+'))}"

    lines = ["| generator | blend | report seeds | realism AUC | over untouched | lesion rate ratio | drift % |",
             "|---|---|---|---|---|---|---|",
             f"| no translation | – | {len(floor)} | {cell(list(floor.values()), '.3f')} | 0 | – | 0 |"]
    for (model, blend), rs in groups.items():
        excess = [r["realism_auc"] - floor[r["seed"]] for r in rs if r["seed"] in floor]
        lines.append(f"| {model} | {blend} | {len(rs)} | {cell([r['realism_auc'] for r in rs], '.3f')} | "
                     f"{cell(excess, '+.3f') if excess else '–'} | {cell([r['lesion_rate_ratio'] for r in rs], '.2f')} | "
                     f"{cell([100 * r['intensity_drift'] for r in rs], '.1f')} |")
    return "\n".join(lines)


def main() -> None:
    import sys

    from lesion_studio.evaluate.generator_quality import QualityContext, QualitySettings, _model_settings
    from lesion_studio.store import Project
    from lesion_studio.synthesis.translator import open_translator

    if len(sys.argv) > 1 and sys.argv[1] == "--table":  # the markdown table of earlier runs' JSON
        print(lever_table([row for path in sys.argv[2:] for row in json.loads(Path(path).read_text())]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--body-part", default="hand")
    ap.add_argument("--rules", default="air,tissue")
    ap.add_argument("--blends", default="paper,matched")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--n", type=float, default=2.0, help="the blending exponent (default 2, the product's)")
    ap.add_argument("--residual", action="store_true", help="also the residual-blend prototype of each model")
    args = ap.parse_args()
    project = Project.open(args.project)
    records = [project.model(m) for m in args.models]
    resolution, _parts, params, splits = _model_settings(records[0])
    rows: list[dict[str, Any]] = []
    blends = args.blends.split(",")
    for seed in (int(s) for s in args.seeds.split(",")):
        for rule in args.rules.split(","):
            rule_params = replace(params, normal_match=rule)
            for blend in blends:
                t0 = time.perf_counter()
                context = QualityContext(project, resolution=resolution, body_parts=[args.body_part],
                                         train_params=rule_params, train_splits=splits,
                                         settings=QualitySettings(blend_mode=blend, seed=seed, n=args.n))
                log.info("context %s/%s/%s in %.0f s", seed, rule, blend, time.perf_counter() - t0)
                candidates = [("no translation", _Identity(), "direct")]
                candidates += [(r.name, open_translator(project, r.id), "direct") for r in records]
                if args.residual:  # the product's residual translation; torch where an old export lacks its graph
                    candidates += [(f"{r.name} +residual", _residual_translator(project, r), "residual")
                                   for r in records]
                for name, translator, translation in candidates:
                    if name == "no translation" and blend != blends[0]:
                        continue  # every blend leaves an unchanged window as it is: measured once
                    report = context.assess(translator, model=name, translation=translation)
                    rows.append({"model": name, "windows": rule, "blend": blend, "translation": translation, "n": args.n,
                                 "seed": seed,
                                 **report.headline(), "realism_ci": [report.realism["ci_low"],
                                                                     report.realism["ci_high"]],
                                 "synthetic_rate": report.lesion_signal["synthetic_rate"],
                                 "real_rate": report.lesion_signal["real_rate"],
                                 "untouched_auc": report.realism["untouched_auc"],
                                 "excess_auc": report.realism["excess_auc"],
                                 "mean_shift_signed": report.intensity_drift["mean_shift_signed"]})
                    log.info("%s", rows[-1])
                args.out.write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
