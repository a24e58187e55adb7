"""Writing and hashing files: the one place that knows how to do either safely.

A crash, a full disk or a killed process must leave a file either as it was or complete, never
half written (the project's promise: no lost or half-written data). So every file the app
writes goes through :func:`atomic_path`: the content lands in a temporary file next to the
target, is flushed and fsynced, moved over the target with ``os.replace`` (atomic on one file
system), and the directory is fsynced so the rename itself survives a power loss.

Hashes of files (image identity, weights in provenance, checked ONNX files) all use
:func:`file_sha256`, which streams with ``hashlib.file_digest`` instead of reading the file
into memory.

This module sits on the ground floor: it imports nothing from the app, so config, store,
training and inference can all use it without importing one another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes, streamed."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _fsync_directory(folder: Path) -> None:
    """Make a rename inside ``folder`` durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the data itself is already synced
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; it replaces ``path`` only on success.

    For writers that want a file name of their own (numpy, Pillow, pydicom, safetensors, ONNX).
    The temporary file lies in the same folder (so the final rename is atomic), is hidden, is
    unique per process and thread, and ends in the target's suffix, because numpy and Pillow pick
    the format from it. If the ``with`` block raises, the temporary file is removed and the target
    is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new content."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write` for text, UTF-8 encoded."""
    atomic_write(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, **dumps: Any) -> None:
    """:func:`atomic_write` for a JSON document; ``dumps`` goes to :func:`json.dumps` (indent, sort_keys...)."""
    atomic_write_text(path, json.dumps(data, **dumps))
