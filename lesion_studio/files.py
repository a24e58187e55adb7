"""Writing and hashing files: the one place that knows how to do either safely.

A crash, a full disk or a killed process must leave a file either as it was or complete, never
half written (the project's promise: no lost or half-written data). So every file the app
writes goes through :func:`atomic_path`. The sequence, and what a kill at each step leaves:

1. the content is written to a hidden temporary file next to the target (:func:`temp_path`);
   a kill leaves the target as it was, plus a temp file that :func:`remove_stale_temp_files`
   removes later;
2. the temporary file is fsynced (its bytes are on the disk before its name is);
3. with ``previous=``, the current target is renamed to that name (it is retired only now, when a
   complete successor exists); a kill leaves no target, the old content under ``previous`` and
   the complete new content in the temp file: readers fall back to ``previous``;
4. the temporary file is renamed over the target (``os.replace``, atomic on one file system);
5. the directory is fsynced, so the renames themselves survive a power loss.

Nothing is ever written into an existing file, and nothing is hard-linked: a file that a reader
holds open (or has mapped into memory) keeps its bytes. A full disk raises
:class:`~lesion_studio.errors.DiskFullError`, which says how much was needed.

Hashes of files (image identity, weights in provenance, checked ONNX files) all use
:func:`file_sha256`, which streams with ``hashlib.file_digest`` instead of reading the file
into memory. :func:`open_regular` opens a file only when it is a regular file, never a FIFO or a
device, which would block a reader forever or never end.

This module sits on the ground floor: it imports nothing from the app but its error types, so
config, store, training and inference can all use it without importing one another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lesion_studio.errors import DiskFullError, LesionStudioError, is_disk_full

#: The longest file name, in bytes, that common file systems accept (ext4, XFS, btrfs, APFS).
NAME_MAX = 255
#: Writes go out in pieces of this size (so a failure part-way is a real possibility the tests inject).
WRITE_CHUNK = 1 << 20
_TEMP_NAME = re.compile(r"^\..*\.(\d+)-(\d+)\.tmp[^/]*$")


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes, streamed (a regular file only: see :func:`open_regular`)."""
    with open_regular(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def open_regular(path: str | Path, what: str = "file") -> BinaryIO:
    """Open ``path`` for reading in binary, refusing anything but a regular file.

    A FIFO, a socket or a device (``/dev/zero`` behind a symbolic link) would make a reader wait
    forever or read without end. The file is opened without blocking and checked through its
    descriptor, so it cannot be swapped between the check and the read. A file that cannot be
    opened raises the usual OSError; one that is not regular a LesionStudioError.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise LesionStudioError(f"{path} is not a regular file ({special_kind(mode)}), so it is not read. "
                                    f"Replace it with the real {what}.")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def special_kind(mode: int) -> str:
    """What a non-regular file is, in words (for messages)."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: str | Path) -> Path:
    """The hidden temporary sibling :func:`atomic_path` writes ``path``'s new content to.

    It is unique per process and thread (``.<stem>.<pid>-<thread>.tmp<suffix>``: the suffix is
    kept because numpy and Pillow pick the format from it) and fits the file system's name limit:
    a long stem is cut and completed by a hash of it, so a 250-byte image name still exports.
    """
    path = Path(path)
    tag = f".{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}"
    stem = path.stem
    room = NAME_MAX - 1 - len(tag.encode("utf-8", "surrogateescape"))
    if len(stem.encode("utf-8", "surrogateescape")) > room:
        digest = hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        keep = stem.encode("utf-8", "surrogateescape")[:max(0, room - len(digest) - 1)]
        stem = keep.decode("utf-8", "ignore") + "~" + digest
    return path.with_name(f".{stem}{tag}")


def is_temp_file(name: str) -> bool:
    """Whether a file name is one of :func:`temp_path`'s."""
    return _TEMP_NAME.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's): leave its files alone
    return True


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Remove the temp files that killed processes left in ``folder`` (not recursive).

    A temp file's name holds its writer's process id; the files of a process that is still
    running are kept (it may be writing them now). Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path, *, previous: str | Path | None = None,
                needed: int | None = None) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; it replaces ``path`` only on success.

    For writers that want a file name of their own (numpy, Pillow, pydicom, ONNX). The temporary
    file lies in the same folder (so the final rename is atomic), is hidden, and ends in the
    target's suffix. If the ``with`` block raises, the temporary file is removed and the target is
    untouched. ``previous``: where the current content is kept (renamed, once the new content is
    complete and synced; see the module docstring). ``needed``: the bytes the write needs, for the
    message when the disk is full.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync_file(tmp)
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, Exception) and is_disk_full(exc):
            raise DiskFullError(path.name, path.parent, needed) from exc
        raise
    _fsync_directory(path.parent)


def _write_all(path: Path, data: bytes | bytearray | memoryview) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        view = memoryview(data).cast("B")
        offset = 0
        while offset < len(view):
            offset += os.write(fd, view[offset:offset + WRITE_CHUNK])
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | bytearray | memoryview, *,
                 previous: str | Path | None = None) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new content.

    ``previous``: keep the content it replaces under that name (see :func:`atomic_path`).
    """
    with atomic_path(path, previous=previous, needed=len(memoryview(data).cast("B"))) as tmp:
        _write_all(tmp, data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write` for text, UTF-8 encoded."""
    atomic_write(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, **dumps: Any) -> None:
    """:func:`atomic_write` for a JSON document; ``dumps`` goes to :func:`json.dumps` (indent, sort_keys...)."""
    atomic_write_text(path, json.dumps(data, **dumps))
