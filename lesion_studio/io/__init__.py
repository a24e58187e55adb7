"""Radiograph I/O: decode DICOM and raster files into :class:`Radiograph` objects."""

from lesion_studio.io.radiograph import Radiograph
from lesion_studio.io.reader import is_probably_dicom, open_radiograph, read_size

__all__ = ["Radiograph", "open_radiograph", "is_probably_dicom", "read_size"]
