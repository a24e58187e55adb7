"""The window asks before an export replaces files (issue 25: the GUI's form of the CLI's --force)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox

from lesion_studio.gui.job_queue import JobState


def test_an_export_asks_before_it_replaces_files_and_no_leaves_them(qtbot, window, monkeypatch,  # noqa: ANN001
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "beside-the-images"
    out.mkdir()
    original = b"image,label\nmy-own-file.png,normal\n"
    (out / "labels.csv").write_bytes(original)
    asked: list[tuple[str, str]] = []

    def answering(reply: QMessageBox.StandardButton) -> Any:
        def question(parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
            asked.append((title, text))
            return reply
        return staticmethod(question)

    monkeypatch.setattr(QMessageBox, "question", answering(QMessageBox.StandardButton.No))
    assert window.export_annotations(out, "csv") is None  # "No": no job at all
    assert len(asked) == 1 and asked[0][0] == "Replace files?" and str(out / "labels.csv") in asked[0][1]
    assert (out / "labels.csv").read_bytes() == original  # byte for byte
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv"]

    monkeypatch.setattr(QMessageBox, "question", answering(QMessageBox.StandardButton.Yes))
    job = window.export_annotations(out, "csv")
    with qtbot.waitSignal(job.finished, timeout=20_000):
        pass
    assert job.state == JobState.DONE and len(asked) == 2
    assert (out / "labels.csv").read_bytes() != original
    assert (out / "labels.csv").read_text().startswith("image,label,body_part")
    assert (out / "boxes.csv").exists()

    job = window.export_annotations(tmp_path / "empty", "csv")  # nothing to replace: no question
    with qtbot.waitSignal(job.finished, timeout=20_000):
        pass
    assert job.state == JobState.DONE and len(asked) == 2
