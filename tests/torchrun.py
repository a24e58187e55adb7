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
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line.split("RESULT ", 1)[1]) for line in proc.stdout.splitlines() if "RESULT " in line]
    results.sort(key=lambda r: r["rank"])
    assert [r["rank"] for r in results] == list(range(nproc))
    return results
