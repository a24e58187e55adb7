"""The `lesion-studio` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "lesion_studio.cli.main", *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_help_lists_the_foundation_commands() -> None:
    out = run("--help").stdout
    for command in ("new", "import", "info", "export", "demo", "gui"):
        assert command in out


def test_new_import_info_export(tmp_path: Path, demo_project_master: Path) -> None:
    project = tmp_path / "p"
    run("new", str(project))
    out = run("import", str(project), str(demo_project_master / "images"), "--labels",
              str(demo_project_master / "labels.csv"), "--boxes", str(demo_project_master / "boxes.csv"),
              "--json").stdout
    report = json.loads(out)
    assert report["added"] == 96 and report["skipped"] == []
    info = json.loads(run("info", str(project), "--json").stdout)
    assert info["images"] == 96 and info["boxes"] == report["boxes"]
    assert set(info["body_parts"]) == {"femur", "tibia", "humerus"}
    text = run("info", str(project)).stdout
    assert "per body part" in text and "femur" in text
    run("split", str(project), "--seed", "1")
    info = json.loads(run("info", str(project), "--json").stdout)
    assert set(info["splits"]) == {"train", "val", "test"}
    for fmt in ("coco", "csv", "yolo"):
        run("export", str(project), str(tmp_path / fmt), "--format", fmt)
    assert (tmp_path / "csv" / "labels.csv").exists()


def test_import_reports_malformed_dicoms_in_json(tmp_path: Path, damaged_dicom_dir: Path, dicom_dir: Path) -> None:
    report = json.loads(run("import", str(tmp_path / "p"), str(damaged_dicom_dir), "--json").stdout)
    assert report["added"] == 0
    assert sorted(s["name"] for s in report["skipped"]) == ["RG2_JPLY.dcm", "RG3_JPLY.dcm"]
    report = json.loads(run("import", str(tmp_path / "p"), str(dicom_dir), "--json").stdout)
    assert report["added"] == 14 and report["skipped"] == []


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    proc = run("info", str(tmp_path / "nothing"), check=False)
    assert proc.returncode == 2
    assert "not a Lesion Studio project" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "bad.csv").write_text("nope\n")
    run("new", str(tmp_path / "p"))
    proc = run("import", str(tmp_path / "p"), str(tmp_path), "--labels", str(tmp_path / "bad.csv"), check=False)
    assert proc.returncode == 2 and "missing column" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_without_gui_builds_the_project(tmp_path: Path) -> None:
    run("demo", str(tmp_path / "demo"), "--no-gui")
    info = json.loads(run("info", str(tmp_path / "demo"), "--json").stdout)
    assert info["images"] == 96 and info["lesion"] > 20
