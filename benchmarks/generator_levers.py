"""Generator levers on the demo phantoms: DiffAugment × blend mode, per training seed, scored by the
generator quality report (realism, lesion signal, intensity drift, KID). Writes JSON.

    python -m benchmarks.generator_levers OUT_DIR [--iterations 400] [--seeds 0,1]

The table in docs/synthesis.md ("Levers for a generator that earns the metrics") came from this.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

VARIANTS = {"untrained": (False, ""), "UNIT as in the paper": (True, ""),
            "DiffAugment brightness, translation, cutout": (True, "brightness,translation,cutout")}


def main() -> None:
    from lesion_studio.demo import build_demo_project
    from lesion_studio.evaluate.generator_quality import QualitySettings, assess_generator
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    project = build_demo_project(args.out / "demo")
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for label, (trained, policy) in VARIANTS.items():
            name = f"{label.split()[0].lower()}-{'da' if policy else 'plain'}-s{seed}"
            t0 = time.perf_counter()
            if project.find_model(name) is None:
                train_unit(project, preset_config("tiny", iterations=args.iterations if trained else 0, seed=seed,
                                                  diff_augment=policy, device="cpu", sample_every=10**6,
                                                  checkpoint_every=10**6, export_onnx=False, assess=False),
                           name=name)
            seconds = time.perf_counter() - t0
            for blend in ("paper", "matched"):
                report = assess_generator(project, name, seed=0, settings=QualitySettings(blend_mode=blend),
                                          backend="torch", store=False)
                rows.append({"lever": label, "blend": blend, "seed": seed, "train_s": round(seconds, 1),
                             **report["headline"]})
                log.info("%s", rows[-1])
            (args.out / "levers.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
