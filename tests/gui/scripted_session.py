"""Run the real GUI offscreen, make a scripted series of edits through widgets and keys, then wait.

Used by test_gui_durability: the test SIGKILLs this process after it prints EDITS DONE (with a
notes edit still waiting in the inspector's save delay) and checks that the reopened project holds
every edit made before it. Usage: scripted_session.py PROJECT SETTINGS_DIR
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: helpers.py sits beside it
from helpers import when_dialog_opens  # noqa: E402


def wait_until(predicate, timeout_s: float = 20.0) -> None:  # noqa: ANN001
    from lesion_studio.gui.application import process_events_until

    process_events_until(predicate, timeout_s, what="scripted session", pause_s=0.01)


def drag(canvas, a, b) -> None:  # noqa: ANN001
    vp = canvas.viewport()
    a, b = a.toPoint(), b.toPoint()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for i in range(1, 6):
        QTest.mouseMove(vp, QPoint(a.x() + (b.x() - a.x()) * i // 5, a.y() + (b.y() - a.y()) * i // 5))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def main() -> None:
    project, settings_dir = Path(sys.argv[1]), sys.argv[2]
    from lesion_studio.gui.app import MainWindow
    from lesion_studio.gui.application import create_app
    from lesion_studio.gui.settings import use_settings_folder

    use_settings_folder(settings_dir)

    _app = create_app()  # held until the kill
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    window.open_project(project)
    canvas = window.canvas
    p = window.session.project

    def show(image_id: int) -> None:
        window.browser.select_image(image_id)
        wait_until(lambda: canvas.radiograph is not None and window.record.id == image_id
                   and canvas.radiograph.path == window.record.abs_path)
        canvas.setFocus()

    normals = [r.id for r in p.images(label="normal") if not r.excluded and not p.normal_patches(r.id)]
    a, b, c = normals[:3]
    done: dict[str, int] = {"box_image": a, "label_image": b, "patch_image": c}

    # 1. draw a lesion box on a normal image (relabels it), then move it by (+10, +10)
    show(a)
    drag(canvas, canvas.to_screen(100, 120), canvas.to_screen(160, 190))
    drag(canvas, canvas.to_screen(130, 150), canvas.to_screen(140, 160))
    # 2. second box, then undo it: the undo must be durable too
    drag(canvas, canvas.to_screen(40, 40), canvas.to_screen(70, 80))
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    # 3. next image by PgDn... then label, exclude (answering the dialog), body part key
    show(b)
    QTest.keyClick(canvas, Qt.Key.Key_L)  # normal -> lesion
    when_dialog_opens(lambda dialog: QTest.keyClick(dialog.reasons, Qt.Key.Key_Return), "reasons")
    QTest.keyClick(canvas, Qt.Key.Key_E)
    window.activateWindow()
    wait_until(window.isActiveWindow)
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_3)
    done["body_part"] = window.body_parts[2]
    # 4. a normal patch by click on the third image, and a note
    show(c)
    QTest.keyClick(canvas, Qt.Key.Key_N)
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     canvas.to_screen(160, 100).toPoint())
    # 5. a note typed and left alone: the inspector's save delay writes it, no flush called
    inspector = window.inspector
    QTest.keyClicks(inspector.notes, "durable note")
    wait_until(lambda: p.image(c).notes == "durable note")
    # 6. more typing, killed while that edit still sits in its save delay. The event loop is not
    # run again, so the delay cannot expire before the kill however slow the machine is.
    QTest.keyClicks(inspector.notes, " and more")
    done["notes_pending"] = inspector._notes_timer.isActive()
    print("EDITS DONE " + json.dumps(done), flush=True)
    time.sleep(3600)  # wait here, events unprocessed, until killed


if __name__ == "__main__":
    main()
