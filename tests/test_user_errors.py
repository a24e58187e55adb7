"""What a person sees on the terminal: one line per bad file, no third-party tracebacks, validated
options, truncated files called truncated, and documented exit codes (never 70 for bad input)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lesion_studio.cli.main import main
from lesion_studio.errors import RadiographError
from lesion_studio.io import open_radiograph

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LESION_STUDIO_HOME": str(home)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)


def test_third_party_tracebacks_go_to_the_log_file_only(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import logging
        from lesion_studio.logsetup import configure_logging
        configure_logging()
        try:
            raise RuntimeError("libjpeg error code -1038")
        except RuntimeError:
            logging.getLogger("pydicom.pixels.decoders.base").exception("decoder failed")
        logging.getLogger("lesion_studio.io").warning("bad.dcm: could not be decoded\\nsecond line")
        import warnings
        warnings.warn("pydicom VR complaint")
    """)
    result = _run(["-c", script], tmp_path)
    assert result.stderr.splitlines() == ["WARNING: bad.dcm: could not be decoded"]
    log = (tmp_path / "logs" / "lesion-studio.log").read_text()
    assert "Traceback" in log and "libjpeg error code -1038" in log and "pydicom VR complaint" in log


def test_malformed_nema_files_get_one_line_each(damaged_dicom_dir: Path, tmp_path: Path) -> None:
    """RG2_JPLY.dcm and RG3_JPLY.dcm made pydicom log two decoder tracebacks each (the originals
    decode now; these copies are damaged beyond the scan-header repair)."""
    result = _run(["-m", "lesion_studio.cli.main", "import", str(tmp_path / "p"), str(damaged_dicom_dir)],
                  tmp_path)
    assert result.returncode == 0
    terminal = result.stdout + result.stderr
    assert "Traceback" not in terminal
    for name in ("RG2_JPLY.dcm", "RG3_JPLY.dcm"):
        lines = [line for line in terminal.splitlines()
                 if name in line and not line.startswith("import [")]  # not the progress bar
        assert len(lines) == 1 and "could not be decoded" in lines[0], lines
    assert "Traceback" in (tmp_path / "logs" / "lesion-studio.log").read_text()


def test_truncated_dicoms_are_called_truncated(tmp_path: Path) -> None:
    from lesion_studio.demo import generate_phantom
    from lesion_studio.demo.project import write_demo_dicom

    good = tmp_path / "good.dcm"
    write_demo_dicom(generate_phantom(1), good, 1, monochrome1=False)
    data = good.read_bytes()
    for cut in (500, 900, 1200, len(data) - 1):
        broken = tmp_path / f"cut{cut}.dcm"
        broken.write_bytes(data[:cut])
        with pytest.raises(RadiographError, match="truncated") as info:
            open_radiograph(broken)
        assert "no pixel data" not in str(info.value)


def test_score_split_is_validated(demo_project, capsys) -> None:  # noqa: ANN001
    from tests.stub_models import register_stub_classifier

    pytest.importorskip("onnx")
    register_stub_classifier(demo_project, "c")
    folder = str(demo_project.folder)
    with pytest.raises(SystemExit) as info:
        main(["score", folder, "--model", "c", "--split", "bogus"])
    assert info.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err
    demo_project.set_splits({r.id: "train" for r in demo_project.images()})
    assert main(["score", folder, "--model", "c", "--split", "test"]) == 2
    assert "no images in the 'test' split" in capsys.readouterr().err
    assert main(["score", folder, "--model", "c", "--synthetic-batch", "nope"]) == 2
    assert "no synthetic batch 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["info", "{tmp}/nothing"],
    ["import", "{tmp}/p", "{tmp}/missing-folder"],
    ["export", "{demo}", "{tmp}/out", "--format", "csv", "--unknown"],
    ["translate", "{demo}", "--model", "nope", "--image", "x", "--box", "1,2,3", "--out", "o.png"],
    ["export-samples", "{demo}", "{tmp}/s"],
    ["experiment", "{tmp}/missing.yaml"],
    ["split", "{demo}", "--fractions", "a,b,c"],
])
def test_bad_input_exits_2_not_70(argv: list[str], demo_project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    args = [a.format(tmp=tmp_path, demo=demo_project.folder) for a in argv]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
