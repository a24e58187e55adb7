"""The training patches for the GAN: lesion windows and normal windows, cached, balanced, seeded.

Each source image is decoded once: the patches drawn from it (``variants`` random windows per
lesion box or per normal image, resized to the model resolution, in [-1, 1]) are stored under
``<project>/cache/patches/<key>.npz``, where the key hashes the image's sha256, its boxes and every
sampling parameter. A second run, a resumed run or another rank then never re-decodes a DICOM.
On top of that the whole set is stored as one file (:mod:`lesion_studio.patches.set_cache`), keyed
by a content hash of every source image, region, filter and setting, so a start that changes
nothing loads one file instead of opening one per image. Batches are drawn in balanced epochs (as many normal as lesion patches per epoch, the smaller
domain repeated) from generators seeded by (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.files import atomic_write_from
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.patches import set_cache
from lesion_studio.patches.intensity import resize_patch, to_unit_range
from lesion_studio.patches.sampling import (
    balanced_order,
    lesion_window,
    normal_windows,
    patch_window,
    relative_sides,
    window_air_fractions,
)
from lesion_studio.store.records import Box, ImageRecord

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

CACHE_VERSION = set_cache.CACHE_VERSION  # one version for the per-image and the whole-set caches
LESION, NORMAL = "lesion", "normal"
_MEMORY_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


@dataclass(frozen=True)
class PatchParams:
    """How patches are cut. Part of every cache key, so changing any of them re-extracts."""

    resolution: int = 128
    side_factors: tuple[float, float] = (1.5, 3.0)
    jitter: float = 0.5
    variants: int = 4  # windows per lesion box / per normal image
    normal_source: str = "both"  # picked | auto | both (picked where the image has some, else auto)
    min_tissue: float = 0.7  # normal_match "tissue": the least share of a normal window above air
    #: How normal windows are matched to the lesion windows besides their size: "air" draws each
    #: normal window's air share from the lesion windows' (see ``sampling.normal_windows``: the
    #: mismatch taught the generator to paint background), "tissue" only asks for min_tissue.
    normal_match: str = "air"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution < 8:
            raise LesionStudioError(f"The patch resolution must be at least 8 px, not {self.resolution}.")
        if self.variants < 1:
            raise LesionStudioError("At least one window per source (variants >= 1) is needed.")
        if self.normal_source not in ("picked", "auto", "both"):
            raise LesionStudioError(f"normal_source must be picked, auto or both, not {self.normal_source!r}.")
        if self.normal_match not in ("air", "tissue"):
            raise LesionStudioError(f"normal_match must be air or tissue, not {self.normal_match!r}.")


@dataclass(frozen=True)
class PatchInfo:
    """Where one cached patch came from (for provenance and for the data summary)."""

    image_id: int
    body_part: str
    window: Box


@dataclass
class PatchSet:
    """Lesion (l) and normal (h) patches as float16 arrays (N, S, S) in [-1, 1], plus their origins."""

    lesion: np.ndarray
    normal: np.ndarray
    lesion_info: list[PatchInfo]
    normal_info: list[PatchInfo]
    params: PatchParams
    extra_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def resolution(self) -> int:
        return int(self.lesion.shape[-1])

    @property
    def epoch_length(self) -> int:
        """Patches per domain per epoch: the larger domain's size (the smaller one is repeated)."""
        return max(len(self.lesion), len(self.normal))

    def summary(self) -> dict[str, Any]:
        """Counts per domain and body part: saved with every model as its data summary."""
        def block(info: list[PatchInfo]) -> dict[str, Any]:
            return {"patches": len(info), "images": len({p.image_id for p in info}),
                    "body_parts": dict(sorted(Counter(p.body_part for p in info).items()))}

        return {"lesion": block(self.lesion_info), "normal": block(self.normal_info),
                "params": {**asdict(self.params), "side_factors": list(self.params.side_factors)},
                **self.extra_summary}

    def batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
              augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``step`` for ``rank``: (lesion, normal), each float32 (B, 1, S, S).

        Positions ``step·B·W + rank·B + k`` walk through balanced epochs, so W ranks together see
        exactly what one process with batch B·W would, and a resumed run continues where it left.
        Augmentation is a seeded left-right flip (anatomy is mirror-symmetric across sides).
        """
        start = (step * world_size + rank) * batch_size
        positions = np.arange(start, start + batch_size)
        out = []
        for domain, pool in ((0, self.lesion), (1, self.normal)):
            idx = np.array([self._order(domain, int(p) // self.epoch_length)[int(p) % self.epoch_length]
                            for p in positions])
            x = pool[idx].astype(np.float32)
            if augment:
                flips = np.random.default_rng(_seed(self.params.seed, "flip", domain, step, rank)).random(len(idx))
                x[flips < 0.5] = x[flips < 0.5, :, ::-1]
            out.append(np.ascontiguousarray(x[:, None]))
        return out[0], out[1]

    def _order(self, domain: int, epoch: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_orders", {})
        key = (domain, epoch)
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            n = len(self.lesion) if domain == 0 else len(self.normal)
            rng = np.random.default_rng(_seed(self.params.seed, "epoch", domain, epoch))
            cache[key] = balanced_order(n, self.epoch_length, rng)
        return cache[key]

    def sample(self, count: int, domain: str, seed: int = 0) -> np.ndarray:
        """``count`` fixed patches of a domain, float32 (count, 1, S, S): for sample grids and tests."""
        pool = self.lesion if domain == LESION else self.normal
        idx = np.random.default_rng(_seed(seed, "sample", domain)).permutation(len(pool))[:count]
        return pool[idx].astype(np.float32)[:, None]


def _seed(*parts: Any) -> int:
    digest = hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# ---------------------------------------------------------------------------- building
def build_patch_set(
    project: Project,
    *,
    body_parts: list[str] | None = None,
    splits: list[str] | None = None,
    params: PatchParams = PatchParams(),  # noqa: B008 - frozen dataclass
    cache: str = "disk",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> PatchSet:
    """Cut (or load from the cache) every lesion and normal patch for GAN training.

    ``cache`` is ``disk`` (``<project>/cache/patches``), ``memory`` (this process only) or
    ``none``. Raises :class:`LesionStudioError` when a domain ends up empty, naming the filter.
    """
    where = f"body part(s) {', '.join(body_parts)}" if body_parts else "any body part"
    where += f" in split(s) {', '.join(splits)}" if splits else ""
    sources = set_cache.patch_sources(project, body_parts, splits, params.normal_source)
    if not sources.lesion:
        raise LesionStudioError(
            f"There are no lesion boxes for {where} (only non-excluded images labelled 'lesion' with at "
            "least one box count). Draw boxes or choose another body part."
        )
    if not sources.normal:
        raise LesionStudioError(f"There are no normal images for {where}. Label some images normal first.")
    total = sources.image_count
    set_folder = set_cache.set_folder(project) if cache == "disk" else None
    set_key = set_cache.patch_set_key(sources, params, body_parts, splits, CACHE_VERSION)
    if set_folder is not None:
        stored = set_cache.load_set(set_folder, set_key)
        if stored is not None:
            log.info("patch set %s loaded from the cache (%d source images)", set_key, total)
            progress(ProgressEvent("patches", total, total, "cached", eta_s=0.0))
            return PatchSet(stored.lesion, stored.normal, _infos(stored.lesion_origin), _infos(stored.normal_origin),
                            params, extra_summary=stored.extra_summary)
    run = _Extraction(project, params, cache, project.subfolder("cache") / "patches" if cache == "disk" else None,
                      progress, cancel, total)
    lesion, lesion_info, fractions, airs = run.lesion_patches(sources.lesion)
    normal, normal_info = run.normal_patches(sources.normal, fractions, airs)
    if len(normal) == 0:
        raise LesionStudioError(
            f"No usable normal patches for {where}: "
            + ("no normal image has a picked normal patch (use normal_source 'both' or 'auto')."
               if params.normal_source == "picked" else "every sampled window was mostly air or text.")
        )
    result = PatchSet(lesion, normal, lesion_info, normal_info, params,
                      extra_summary={"body_parts_filter": list(body_parts or []), "splits": list(splits or []),
                                     "lesion_windows": lesion_window_stats(fractions, airs)})
    if set_folder is not None:
        set_cache.save_set(set_folder, set_key, set_cache.CachedSet(
            result.lesion, result.normal, set_cache.origin(lesion_info), set_cache.origin(normal_info),
            result.extra_summary))
        set_cache.record_rate(set_folder, run.decoded, run.decode_seconds)
    return result


@dataclass
class _Extraction:
    """One build's cut of its source images, each from the per-image cache or decoded: a progress
    tick per image (where a cancel is honoured), and the images decoded and the seconds they took
    (the rate the estimate uses)."""

    project: Project
    params: PatchParams
    cache: str
    cache_dir: Path | None
    progress: ProgressCallback
    cancel: CancelToken | None
    total: int
    done: int = 0
    decoded: int = 0
    decode_seconds: float = 0.0
    clock: EtaClock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = EtaClock(self.total)

    def lesion_patches(self, sources: list[tuple[ImageRecord, list[Box]]]
                       ) -> tuple[np.ndarray, list[PatchInfo], np.ndarray, np.ndarray]:
        """Every lesion box's windows: the patches, their origins, and the windows' sides relative
        to their images and air shares (what the normal windows are matched to)."""
        parts: list[np.ndarray] = []
        info: list[PatchInfo] = []
        sized: list[tuple[Box, int, int]] = []
        air_shares: list[np.ndarray] = []
        for rec, boxes in sources:
            key_data = {"domain": LESION, "boxes": [b.as_tuple() for b in boxes]}
            patches, windows, air = self._one_image(
                rec, key_data, lambda rec=rec, boxes=boxes: _lesion_patches(self.project, rec, boxes, self.params))
            parts.append(patches)
            air_shares.append(air)
            for w in windows:
                info.append(PatchInfo(rec.id, rec.body_part, w))
                sized.append((w, rec.width, rec.height))
            self._tick(rec.name)
        airs = np.concatenate(air_shares) if air_shares else np.zeros(0)
        return np.concatenate(parts), info, relative_sides(sized), airs

    def normal_patches(self, sources: list[tuple[ImageRecord, list[Box]]], fractions: np.ndarray,
                       airs: np.ndarray) -> tuple[np.ndarray, list[PatchInfo]]:
        """Each normal image's picked patches, else windows sampled to match the lesion windows'
        sides (and air shares, with ``normal_match`` "air"); the patches and their origins."""
        params = self.params
        targets = airs if params.normal_match == "air" else None
        parts: list[np.ndarray] = []
        info: list[PatchInfo] = []
        frac_key = hashlib.sha256(np.round(np.r_[fractions, airs if targets is not None else []], 6).tobytes()
                                  ).hexdigest()[:16]
        for rec, picked in sources:
            if not picked and params.normal_source == "picked":
                self._tick(rec.name)
                continue
            key_data = {"domain": NORMAL, "picked": [b.as_tuple() for b in picked],
                        "fractions": frac_key if not picked else ""}
            patches, windows, _air = self._one_image(
                rec, key_data,
                lambda rec=rec, picked=picked: _normal_patches(self.project, rec, picked, fractions, targets, params))
            parts.append(patches)
            info.extend(PatchInfo(rec.id, rec.body_part, w) for w in windows)
            self._tick(rec.name)
        empty = np.zeros((0, params.resolution, params.resolution), np.float16)
        return (np.concatenate(parts) if parts else empty), info

    def _one_image(self, rec: ImageRecord, key_data: dict[str, Any],
                make: Any) -> tuple[np.ndarray, list[Box], np.ndarray]:
        """One image's patches from the cache, or from ``make()`` timed."""
        def timed() -> Any:
            t0 = time.perf_counter()
            out = make()
            self.decoded += 1
            self.decode_seconds += time.perf_counter() - t0
            return out

        return _cached(self.cache, self.cache_dir, rec, self.params, key_data, timed)

    def _tick(self, name: str) -> None:
        self.done += 1
        if self.cancel is not None:
            self.cancel.raise_if_cancelled("Patch extraction")
        self.progress(ProgressEvent("patches", self.done, self.total, name, eta_s=self.clock.eta(self.done)))


