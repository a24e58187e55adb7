"""Whole prepared patch sets on disk, keyed by a content hash of everything the patches depend on.

The per-image cache (``cache/patches/<key>.npz``, :mod:`lesion_studio.patches.dataset`) spares
the decoding, but a GAN start on FracAtlas still opened 2,221 small files and ran one query per
image. A start whose sources and settings are unchanged now opens one set instead:
``<project>/cache/patch_sets/<key>/`` (``lesion.npy`` and ``normal.npy``, memory-mapped, and where
each patch came from).

The key (:func:`patch_set_key`) hashes what the patches are made from, read in four queries:
each source image's id, SHA-256 (its pixels), size and body part, which domain it is in (its
label), its lesion boxes or picked normal patches, which images are in at all (labels, splits and
exclusion flags decide that), the body-part and split filters, and every patch setting. Any edit
to one of those gives another key, so a stale set is never loaded; the per-image cache then makes
the rebuild cheap (only the changed images are decoded). The newest :data:`KEEP` sets are kept.

:func:`preparation_estimate` says, without preparing anything, whether a start would load a set
or cut patches, and about how long that takes (from the decoding rate measured here before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.errors import DiskFullError, is_disk_full
from lesion_studio.files import atomic_write_json
from lesion_studio.store.records import Box, ImageRecord

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: Version of the patch caches' contents (per image and whole set), in every key: bump it when what
#: a patch holds changes. 3: lesion windows carry their air share (normal_match "air").
CACHE_VERSION = 3

SET_FORMAT = 1
FOLDER = "patch_sets"
LESION, NORMAL = "lesion", "normal"
META, ORIGINS = "meta.json", "origins.npz"  # with lesion.npy and normal.npy, one folder per set
KEEP = 4  # newest sets kept per project (a run with quality reports uses two: training and validation)
RATE_FILE = "rate.json"
#: Seconds to decode one source image and cut its windows when nothing was measured here yet
#: (FracAtlas JPEGs, 1024 px, one busy core: 13.3 s for 472 images).
REFERENCE_SECONDS_PER_IMAGE = 0.03
#: Seconds to load a cached set (one file): small beside any decode.
LOAD_SECONDS = 1.0


@dataclass(frozen=True)
class PatchSources:
    """The images a patch set is cut from: lesion images with their boxes, normal images with their
    picked patches (empty: windows are sampled), in database order."""

    lesion: list[tuple[ImageRecord, list[Box]]]
    normal: list[tuple[ImageRecord, list[Box]]]

    @property
    def image_count(self) -> int:
        return len(self.lesion) + len(self.normal)


def training_images(project: Project, label: str, body_parts: list[str] | None,
                    splits: list[str] | None) -> list[ImageRecord]:
    """Images of ``label`` that may train the GAN: not excluded, in the body parts and splits."""
    records = project.images(label=label, body_parts=body_parts or None, include_excluded=False)
    return [r for r in records if r.split in splits] if splits else records


def patch_sources(project: Project, body_parts: list[str] | None, splits: list[str] | None,
                  normal_source: str) -> PatchSources:
    """The GAN's source images and their regions, in four queries (not one per image).

    Images must be labelled, not excluded, in the body parts and splits; a lesion image counts
    only with at least one box. Picked normal patches are read unless ``normal_source`` is auto.
    """
    boxes: dict[int, list[Box]] = defaultdict(list)
    for b in project.boxes():
        boxes[b.image_id].append(b.box)
    picked: dict[int, list[Box]] = defaultdict(list)
    if normal_source != "auto":
        for p in project.normal_patches():
            picked[p.image_id].append(p.box)
    lesion = [(r, boxes[r.id]) for r in training_images(project, "lesion", body_parts, splits) if boxes.get(r.id)]
    normal = [(r, picked.get(r.id, [])) for r in training_images(project, "normal", body_parts, splits)]
    return PatchSources(lesion, normal)


def patch_set_key(sources: PatchSources, params: Any, body_parts: list[str] | None, splits: list[str] | None,
                  version: int) -> str:
    """The content hash of a patch set: changes whenever any patch or its recorded origin would."""
    def image(rec: ImageRecord, regions: list[Box]) -> list[Any]:
        return [rec.id, rec.sha256, rec.width, rec.height, rec.body_part, [b.as_tuple() for b in regions]]

    payload = {"format": SET_FORMAT, "patches": version, "params": asdict(params),
               "body_parts": list(body_parts or []), "splits": list(splits or []),
               "lesion": [image(r, b) for r, b in sources.lesion], "normal": [image(r, b) for r, b in sources.normal]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()[:32]


def set_folder(project: Project) -> Path:
    return Path(project.folder) / "cache" / FOLDER


@dataclass
class CachedSet:
    """A patch set as stored: both domains' arrays, where each patch came from, and the summary extras."""

    lesion: np.ndarray
    normal: np.ndarray
    lesion_origin: tuple[np.ndarray, np.ndarray, list[str]]  # image ids, windows (N, 4), body parts
    normal_origin: tuple[np.ndarray, np.ndarray, list[str]]
    extra_summary: dict[str, Any]


