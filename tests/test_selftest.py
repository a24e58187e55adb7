"""`lesion-studio --selftest`: passes on a working install, and each check fails when its part breaks."""

from __future__ import annotations

import json

import pytest

from lesion_studio import selftest
from lesion_studio.cli.main import main


def test_selftest_passes_and_reports_every_check(capsys) -> None:
    assert main(["--selftest"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nok   ") + out.startswith("ok   ") == len(selftest.CHECKS)
    assert "jpeg2000 and jpegls" in out and "builtin-phantom-unit" in out and "main window" in out
    assert out.rstrip().endswith("self-test passed")


def test_selftest_fails_on_wrong_pixels(tmp_path, monkeypatch) -> None:
    import shutil

    from lesion_studio.paths import resources_dir

    copy = tmp_path / "resources"
    shutil.copytree(resources_dir() / "selftest", copy / "selftest")
    expected = json.loads((copy / "selftest" / "expected.json").read_text())
    expected["sha256"] = "0" * 64
    (copy / "selftest" / "expected.json").write_text(json.dumps(expected))
    monkeypatch.setattr("lesion_studio.paths.resources_dir", lambda: copy)
    with pytest.raises(AssertionError, match="different pixels"):
        selftest.check_dicom_codecs()


def test_selftest_fails_without_a_builtin_generator(monkeypatch) -> None:
    monkeypatch.setattr("lesion_studio.builtin_models.builtin_models", lambda kind=None: [])
    lines: list[str] = []
    monkeypatch.setattr(selftest, "CHECKS", [("builtin-generator", selftest.check_builtin_generators)])
    assert selftest.run_selftest(lines.append) == 1
    assert lines[0].startswith("FAIL builtin-generator") and "no built-in generator" in lines[0]
