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
