"""ONNX Runtime provider choice: CUDA only when onnxruntime has the CUDA provider and a GPU is there."""

from __future__ import annotations

import pytest

ort = pytest.importorskip("onnxruntime")

from lesion_studio import onnx_runtime  # noqa: E402


@pytest.mark.parametrize(
    ("available", "gpu", "prefer", "expected"),
    [
        (["CUDAExecutionProvider", "CPUExecutionProvider"], True, True, ["CUDAExecutionProvider", "CPUExecutionProvider"]),
        # onnxruntime-gpu on a machine without a GPU lists CUDA anyway: not offered
        (["CUDAExecutionProvider", "CPUExecutionProvider"], False, True, ["CPUExecutionProvider"]),
        # the CPU-only onnxruntime package on a GPU machine: not offered either
        (["CPUExecutionProvider"], True, True, ["CPUExecutionProvider"]),
        # the caller asked for the CPU
        (["CUDAExecutionProvider", "CPUExecutionProvider"], True, False, ["CPUExecutionProvider"]),
    ],
)
def test_session_providers(monkeypatch, available, gpu, prefer, expected) -> None:
    probes = []

    def present() -> bool:
        probes.append(1)
        return gpu

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(available))
    monkeypatch.setattr(onnx_runtime, "cuda_device_present", present)
    assert onnx_runtime.session_providers(prefer) == expected
    if "CUDAExecutionProvider" not in available or not prefer:
        assert not probes  # the driver is never probed when CUDA could not be used anyway


def test_make_session_passes_the_choice_and_survives_a_cuda_failure(monkeypatch) -> None:
    calls = []

    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None) -> None:
            calls.append(list(providers))
            if "CUDAExecutionProvider" in providers and len(calls) == 1:
                raise RuntimeError("libcudnn.so.9: cannot open shared object file")
            self._providers = list(providers)

        def get_providers(self):
            return self._providers

    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnx_runtime, "cuda_device_present", lambda: True)
    session = onnx_runtime.make_session("model.onnx")
    assert calls == [["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]]
    assert session.get_providers() == ["CPUExecutionProvider"]

    calls.clear()
    monkeypatch.setattr(onnx_runtime, "cuda_device_present", lambda: False)
    onnx_runtime.make_session("model.onnx")
    assert calls == [["CPUExecutionProvider"]]


def test_cuda_device_present_honours_the_cpu_override(monkeypatch) -> None:
    onnx_runtime.cuda_device_present.cache_clear()
    monkeypatch.setenv("LESION_STUDIO_ORT_DEVICE", "cpu")
    try:
        assert onnx_runtime.cuda_device_present() is False
    finally:
        onnx_runtime.cuda_device_present.cache_clear()


def test_sessions_spin_except_in_the_gui_process(monkeypatch) -> None:
    """Spinning intra-op threads pay for latency between the translator's small ops; the GUI's
    ``create_app`` turns them off for its process so idle threads sleep between previews."""
    seen = []

    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None) -> None:
            seen.append(sess_options.get_session_config_entry("session.intra_op.allow_spinning"))

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(onnx_runtime, "_SPINNING", {"on": True})
    onnx_runtime.make_session("model.onnx", prefer_cuda=False)
    onnx_runtime.make_session("model.onnx", prefer_cuda=False, spin=False)
    pytest.importorskip("PySide6")
    from lesion_studio.gui.application import create_app

    create_app()
    assert onnx_runtime.spinning() is False
    onnx_runtime.make_session("model.onnx", prefer_cuda=False)
    onnx_runtime.make_session("model.onnx", prefer_cuda=False, spin=True)
    assert seen == ["1", "0", "0", "1"]
