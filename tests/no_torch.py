"""Run code in a fresh interpreter where ``import torch`` raises, to prove a path needs no torch.

The child installs a meta-path finder that refuses torch (and anything under it) before any
Lesion Studio import, runs the given code, and prints ``RESULT {json}`` with what it returned
plus every torch import that was attempted (a caught attempt is allowed: it means the code has a
torch-free way; an uncaught one fails the child).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = r"""
import json, sys

attempts = []

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            attempts.append(name)
            raise ImportError(f"torch is blocked in this test (import {name})")
        return None

sys.meta_path.insert(0, NoTorch())
"""


def run_without_torch(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` (which sets a dict ``result``) torch-free; returns result + ``torch_attempts``."""
    script = PRELUDE + code + (
        "\nresult['torch_attempts'] = attempts\nresult['torch_loaded'] = 'torch' in sys.modules\n"
        "print('RESULT ' + json.dumps(result), flush=True)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])
