"""The assisted-reading commands: propose, proposals, proposal accept/reject, queue — their happy
paths, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lesion_studio.cli.main import main
from lesion_studio.store import Box, Project
from lesion_studio.store import proposals as store
from tests.stub_models import register_stub_classifier, register_stub_detector, spot_project

pytest.importorskip("onnx")


@pytest.fixture
def folder(tmp_path: Path) -> str:
    with spot_project(tmp_path) as project:
        register_stub_detector(project)
        register_stub_classifier(project, "no-map", size=64)
        return str(project.folder)


def _error(capsys, argv: list[str]) -> str:  # noqa: ANN001
    """Run a command that must fail on bad input: exit 2, one error line, no traceback."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    return errors[0]


def test_propose_list_accept_reject_and_queue(folder: str, capsys) -> None:  # noqa: ANN001
    assert main(["propose", folder, "--model", "stub-detector"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("stub-detector (lesion_map) scored 4 of 4 image(s) and proposed")

    assert main(["propose", folder, "--model", "stub-detector", "--split", "train", "--max-per-image", "1",
                 "--threshold", "0.6", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["images"], summary["proposals"], summary["model"]) == (2, 2, "stub-detector")

    assert main(["proposals", folder, "--image", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "1 proposal(s)." and "pending" in lines[0] and "stub-detector" in lines[0]
    assert main(["proposals", folder, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    first = next(r for r in rows if r["image_id"] == 1)
    second = next(r for r in rows if r["image_id"] == 2)

    assert main(["proposal", "accept", folder, str(first["id"]), "--reader", "alice", "--box", "95,115,145,165"]) == 0
    assert capsys.readouterr().out.strip() == f"Proposal {first['id']} accepted by alice as lesion box 1 (edited)."
    assert main(["proposal", "reject", folder, str(second["id"]), "--reader", "alice"]) == 0
    assert capsys.readouterr().out.strip() == f"Proposal {second['id']} rejected by alice."
    with Project.open(folder) as project:
        (box,) = project.boxes()
        assert box.box == Box(95, 115, 145, 165) and box.author == "alice"
        assert box.provenance["proposal_id"] == first["id"] and box.provenance["model_name"] == "stub-detector"
        assert project.image(1).label == "lesion" and project.image(2).label == "unreviewed"
        assert store.proposal(project, second["id"]).state == "rejected"
    assert main(["proposals", folder, "--state", "accepted"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 proposal(s)."

    assert main(["queue", folder, "--order", "likely"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("3 of 4 images unreviewed (likely order by stub-detector")
    assert len(lines) == 4  # images 2–4, then the counter
    assert main(["queue", folder, "--order", "file", "--json"]) == 0
    queue = json.loads(capsys.readouterr().out)
    assert [q["image_id"] for q in queue["queue"]] == [2, 3, 4] and queue["unreviewed"] == 3

    assert main(["propose", folder, "--model", "stub-detector", "--unreviewed", "--images", "1", "2"]) == 0
    assert "scored 1 of 1 image(s)" in capsys.readouterr().out
    # images by file name or id (spot2.png is image 3: given twice, it runs once)
    assert main(["propose", folder, "--model", "stub-detector", "--images", "spot2.png", "1", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 2


@pytest.mark.parametrize(("argv", "says"), [
    (["propose", "{f}", "--model", "nope"], "no model 'nope'"),
    (["propose", "{f}", "--model", "no-map"], "without localisation maps"),
    (["propose", "{f}", "--model", "stub-detector", "--threshold", "0"], "threshold must lie in (0, 1]"),
    (["propose", "{f}", "--model", "stub-detector", "--threshold", "1.5"], "threshold must lie in (0, 1]"),
    (["propose", "{f}", "--model", "stub-detector", "--min-score", "-1"], "minimum proposal score"),
    (["propose", "{f}", "--model", "stub-detector", "--max-per-image", "0"], "At least one proposal"),
    (["propose", "{f}", "--model", "stub-detector", "--images", "99"], "no image with id 99"),
    (["propose", "{f}", "--model", "stub-detector", "--images", "nope.png"], "no image named 'nope.png'"),
    (["propose", "{f}", "--model", "stub-detector", "--split", "bogus"], "invalid choice: 'bogus'"),
    (["propose", "{f}", "--model", "stub-detector", "--split", "val", "--images", "1"], "not allowed with"),
    (["propose", "{f}", "--model", "stub-detector", "--unreviewed", "--reader", " "], "reader name cannot be empty"),
    (["propose", "{f}/missing", "--model", "stub-detector"], "not a Lesion Studio project"),
    (["proposals", "{f}", "--image", "99"], "no image with id 99"),
    (["proposals", "{f}", "--state", "maybe"], "invalid choice: 'maybe'"),
    (["proposal", "accept", "{f}", "99"], "no box proposal 99"),
    (["proposal", "accept", "{f}", "1", "--box", "1,2,3"], "--box must be x0,y0,x1,y1"),
    (["proposal", "reject", "{f}", "1", "--reader", "a^b"], "reader name"),
    (["proposal", "maybe", "{f}", "1"], "invalid choice: 'maybe'"),
    (["queue", "{f}", "--limit", "-1"], "--limit must be"),
    (["queue", "{f}", "--operating-point", "2"], "operating point is a probability"),
    (["queue", "{f}", "--model", "nope"], "no model 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(folder: str, capsys, argv: list[str], says: str) -> None:  # noqa: ANN001
    line = _error(capsys, [a.format(f=folder) for a in argv])
    assert says in line, line


def test_decisions_that_do_not_apply_are_refused(folder: str, capsys) -> None:  # noqa: ANN001
    assert main(["propose", folder, "--model", "stub-detector", "--images", "1"]) == 0
    with Project.open(folder) as project:
        pid = store.proposals(project, 1)[0].id
        before = (project.boxes(), [r.label for r in project.images()])
    assert main(["proposal", "reject", folder, str(pid), "--reader", "bob"]) == 0
    assert "is rejected by bob, not pending" in _error(capsys, ["proposal", "accept", folder, str(pid)])
    assert "is rejected by bob, not pending" in _error(capsys, ["proposal", "reject", folder, str(pid)])
    with Project.open(folder) as project:
        assert (project.boxes(), [r.label for r in project.images()]) == before  # nothing changed
    # every image reviewed: nothing unreviewed to propose on
    with Project.open(folder) as project:
        for rec in project.images():
            project.update_image(rec.id, label="normal")
    assert "no unreviewed images in this project" in _error(
        capsys, ["propose", folder, "--model", "stub-detector", "--unreviewed"])
