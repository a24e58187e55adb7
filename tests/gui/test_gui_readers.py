"""Lesion types, the ruler, readers' views, agreement and adjudication in the real window, and
opening a single DICOM file."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt

from lesion_studio.gui import settings as prefs
from lesion_studio.store import Box, Project, readers
from lesion_studio.store import measurements as meas
from tests.gui.conftest import dispose, open_window, show
from tests.gui.helpers import click, drag
from tests.gui.test_gui_annotation import first_image


@pytest.fixture
def reader_alice():  # noqa: ANN201
    prefs.set_reader_name("alice")
    yield "alice"
    prefs.set_value(prefs.READER_KEY, "")


@pytest.fixture
def alice_window(qtbot, demo_project, reader_alice):  # noqa: ANN001, ANN201
    w = open_window(qtbot, demo_project.folder)
    yield w
    w.close()
    dispose(w)


def test_boxes_get_the_readers_name_and_a_type_set_by_key_and_inspector(qtbot, alice_window, demo_project) -> None:  # noqa: ANN001
    window = alice_window
    assert window.session.author == "alice"
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    canvas = window.canvas
    canvas.set_zoom(2.0, (160.0, 192.0))
    drag(qtbot, canvas, canvas.to_screen(120, 150), canvas.to_screen(180, 200))
    (box,) = demo_project.boxes(image_id)
    assert (box.reader, box.lesion_type) == ("alice", "fracture")  # the project's first type
    # drawing on a normal image relabelled it: recorded as alice's own label too
    assert readers.reader_label(demo_project, image_id, "alice").label == "lesion"
    # T types the selected box with the next type; Shift+T goes back; Ctrl+Z undoes one step
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_T)
    assert demo_project.box(box.id).lesion_type == "lytic"
    qtbot.keyClick(canvas, Qt.Key.Key_T)
    assert demo_project.box(box.id).lesion_type == "sclerotic"
    qtbot.keyClick(canvas, Qt.Key.Key_T, Qt.KeyboardModifier.ShiftModifier)
    assert demo_project.box(box.id).lesion_type == "lytic"
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert demo_project.box(box.id).lesion_type == "sclerotic"
    # the inspector's type menu for the selected box
    inspector = window.inspector
    assert inspector.box_type.isEnabled() and inspector.box_type.currentText() == "sclerotic"
    inspector.box_type.setCurrentText("mixed")
    inspector.box_type.activated.emit(inspector.box_type.currentIndex())
    assert demo_project.box(box.id).lesion_type == "mixed"
    # the region list says type, reader and size in mm (demo: PixelSpacing 0.15 mm): 60 x 50 px
    text = inspector.regions.item(0).text()
    assert "mixed" in text and "alice" in text and "9.0 × 7.5 mm" in text
    assert "Readers: you: lesion" in inspector.readers.text()
    # undoing the whole drawing takes the reader's label back as well
    stack = window.session.undo_stack
    while stack.canUndo():
        stack.undo()
    assert demo_project.boxes(image_id) == [] and readers.reader_label(demo_project, image_id, "alice") is None


def test_ruler_measures_in_mm_stores_and_undoes(qtbot, alice_window, demo_project) -> None:  # noqa: ANN001
    window = alice_window
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    canvas = window.canvas
    canvas.set_zoom(2.0, (160.0, 192.0))
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_M)
    assert canvas.tool is window.tools["ruler"]
    drag(qtbot, canvas, canvas.to_screen(100, 100), canvas.to_screen(160, 180))
    (m,) = meas.measurements(demo_project, image_id)
    assert (m.x0, m.y0, m.x1, m.y1) == pytest.approx((100, 100, 160, 180), abs=0.6)
    assert (m.spacing, m.spacing_source, m.author) == ((0.15, 0.15), "PixelSpacing", "alice")
    assert m.length_mm == pytest.approx(m.length_px * 0.15)
    (item,) = canvas.measurements
    assert item.label.text() == f"{m.length_mm:.1f} mm"
    assert any("Ruler #" in window.inspector.regions.item(i).text() for i in range(window.inspector.regions.count()))
    # a click on the line selects it, Del deletes it, Ctrl+Z brings it back with its id
    click(qtbot, canvas, canvas.to_screen(130, 140))
    assert window.controller.selected == ("measure", m.id)
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert meas.measurements(demo_project, image_id) == []
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert meas.measurements(demo_project, image_id) == [m]


def test_no_spacing_shows_pixels_and_says_so(qtbot, tmp_path, dicom_dir, reader_alice) -> None:  # noqa: ANN001
    """RG3 has no pixel spacing: sizes and lengths in pixels, and the inspector says why."""
    from lesion_studio.dataset.importer import import_source

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(dicom_dir / "RG3_J2KI.dcm", images)
    with Project.create(tmp_path / "p") as project:
        import_source(project, images)
        (rec,) = project.images()
        project.add_box(rec.id, Box(100, 100, 160, 130), author="alice", lesion_type="lytic")
        meas.add_measurement(project, rec.id, (0, 0, 30, 40), spacing=None, author="alice")
    window = open_window(qtbot, tmp_path / "p")
    try:
        inspector = window.inspector
        texts = [inspector.regions.item(i).text() for i in range(inspector.regions.count())]
        assert any("60 × 30 px (no spacing)" in t for t in texts) and any("50.0 px" in t for t in texts), texts
        assert "no pixel spacing" in inspector.spacing_note.text()
        assert window.canvas.measurements[0].label.text() == "50.0 px"
    finally:
        window.close()
        dispose(window)


def test_reader_views_and_read_only_boxes(qtbot, alice_window, demo_project) -> None:  # noqa: ANN001
    window = alice_window
    image_id = first_image(demo_project, "lesion", with_regions=True)
    (ref,) = demo_project.boxes(image_id)  # the demo's own ("phantom")
    mine = demo_project.add_box(image_id, Box(10, 10, 40, 40), author="alice", lesion_type="lytic")
    window.browser.reload()
    show(qtbot, window, first_image(demo_project, "normal"))  # the window may have opened on image_id
    show(qtbot, window, image_id)
    assert {r.region_id for r in window.canvas.regions if r.kind == "lesion"} == {ref.id, mine}
    owners = {r.region_id: r.owner for r in window.canvas.regions if r.kind == "lesion"}
    assert owners == {ref.id: "other", mine: "mine"}  # two readers on the image: phantom's drawn apart
    window.browser.set_reader_view("alice")
    assert window.session.reader_view == "alice"
    assert [r.region_id for r in window.canvas.regions if r.kind == "lesion"] == [mine]
    assert window.browser.model.box_counts[image_id] == 1
    window.browser.set_reader_view("phantom")
    (item,) = [r for r in window.canvas.regions if r.kind == "lesion"]
    assert item.region_id == ref.id and not item.editable
    before = demo_project.box(ref.id).box
    canvas = window.canvas
    drag(qtbot, canvas, canvas.to_screen(*item.box.center), canvas.to_screen(item.box.center[0] + 20,
                                                                             item.box.center[1] + 20))
    assert demo_project.box(ref.id).box == before  # another reader's box is not moved
    assert "read-only" in window.banner.text.text()
    # the type filter: only images with a lytic box
    window.browser.set_reader_view(None)
    window.browser.set_lesion_type_filter("lytic")
    assert window.browser.visible_image_ids() == [image_id]


def test_adjudication_takes_or_merges_into_consensus_with_undo(qtbot, alice_window, demo_project) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.agreement import AdjudicationDialog

    window = alice_window
    image_id = first_image(demo_project, "lesion", with_regions=True)
    (ref,) = demo_project.boxes(image_id)
    b = ref.box
    demo_project.add_box(image_id, Box(b.x0 + 2, b.y0, b.x1 + 2, b.y1), author="alice", lesion_type="lytic")
    demo_project.add_box(image_id, Box(0, 0, 5, 5), author="alice", lesion_type="other")
    show(qtbot, window, image_id)
    window.adjudicate_boxes()
    dialog = window.adjudication_dialog
    assert isinstance(dialog, AdjudicationDialog)
    dialog.reader_a.setCurrentText("alice")
    dialog.reader_b.setCurrentText("phantom")
    assert sorted(d.kind for d in dialog.items) == ["matched", "only A"]
    row = next(k for k, d in enumerate(dialog.items) if d.kind == "matched")
    dialog.select_row(row)
    dialog.take("merge")
    (consensus,) = demo_project.boxes(image_id, reader="consensus")
    assert consensus.box == Box(b.x0 + 1, b.y0, b.x1 + 1, b.y1) and consensus.lesion_type == "lytic"
    row = next(k for k, d in enumerate(dialog.items) if d.kind == "only A")
    dialog.select_row(row)
    assert not dialog.buttons["merge"].isEnabled()
    dialog.take("a")
    assert sorted(x.box.as_tuple() for x in demo_project.boxes(image_id, reader="consensus"))[0] == (0, 0, 5, 5)
    window.undo()
    window.undo()
    assert demo_project.boxes(image_id, reader="consensus") == []
    dialog.close()


def test_agreement_dialog_shows_the_report(qtbot, alice_window, demo_project) -> None:  # noqa: ANN001
    window = alice_window
    for rec in demo_project.images()[:6]:
        readers.put_reader_label(demo_project, rec.id, "alice", rec.label)
        readers.put_reader_label(demo_project, rec.id, "bob", "lesion")
    job = window.show_agreement()
    with qtbot.waitSignal(job.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: getattr(window, "agreement_dialog", None) is not None, timeout=10_000)
    table = window.agreement_dialog.table
    names = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert "alice – bob" in names and "alice – phantom" in names
    window.agreement_dialog.close()


def test_opening_a_dicom_file_offers_a_project_around_it(qtbot, tmp_path, dicom_dir) -> None:  # noqa: ANN001
    from lesion_studio.gui.app import MainWindow

    file = tmp_path / "RG2_J2KR.dcm"
    shutil.copy(dicom_dir / "RG2_J2KR.dcm", file)
    window = MainWindow()
    window.show()
    qtbot.waitExposed(window)
    try:
        assert window.open_project(file) is False
        text = window.banner.text.text()
        assert "is an image, not a project" in text
        assert "project.sqlite" not in text and "lesion-studio new" not in text  # no CLI wording
        assert window.banner.action_button.text() == "Create a project for it…"
        assert window.create_project_for_file(file, tmp_path / "RG2 project")
        qtbot.waitUntil(lambda: window.canvas.radiograph is not None, timeout=60_000)
        assert window.session.folder == (tmp_path / "RG2 project").resolve()
        assert [r.name for r in window.session.project.images()] == ["RG2_J2KR.dcm"]
    finally:
        window.close()
        dispose(window)