def _infos(origin: tuple[np.ndarray, np.ndarray, list[str]]) -> list[PatchInfo]:
    ids, windows, parts = origin
    return [PatchInfo(int(i), part, Box(*map(float, w))) for i, w, part in zip(ids, windows, parts, strict=True)]


def lesion_window_stats(fractions: np.ndarray, airs: np.ndarray) -> dict[str, list[float]]:
    """The lesion windows' relative sides and air shares, saved with a model so that synthesis
    draws its source windows as the generator's normal training windows were drawn."""
    return {"side_fractions": [round(float(f), 4) for f in fractions],
            "air_fractions": [round(float(a), 4) for a in airs]}


def _cached(cache: str, cache_dir: Path | None, rec: ImageRecord, params: PatchParams,
            key_data: dict[str, Any], make: Any) -> tuple[np.ndarray, list[Box], np.ndarray]:
    """(patches, windows, air shares) of one image, from the cache or from ``make()``."""
    payload = {"v": CACHE_VERSION, "sha": rec.sha256, "params": asdict(params), **key_data}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()[:32]
    if cache == "memory" and key in _MEMORY_CACHE:
        patches, wins, air = _MEMORY_CACHE[key]
        return patches, [Box(*map(float, w)) for w in wins], air
    path = cache_dir / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            with np.load(path) as data:
                return data["patches"], [Box(*map(float, w)) for w in data["windows"]], data["air"]
        except (OSError, ValueError, KeyError):
            log.warning("unreadable patch cache %s; re-extracting", path.name)
    patches, windows, air = make()
    wins = np.array([w.as_tuple() for w in windows], dtype=np.float64).reshape(-1, 4)
    if cache == "memory":
        _MEMORY_CACHE[key] = (patches, wins, air)
    elif path is not None:
        atomic_write_from(path, lambda fh: np.savez(fh, patches=patches, windows=wins, air=air))
    return patches, windows, air


