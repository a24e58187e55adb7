"""Break one behaviour at a time and check that a test fails: the mutation table of issue 26.

    nice -n 19 python -m tools.mutation_check            # every mutation
    nice -n 19 python -m tools.mutation_check S1 L3      # some of them
    python -m tools.mutation_check --list                # what each one breaks
    ... --baseline                                       # first check the named tests pass unbroken
    ... S1 --tests tests/test_patches.py                 # against other tests (e.g. the older ones)

Each mutation replaces one exact snippet of the package (it must occur exactly once) in a copy of
the source tree in a temporary folder, runs the tests named for it there, and reports **caught**
(a test failed) or **SURVIVED** (every test passed: no test holds that behaviour). The working tree
is never modified. A mutation whose snippet is no longer found is reported as **stale**: the code
changed, so the mutation must be updated, not silently skipped.

The tests run with ``-x`` (the first failure is enough) and ``OMP_NUM_THREADS=1``; run the tool
under ``nice`` on a shared machine. Tests that need ``../shared/data`` see it through
``LESION_STUDIO_SHARED``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("lesion_studio", "tests", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids or files, relative to the repository root
    what: str


M = Mutation
MUTATIONS: tuple[Mutation, ...] = (
    # ---- the survivors of the issue-26 audit
    M("S1", "lesion_studio/patches/sampling.py",
      "cx, cy = (x0i + x1i) / 2.0, (y0i + y1i) / 2.0",
      "cx, cy = x0i + (x1i - x0i) / 4.0, (y0i + y1i) / 2.0",
      ("tests/test_patch_rules.py", "tests/test_patches.py"),
      "lesion window not centred on its box"),
    M("S2", "lesion_studio/patches/dataset.py",
      "include_excluded=False)", "include_excluded=True)",
      ("tests/test_patch_rules.py", "tests/test_patches.py"),
      "the GAN trains on excluded images"),
    M("S3", "lesion_studio/synthesis/translator.py",
      '"noise": noise[sc[1]]', '"noise": noise[:len(sc[1])]',
      ("tests/test_onnx_export.py",),
      "per-core ONNX batches take the wrong noise rows"),
    M("S4", "lesion_studio/experiment/runner.py",
      "quantile_threshold(mean[y == 1], float(q))", "quantile_threshold(mean[y == 0], float(q))",
      ("tests/test_filter_and_selection.py",),
      "the filter's cut from the normal validation scores, not the lesion ones"),
)


def _copy_tree(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    shared = ROOT.parent / "shared" / "data"
    if "LESION_STUDIO_SHARED" not in env and shared.is_dir():
        env["LESION_STUDIO_SHARED"] = str(shared)
    return env


def _pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                          cwd=copy, env=_env(copy), capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def _first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return found.group(1) if found else ""


def run(mutations: list[Mutation], baseline: bool) -> list[dict[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        if baseline:
            for tests in sorted({m.tests for m in mutations}):
                code, out = _pytest(copy, tests)
                if code != 0:
                    raise SystemExit(f"the unbroken code fails {' '.join(tests)}:\n{out[-3000:]}")
                print(f"baseline passes: {' '.join(tests)}", flush=True)
        for m in mutations:
            path = copy / m.file
            original = path.read_text()
            if original.count(m.old) != 1:
                rows.append({"id": m.id, "what": m.what, "result": "stale", "caught_by": ""})
                print(f"{m.id}: stale ({m.old!r} occurs {original.count(m.old)} times in {m.file})", flush=True)
                continue
            path.write_text(original.replace(m.old, m.new))
            try:
                code, out = _pytest(copy, m.tests)
            finally:
                path.write_text(original)
            result = {0: "SURVIVED", 1: "caught"}.get(code, f"error (pytest exit {code})")
            row = {"id": m.id, "what": m.what, "file": m.file, "result": result, "caught_by": _first_failure(out)}
            rows.append(row)
            print(f"{m.id}: {result} {row['caught_by']}", flush=True)
            if code not in (0, 1):
                print(out[-2000:], flush=True)
    return rows


def table(rows: list[dict[str, str]]) -> str:
    lines = ["| id | what was broken | where | result | first test that failed |", "|---|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['what']} | `{r.get('file', '')}` | {r['result']} | `{r['caught_by']}` |"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="mutation ids (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--baseline", action="store_true", help="first check that the tests pass unbroken")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--tests", nargs="+", help="run these tests instead of each mutation's own "
                        "(e.g. the tests that existed before a new one, to show the mutation survived them)")
    args = parser.parse_args(argv)
    known = {m.id: m for m in MUTATIONS}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(unknown)}")
    chosen = [known[i] for i in args.ids] if args.ids else list(MUTATIONS)
    if args.tests:
        chosen = [replace(m, tests=tuple(args.tests)) for m in chosen]
    if args.list:
        for m in chosen:
            print(f"{m.id}\t{m.file}\t{m.what}")
        return 0
    rows = run(chosen, args.baseline)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["result"] == "caught" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
