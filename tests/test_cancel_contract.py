"""One cancel shape for every long job: keep what was done, then raise ``JobCancelled`` with it as
``partial`` (trainers, batch synthesis, import and re-link alike)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lesion_studio.errors import JobCancelled
from lesion_studio.jobs import CancelToken


def _cancel_at(stage: str, done: int) -> tuple[CancelToken, object]:
    token = CancelToken()

    def progress(event) -> None:  # noqa: ANN001
        if event.stage == stage and event.done >= done:
            token.cancel()
    return token, progress


def test_a_cancelled_import_keeps_what_it_read_and_raises(demo_project, tmp_path: Path) -> None:  # noqa: ANN001
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.store import Project

    source = tmp_path / "more"
    source.mkdir()
    for rec in demo_project.images()[:6]:
        shutil.copy2(rec.abs_path, source / f"copy-{rec.abs_path.name}")
    target = Project.create(tmp_path / "target")
    token, progress = _cancel_at("import", 2)
    with pytest.raises(JobCancelled) as stopped:
        import_source(target, source, progress=progress, cancel=token, workers=1)
    report = stopped.value.partial
    assert report.cancelled and 1 <= report.added < 6 and len(target.images()) == report.added
    assert report.summary().endswith("Cancelled: the images imported so far are kept.")
    target.close()


def test_an_empty_folder_imports_nothing_and_says_so(demo_project, tmp_path: Path) -> None:  # noqa: ANN001
    from lesion_studio.dataset.importer import import_source

    (tmp_path / "empty").mkdir()
    report = import_source(demo_project, tmp_path / "empty")
    assert report.files_found == 0 and report.summary().startswith(f"No images found in {tmp_path / 'empty'}")


def test_a_cancelled_relink_keeps_what_it_found_and_raises(demo_project, tmp_path: Path) -> None:  # noqa: ANN001
    moved = tmp_path / "moved"
    moved.mkdir()
    records = demo_project.images()[:4]
    for rec in records:
        shutil.move(rec.abs_path, moved / rec.abs_path.name)
    token, progress = _cancel_at("relink", 1)
    with pytest.raises(JobCancelled) as stopped:
        demo_project.relink(moved, progress=progress, cancel=token)
    found = stopped.value.partial
    assert 1 <= len(found) < 4
    assert len(demo_project.missing_images()) == 4 - len(found)  # what it found is recorded
    assert len(demo_project.relink(moved)) == 4 - len(found)  # and the rest is found next time
    assert demo_project.missing_images() == []
