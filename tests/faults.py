"""Fault injection at each step of an atomic write (``lesion_studio.files``), instead of timing.

A write goes through five steps (see the ``files`` module docstring): write the temp file, fsync
it, retire the current file to ``previous``, publish the temp file over the target, fsync the
folder. :class:`FaultPlan` stops the n-th write of one target file at one of those steps, by
raising :class:`InjectedFault` (in-process tests) or by ``os._exit`` (a child process that dies
like a ``kill -9``: no ``finally``, no clean-up). ``write`` tears the temp file half-way through
its bytes; ``done`` stops after the folder fsync, before whatever the caller does next.

A child process uses it as::

    sys.path.insert(0, TESTS_DIR); from faults import FaultPlan
    FaultPlan("checkpoint.safetensors", "publish", nth=2, exit_code=9).install()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lesion_studio.files as files

STEPS = ("write", "fsync", "retire", "publish", "dirsync", "done")
TESTS_DIR = str(Path(__file__).resolve().parent)


class InjectedFault(OSError):
    """The failure a test injected (an OSError, as a failing disk raises)."""


class FaultPlan:
    """Fail the ``nth`` write of files named ``target`` at ``step`` (one of :data:`STEPS`)."""

    def __init__(self, target: str, step: str, *, nth: int = 1, exit_code: int | None = None,
                 error: BaseException | None = None) -> None:
        if step not in STEPS:
            raise ValueError(step)
        self.target, self.step, self.nth = target, step, nth
        self.exit_code, self.error = exit_code, error
        self.saves = 0  # writes of the target started so far
        self.fired = False
        self._published = False
        self._saved: dict[str, Any] = {}

    # ------------------------------------------------------------------ the fault
    def _at(self, step: str) -> None:
        if self.fired or step != self.step or self.saves != self.nth:
            return
        self.fired = True
        if self.exit_code is not None:
            os._exit(self.exit_code)
        raise self.error if self.error is not None else InjectedFault(f"injected fault at {step}")

    def _mine(self, tmp: Path) -> bool:
        return Path(tmp) == files.temp_path(Path(tmp).parent / self.target)

    # ------------------------------------------------------------------ wrappers of the primitives
    def install(self) -> FaultPlan:
        write_all, fsync_file, fsync_dir, replace = (files._write_all, files._fsync_file, files._fsync_directory,
                                                     os.replace)
        self._saved = {"_write_all": write_all, "_fsync_file": fsync_file, "_fsync_directory": fsync_dir,
                       "replace": replace}

        def _write_all(tmp: Path, data: Any) -> None:
            if self._mine(tmp):
                self.saves += 1
                self._published = False
                if self.step == "write" and self.saves == self.nth:
                    view = memoryview(data).cast("B")
                    write_all(tmp, view[:len(view) // 2])  # a torn temp file
                    self._at("write")
            write_all(tmp, data)

        def _fsync_file(tmp: Path) -> None:
            if self._mine(tmp):
                self._at("fsync")
            fsync_file(tmp)

        def _replace(src: Any, dst: Any) -> None:
            if Path(src).name == self.target:
                self._at("retire")
            elif Path(dst).name == self.target and self._mine(Path(src)):
                self._at("publish")
                replace(src, dst)
                self._published = True
                return
            replace(src, dst)

        def _fsync_directory(folder: Path) -> None:
            mine = self._published
            if mine:
                self._at("dirsync")
            fsync_dir(folder)
            if mine:
                self._published = False
                self._at("done")

        files._write_all, files._fsync_file, files._fsync_directory = _write_all, _fsync_file, _fsync_directory
        os.replace = _replace
        return self

    def uninstall(self) -> None:
        for name in ("_write_all", "_fsync_file", "_fsync_directory"):
            setattr(files, name, self._saved[name])
        os.replace = self._saved["replace"]

    def __enter__(self) -> FaultPlan:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
