"""Experiment stage times: the paper's protocol end to end, timed stage by stage. Prints JSON.

    python -m benchmarks.experiment_bench [--config demo-tiny]   # a built-in config's name, or a path

Runs the experiment into a temporary output folder (so no stage is read from a cache) and reports
every stage's wall time as the runner records it, plus the total. The default is the demo
protocol (tiny presets on the built-in phantom project: minutes on 2 CPU cores); the FracAtlas
configs take 25 min to 1.5 h and are for a full run (``--config``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="demo-tiny",
                   help="a built-in experiment config's name (lesion_studio/resources/experiments) or a path")
    p.add_argument("--quick", action="store_true", help="the default demo protocol (already the quick one)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from lesion_studio.experiment.config import load_experiment_config
    from lesion_studio.experiment.runner import run_experiment
    from lesion_studio.paths import find_experiment_config

    config = find_experiment_config(args.config)
    work = Path(tempfile.mkdtemp(prefix="experiment-bench-"))
    try:
        cfg = load_experiment_config(config, output=str(work / "out"))
        t0 = time.perf_counter()
        result = run_experiment(cfg)
        wall = time.perf_counter() - t0
        stages = [e for e in result.stage_events if e.get("status") == "ran"]
        emit({"experiment": cfg.name, "config": str(config.relative_to(REPO) if config.is_relative_to(REPO)
                                               else config),
              "wall_s": round(wall, 1), "stages": stages, "cpu_count": os.cpu_count(),
              "load_avg_1m_after": os.getloadavg()[0]})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
