"""Per-stage caching: a finished stage leaves a done-marker JSON with a hash of its inputs.

A stage's inputs include the outputs (hashes, ids) of the stages it depends on, so changing
anything upstream re-runs exactly what depends on it, and a crash at stage 4 re-runs stage 4 only
(whose own trainer then resumes from its last epoch checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lesion_studio.files import atomic_write_json

if TYPE_CHECKING:
    from lesion_studio.experiment.outputs import StageOutput

log = logging.getLogger(__name__)

T = TypeVar("T", bound="StageOutput")


def inputs_hash(inputs: Any) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


class StageCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.events: list[dict[str, Any]] = []  # what happened in this run: ran / cached

    def marker(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", key)
        return self.folder / f"{safe}.json"

    def run(self, key: str, inputs: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The stage's outputs: read from its marker when its inputs are unchanged, else ``fn()``."""
        done = self._cached(key, inputs)
        if done is not None:
            self._event(key, "cached")
            return done
        return self._ran(key, inputs, fn)

    def run_as(self, key: str, inputs: dict[str, Any], fn: Callable[[], T], kind: type[T]) -> T:
        """:meth:`run` for a typed output: ``kind.to_dict()`` is stored, ``kind.from_dict()`` read.

        A marker whose outputs do not make a ``kind`` (written by a version whose outputs had
        another shape under the same inputs) is not trusted: the stage runs again.
        """
        done = self._cached(key, inputs)
        if done is not None:
            try:
                value = kind.from_dict(done)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.info("stage %s: cached outputs are not a %s (%s); running it again", key, kind.__name__, exc)
            else:
                self._event(key, "cached")
                return value
        out: list[T] = []

        def plain() -> dict[str, Any]:
            out.append(fn())
            return out[0].to_dict()

        self._ran(key, inputs, plain)
        return out[0]

    def _cached(self, key: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        path = self.marker(key)
        if not path.exists():
            return None
        try:
            done = json.loads(path.read_text())
        except ValueError:
            done = {}
        if done.get("inputs_hash") == inputs_hash(inputs):
            return done["outputs"]
        old = done.get("inputs") or {}
        changed = sorted(k for k in set(old) | set(inputs)
                         if inputs_hash(old.get(k)) != inputs_hash(inputs.get(k)))
        log.info("stage %s: inputs changed (%s); running it again", key, ", ".join(changed))
        return None

    def _event(self, key: str, status: str, **more: Any) -> None:
        if status == "cached":
            log.info("stage %s: cached", key)
        self.events.append({"stage": key, "status": status, **more})

    def _ran(self, key: str, inputs: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        t0 = time.perf_counter()
        outputs = fn()
        record = {"stage": key, "inputs_hash": inputs_hash(inputs), "inputs": inputs, "outputs": outputs,
                  "seconds": round(time.perf_counter() - t0, 2), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write_json(self.marker(key), record, indent=1, sort_keys=True, default=str)
        self._event(key, "ran", seconds=record["seconds"])
        return outputs