def load_set(folder: Path, key: str) -> CachedSet | None:
    """The set stored under ``key``, or None (absent, unreadable, or not plain arrays: never unpickled).

    The patch arrays are memory-mapped, read-only: a start costs the key and a few small files,
    and training reads the pages it draws (a FracAtlas set at 128 px is 210 MB; reading it whole
    took 20-80 s of a start on the busy build machine).
    """
    path = folder / key
    if not (path / META).is_file():
        return None
    try:
        meta = json.loads((path / META).read_text())
        with np.load(path / ORIGINS, allow_pickle=False) as data:
            origins = {k: data[k] for k in ("lesion_ids", "lesion_windows", "normal_ids", "normal_windows")}
        arrays = {d: np.load(path / f"{d}.npy", mmap_mode="r", allow_pickle=False) for d in ("lesion", "normal")}
        out = CachedSet(arrays["lesion"], arrays["normal"],
                        (origins["lesion_ids"], origins["lesion_windows"], list(meta["lesion_parts"])),
                        (origins["normal_ids"], origins["normal_windows"], list(meta["normal_parts"])),
                        dict(meta["extra_summary"]))
        for pool, (ids, windows, parts) in ((out.lesion, out.lesion_origin), (out.normal, out.normal_origin)):
            if pool.dtype != np.float16 or pool.ndim != 3 or not len(pool) == len(ids) == len(windows) == len(parts):
                raise ValueError("its arrays do not match each other")
        if meta.get("key") != key:
            raise ValueError("it is stored under another key")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable patch set %s (%s); preparing it again", key, exc)
        shutil.rmtree(path, ignore_errors=True)  # so that the set prepared now can take its place
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # the newest-used sets are the ones kept
    return out


def save_set(folder: Path, key: str, cached: CachedSet) -> None:
    """Store a set under ``key`` (written into a hidden folder, fsynced, then renamed into place,
    so a crash leaves no half set) and drop all but the newest :data:`KEEP` sets."""
    meta = {"key": key, "lesion_parts": cached.lesion_origin[2], "normal_parts": cached.normal_origin[2],
            "extra_summary": cached.extra_summary}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder))
    arrays = (cached.lesion, cached.normal, *cached.lesion_origin[:2], *cached.normal_origin[:2])
    try:
        for name, write in ((f"{LESION}.npy", lambda fh: np.save(fh, np.asarray(cached.lesion), allow_pickle=False)),
                            (f"{NORMAL}.npy", lambda fh: np.save(fh, np.asarray(cached.normal), allow_pickle=False)),
                            (ORIGINS, lambda fh: np.savez(fh, lesion_ids=cached.lesion_origin[0],
                                                          lesion_windows=cached.lesion_origin[1],
                                                          normal_ids=cached.normal_origin[0],
                                                          normal_windows=cached.normal_origin[1])),
                            (META, lambda fh: fh.write(json.dumps(meta).encode()))):
            with open(tmp / name, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # another process stored the same set meanwhile: keep theirs
            tmp.rename(folder / key)
    except OSError as exc:
        if is_disk_full(exc):
            needed = sum(np.asarray(a).nbytes for a in arrays) + len(json.dumps(meta))
            raise DiskFullError("the prepared patch set", folder, needed) from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sets = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: d.stat().st_mtime, reverse=True)
    for old in sets[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)  # a process still reading it keeps its open pages


def origin(infos: list[Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(image ids, windows, body parts) of a list of :class:`~lesion_studio.patches.dataset.PatchInfo`."""
    ids = np.array([p.image_id for p in infos], dtype=np.int64)
    windows = np.array([p.window.as_tuple() for p in infos], dtype=np.float64).reshape(-1, 4)
    return ids, windows, [p.body_part for p in infos]


# ---------------------------------------------------------------------------- decoding rate
def record_rate(folder: Path, images: int, seconds: float) -> None:
    """Remember how long decoding ``images`` source images took here (for :func:`preparation_estimate`)."""
    if images >= 10 and seconds > 0:
        atomic_write_json(folder / RATE_FILE, {"seconds_per_image": seconds / images, "images": images})


def seconds_per_image(folder: Path) -> tuple[float, bool]:
    """(seconds to decode one source image, whether it was measured in this project)."""
    try:
        rate = float(json.loads((folder / RATE_FILE).read_text())["seconds_per_image"])
        if rate > 0:
            return rate, True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return REFERENCE_SECONDS_PER_IMAGE, False


@dataclass(frozen=True)
class PreparationEstimate:
    """What preparing a GAN run's patches will take: a cached set loads in about a second; otherwise
    every source image is decoded (an upper bound: images already in the per-image cache are faster)."""

    images: int
    cached: bool
    seconds: float
    measured: bool  # the decoding rate was measured in this project (else a reference figure)


def preparation_estimate(project: Project, *, body_parts: list[str] | None, splits: list[str] | None,
                         params: Any) -> PreparationEstimate:
    """How long the next start with these settings will spend preparing patches (reads the
    database, prepares nothing)."""
    sources = patch_sources(project, body_parts, splits, params.normal_source)
    folder = set_folder(project)
    key = patch_set_key(sources, params, body_parts, splits, CACHE_VERSION)
    rate, measured = seconds_per_image(folder)
    if (folder / key / META).is_file():
        return PreparationEstimate(sources.image_count, True, LOAD_SECONDS, measured)
    return PreparationEstimate(sources.image_count, False, sources.image_count * rate, measured)
