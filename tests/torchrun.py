"""Run a worker script under the real ``torchrun`` launcher (2 CPU processes, Gloo) and collect
what each rank printed on its ``RESULT {json}`` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_under_torchrun(worker: str, args: list[str], tmp_path: Path, nproc: int = 2) -> list[dict[str, Any]]:
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         str(script), *args],
        env=env, capture_output=True, text=True,  # a hung launcher is stopped by the suite's hang guard
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The ranks share one stdout, so one rank's line can land inside another's: read every
    # "RESULT {json}" wherever it starts, not line by line.
    decoder = json.JSONDecoder()
    results = [decoder.raw_decode(chunk)[0] for chunk in proc.stdout.split("RESULT ")[1:]]
    results.sort(key=lambda r: r["rank"])
    assert [r["rank"] for r in results] == list(range(nproc))
    return results
