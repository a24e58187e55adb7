"""Synthesis: the translator runtime (ONNX / torch), alpha blending, paste-back, provenance.

Everything here runs on numpy + onnxruntime alone; the torch backend of the translator imports
torch lazily, only when it is asked for (the ONNX export is :mod:`lesion_studio.models.unit_onnx`).
"""
