"""Synthetic samples: saving them with provenance, reading them back, exporting PNG/DICOM."""

from lesion_studio.samples.export import export_sample_dicom, export_sample_png
from lesion_studio.samples.storage import load_sample_pixels, save_synthetic_sample

__all__ = ["save_synthetic_sample", "load_sample_pixels", "export_sample_png", "export_sample_dicom"]
