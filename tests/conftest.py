"""Shared test configuration: headless Qt, an isolated app home, the demo project, shared data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Qt must be headless before anything imports it; pytest-qt reads qt_api from pyproject.toml.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# Under pytest-xdist the workers share the cores: one torch/OpenMP thread each, or every worker's
# thread pool spins against the others' (set before anything imports torch).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if os.environ.get("LESION_STUDIO_SHARED"):
    SHARED = Path(os.environ["LESION_STUDIO_SHARED"])


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Logs, settings and the default demo folder go to a temporary home, not the user's."""
    home = tmp_path_factory.mktemp("home")
    os.environ["LESION_STUDIO_HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")


@pytest.fixture(autouse=True)
def _torch_threads_unchanged():
    """The GUI's training job lowers torch's thread count for the whole process (to leave the GUI a
    core). Restore it after each test, so later tests train with the same numerics whatever ran
    before them."""
    import sys

    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads or os.cpu_count() or 1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared/data is not available ({SHARED}); skipping tests on real radiographs")
    return SHARED


@pytest.fixture(scope="session")
def dicom_dir(shared_data: Path) -> Path:
    path = shared_data / "dicom"
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def damaged_dicom_dir(dicom_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RG2_JPLY.dcm and RG3_JPLY.dcm with their Huffman table damaged too: undecodable files.

    The WG-04 originals decode since their malformed scan header is repaired (io/jpeg_lossy.py);
    these copies keep that defect and add one no decoder survives, for the error-path tests.
    """
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    folder = tmp_path_factory.mktemp("damaged-dicom")
    for name in ("RG2_JPLY.dcm", "RG3_JPLY.dcm"):
        ds = pydicom.dcmread(dicom_dir / name)
        stream = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
        stream[stream.index(b"\xff\xc4") + 4] = 0x55  # a Huffman table of class 5: no such class
        ds.PixelData = encapsulate([bytes(stream)])
        ds.save_as(folder / name)
    return folder


@pytest.fixture(scope="session")
def xray_dir(shared_data: Path) -> Path:
    path = shared_data / "xray"
    if not (path / "labels.csv").is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def demo_project_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, built once per test session. Do not modify: use ``demo_project``."""
    from lesion_studio.demo import build_demo_project

    folder = tmp_path_factory.mktemp("demo-master") / "demo"
    build_demo_project(folder).close()
    return folder


@pytest.fixture
def demo_project(demo_project_master: Path, tmp_path: Path):
    """A private, writable copy of the demo project, opened."""
    from lesion_studio.store import Project

    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    project = Project.open(folder)
    yield project
    project.close()
