"""Export a set of synthetic samples into a folder: one job for ``export-samples`` and the GUI.

Each sample becomes ``synthetic_<id>.png`` or ``.dcm`` with its provenance in a JSON sidecar
(see :mod:`lesion_studio.samples.export`), and the folder gets an ``index.json`` listing what was
written, so a folder handed to a collaborator says what it holds without the project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lesion_studio.errors import LesionStudioError
from lesion_studio.files import atomic_write_json
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.samples.export import export_sample_dicom, export_sample_png
from lesion_studio.store.project import Project
from lesion_studio.store.records import utc_now

FORMATS = ("png", "dicom")
STATUSES = ("accepted", "candidate", "rejected", "all")


@dataclass
class SampleExport:
    out_dir: Path
    fmt: str
    files: list[Path] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.files)


def export_samples(project: Project, out_dir: str | Path, fmt: str = "png", *, status: str = "accepted",
                   batch: str | None = None, progress: ProgressCallback = no_progress,
                   cancel: CancelToken | None = None) -> SampleExport:
    """Write the samples with ``status`` (``all`` for every status), optionally of one ``batch``.

    A sample whose image cannot be read is reported in ``failed`` and the others still go out.
    """
    if fmt not in FORMATS:
        raise LesionStudioError(f"Unknown export format {fmt!r}; use png or dicom.")
    if status not in STATUSES:
        raise LesionStudioError(f"Unknown sample status {status!r}; use {', '.join(STATUSES)}.")
    samples = project.synthetic_samples(status=None if status == "all" else status, batch=batch)
    if not samples:
        what = "synthetic samples" if status == "all" else f"{status} synthetic samples"
        raise LesionStudioError(f"There are no {what}{f' in batch {batch!r}' if batch else ''} to export. "
                                "Keep some from the synthesis panel (K) or accept them in the gallery.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = export_sample_png if fmt == "png" else export_sample_dicom
    report = SampleExport(out, fmt)
    clock = EtaClock(len(samples))
    for k, sample in enumerate(samples):
        if cancel is not None:
            cancel.raise_if_cancelled("Exporting samples")
        try:
            report.files.append(writer(project, sample, out))
        except LesionStudioError as exc:
            report.failed.append((sample.id, str(exc)))
        progress(ProgressEvent("export-samples", k + 1, len(samples), f"sample {sample.id}", eta_s=clock.eta(k + 1)))
    index = {"exported": utc_now(), "format": fmt, "status": status,
             "batch": batch, "files": [p.name for p in report.files],
             "failed": [{"sample_id": i, "error": e} for i, e in report.failed]}
    atomic_write_json(out / "index.json", index, indent=1)
    return report
