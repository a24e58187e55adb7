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
from typing import Any

from lesion_studio.files import atomic_write_json

log = logging.getLogger(__name__)


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
        digest = inputs_hash(inputs)
        path = self.marker(key)
        if path.exists():
            try:
                done = json.loads(path.read_text())
            except ValueError:
                done = {}
            if done.get("inputs_hash") == digest:
                log.info("stage %s: cached", key)
                self.events.append({"stage": key, "status": "cached"})
                return done["outputs"]
            old = done.get("inputs") or {}
            changed = sorted(k for k in set(old) | set(inputs)
                             if inputs_hash(old.get(k)) != inputs_hash(inputs.get(k)))
            log.info("stage %s: inputs changed (%s); running it again", key, ", ".join(changed))
        t0 = time.perf_counter()
        outputs = fn()
        record = {"stage": key, "inputs_hash": digest, "inputs": inputs, "outputs": outputs,
                  "seconds": round(time.perf_counter() - t0, 2), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write_json(path, record, indent=1, sort_keys=True, default=str)
        self.events.append({"stage": key, "status": "ran", "seconds": record["seconds"]})
        return outputs
