"""Run every benchmark script (or the named ones) and print one JSON document.

    python -m benchmarks.run            # all *_bench.py
    python -m benchmarks.run io gui     # io_bench.py and gui_bench.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removesuffix("_bench") for p in HERE.glob("*_bench.py"))
    results = {}
    for name in names:
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}_bench"], cwd=HERE.parent,
                              capture_output=True, text=True)
        try:
            results[name] = json.loads(proc.stdout)
        except ValueError:
            results[name] = {"error": proc.stderr.strip().splitlines()[-5:], "returncode": proc.returncode}
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
