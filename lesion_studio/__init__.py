"""Lesion Studio: curate bone-lesion boxes, synthesize lesions, train and evaluate classifiers.

The package is a headless core (this package) plus a thin Qt layer in :mod:`lesion_studio.gui`.
The core never imports Qt, and imports torch only inside training and export code.
"""

__version__ = "0.1.0"