def _cut(pixels: np.ndarray, value_range: tuple[float, float], windows: list[Box], size: int) -> np.ndarray:
    out = np.empty((len(windows), size, size), np.float16)
    for i, w in enumerate(windows):
        x0, y0, x1, y1 = w.as_ints()
        out[i] = resize_patch(to_unit_range(pixels[y0:y1, x0:x1], value_range), size, size)
    return out


def _open(project: Project, rec: ImageRecord):  # noqa: ANN202
    return project.open_radiograph(rec.id)


def _lesion_patches(project: Project, rec: ImageRecord, boxes: list[Box],
                    params: PatchParams) -> tuple[np.ndarray, list[Box], np.ndarray]:
    rg = _open(project, rec)
    rng = np.random.default_rng(_seed(params.seed, rec.sha256, LESION))
    windows = [lesion_window(b, rg.width, rg.height, rng, params.side_factors, params.jitter)
               for b in boxes for _ in range(params.variants)]
    return (_cut(rg.pixels, rg.value_range, windows, params.resolution), windows,
            window_air_fractions(rg.pixels, windows))


def _normal_patches(project: Project, rec: ImageRecord, picked: list[Box], fractions: np.ndarray,
                    air_targets: np.ndarray | None, params: PatchParams) -> tuple[np.ndarray, list[Box], np.ndarray]:
    rg = _open(project, rec)
    if picked:
        windows = [patch_window(b, rg.width, rg.height) for b in picked]
    else:
        rng = np.random.default_rng(_seed(params.seed, rec.sha256, NORMAL))
        windows = normal_windows(rg.pixels, params.variants, rng, fractions, min_tissue=params.min_tissue,
                                 air_targets=air_targets)
    return (_cut(rg.pixels, rg.value_range, windows, params.resolution), windows,
            window_air_fractions(rg.pixels, windows))
