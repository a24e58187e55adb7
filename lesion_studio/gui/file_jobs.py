"""The window's file work: import, export and re-link, run on the job queue's light lane.

A mixin of :class:`~lesion_studio.gui.app.MainWindow` (it uses the window's session, browser,
loader, banner and job queue); kept in its own module so the window's assembly stays readable.
Each action runs a core function (``import_source``, ``export_project``, ``export_samples``,
``Project.relink``) as
a job; :meth:`FileJobs.run_job` is also what panels get as ``PanelHost.run_job``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog

from lesion_studio.gui.job_queue import LIGHT, Job, JobState
from lesion_studio.jobs import ProgressEvent

SKIPPED_NAMED = 5  # an import's banner names this many skipped files; Details… lists them all


class FileJobs:
    """Import, export, re-link and the light-lane job runner (mixed into the main window)."""

    def run_job(self: Any, fn: Callable[..., Any], title: str, on_success: Callable[[Any], None],
                modal: bool = True, dialog: bool = True, device: str = LIGHT) -> Job:
        """Run a short core job on the job queue's light lane (or ``device``'s heavy lane, for
        training), with a cancellable progress dialog.

        ``on_success(result)`` runs on success, and after a cancel when the job returned what it
        had done (an import keeps the images read so far); failures reach the banner.
        """
        job = self.job_queue.submit(fn, title, device, kind="light" if device == LIGHT else "training")
        box: QProgressDialog | None = None
        if dialog:
            box = QProgressDialog(title, "Cancel", 0, 0, self)
            box.setWindowTitle(title)
            box.setMinimumDuration(400)
            box.setWindowModality(Qt.WindowModality.WindowModal if modal else Qt.WindowModality.NonModal)

            def cancel() -> None:
                self.job_queue.cancel(job)
                if box is not None:
                    box.setLabelText(f"{title}: stopping…")

            box.canceled.connect(cancel)

            def progressed(event: ProgressEvent) -> None:
                if event.total:
                    box.setMaximum(event.total)
                    box.setValue(min(event.done, event.total))
                box.setLabelText(f"{title}: {event.message}" if event.message else title)

            job.progressed.connect(progressed)

        def finished(_state: str) -> None:
            if box is not None:
                box.reset()
                box.deleteLater()
            if job.state == JobState.DONE:
                on_success(job.result)
            elif job.state == JobState.FAILED:
                self.show_message(f"{title} failed: {job.error}", "error")
            elif job.result is not None:
                on_success(job.result)
            else:
                self.show_message(f"{title} was cancelled.", "info")

        job.finished.connect(finished)
        return job

    def import_images(self: Any, source: Path | None = None, **annotations: Path | None) -> Job | None:
        if self.session is None:
            return None
        if source is None:
            from lesion_studio.gui.dialogs import ImportDialog

            dialog = ImportDialog(self)
            if dialog.exec() != ImportDialog.DialogCode.Accepted:
                return None
            values = dialog.values()
            source = values.pop("source")
            annotations = values
            if source is None:
                self.show_message("Choose a folder of images to import.", "warning")
                return None
        from lesion_studio.dataset.importer import import_source

        project = self.session.project

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return import_source(project, source, progress=progress, cancel=cancel, **annotations)

        def done(report) -> None:  # noqa: ANN001
            self.browser.reload()
            self._bind_body_part_keys()
            text = report.summary()
            details = None
            if report.skipped:
                names = [s.name for s in report.skipped]
                shown = ", ".join(names[:SKIPPED_NAMED]) + (f" and {len(names) - SKIPPED_NAMED} more"
                                                            if len(names) > SKIPPED_NAMED else "")
                text += f" Skipped {len(names)} unreadable file(s): {shown}."
                details = ("Details…", lambda: self.show_skipped(report.skipped))
            if report.problems:
                first = report.problems[0]
                text += (f" {len(report.problems)} annotation row(s) skipped or clipped, e.g. {first['file']} "
                         f"{first['where']}: {first['reason']}")
            level = "warning" if report.skipped or report.problems or not report.files_found else "info"
            self.show_message(text, level, action=details)
            if self.record is None and self.browser.visible_image_ids():
                self.browser.select_image(self.browser.visible_image_ids()[0])

        return self.run_job(job, "Import", done)

    def show_skipped(self: Any, skipped: list[Any]) -> QMessageBox:
        """Every file an import skipped, each with its reason (the banner names the first few)."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Files not imported",
                          f"{len(skipped)} file(s) could not be read and were not imported. Each file and why:",
                          QMessageBox.StandardButton.Close, self)
        box.setObjectName("skipped_files")
        box.setDetailedText("\n".join(f"{s.name}: {s.reason}" for s in skipped))
        box.setModal(False)
        box.show()
        return box

    def export_annotations(self: Any, out: Path | None = None, fmt: str | None = None) -> Job | None:
        if self.session is None:
            return None
        if out is None or fmt is None:
            from lesion_studio.gui.dialogs import ExportDialog

            dialog = ExportDialog(self.session.folder / "exports", self)
            if dialog.exec() != ExportDialog.DialogCode.Accepted:
                return None
            out, fmt = Path(dialog.out.text()), dialog.fmt.currentText()
        from lesion_studio.dataset.exporter import existing_export_files, export_project

        project = self.session.project
        existing = existing_export_files(project, out, fmt)
        if existing:  # never replaced without asking (the CLI's --force)
            shown = "\n".join(str(p) for p in existing[:5]) + (f"\n… and {len(existing) - 5} more"
                                                                if len(existing) > 5 else "")
            answer = QMessageBox.question(self, "Replace files?", f"{out} already holds:\n{shown}\n\nReplace them?")
            if answer != QMessageBox.StandardButton.Yes:
                return None

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return export_project(project, out, fmt, force=bool(existing))

        return self.run_job(job, "Export", lambda r: self.show_message(
            " ".join([f"Exported {r['images']} image(s) and {r['boxes']} box(es) as {fmt} to {out}.",
                      *r.get("notes", [])]), "warning" if r.get("notes") else "info"))

    def export_kept_samples(self: Any, out: Path | None = None, fmt: str | None = None,
                            status: str = "accepted") -> Job | None:
        """Export accepted synthetic samples (PNG/DICOM + sidecars); asks for folder and format unless given."""
        if self.session is None:
            return None
        project = self.session.project
        if out is None or fmt is None:
            from lesion_studio.gui.dialogs import ExportSamplesDialog

            dialog = ExportSamplesDialog(project.folder / "exports" / "synthetic", self)
            if dialog.exec() != ExportSamplesDialog.DialogCode.Accepted:
                return None
            out, fmt, status = dialog.values()
        from lesion_studio.samples.folder_export import export_samples

        target, kind = Path(out), str(fmt)

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return export_samples(project, target, kind, status=status, progress=progress, cancel=cancel)

        def done(report) -> None:  # noqa: ANN001
            text = f"Exported {report.count} synthetic sample(s) as {kind.upper()} to {report.out_dir}."
            if report.failed:
                text += f" {len(report.failed)} could not be read (sample {report.failed[0][0]}: {report.failed[0][1]})"
            self.show_message(text, "warning" if report.failed else "info")

        return self.run_job(job, "Export synthetic samples", done)

    def _check_missing(self: Any) -> None:
        """On opening a project: say how many image files are missing, and offer Re-link."""
        assert self.session is not None
        missing = self.session.project.missing_images()
        if missing:
            n = len(missing)
            self.show_message(
                f"{n} image file{'s are' if n > 1 else ' is'} missing (moved or on an unplugged drive), "
                f"e.g. {missing[0].abs_path}. Re-link finds them by content.", "warning",
                action=("Re-link…", self.relink_images))

    def relink_images(self: Any, folder: Path | None = None) -> Job | None:
        if self.session is None:
            return None
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Where are the images now?")
            if not chosen:
                return None
            folder = Path(chosen)
        project = self.session.project

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return project.relink(folder, progress=progress, cancel=cancel)

        def done(found: dict) -> None:
            self.loader.forget()
            if self.thumbnails is not None:
                self.thumbnails.forget_failures()
            self.browser.reload()
            still = len(project.missing_images())
            level = "warning" if still else "info"
            self.show_message(f"Re-linked {len(found)} image(s)" + (f"; {still} still missing." if still else "."),
                              level)
            if self.record is not None:
                self.show_image(self.record.id)

        return self.run_job(job, "Re-link", done)
