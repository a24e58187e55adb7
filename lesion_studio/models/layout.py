"""The files of a trained model inside a project: folders, names and formats (no torch).

Trainers write these files and everything else finds them here (the translator runtime, the
scorer, the GUI's training panel, the CLI), so a name is spelled once::

    <project>/models/<name>/                  a UNIT translator
        model.safetensors + model.json        generator weights + metadata (arch, resolution, hashes)
        checkpoint.safetensors + .json        everything to resume (both networks, optimizers...)
        config.yaml                           the training config, re-usable with ``--config``
        history.json                          losses per iteration
        quality_history.json                  the generator quality report at each checkpoint
        model.onnx, model-l2h.onnx            the exported translator, one file per direction (h2l, l2h)
        samples/iter_NNNNNNN.png              translated samples during training

    <project>/models/classifiers/<name>/      a DRN classifier
        model.safetensors + model.json        the selected weights (best validation AUC, or last)
        last.safetensors + last.json          the latest epoch with its optimizer (what resume reads)
        model.onnx + model.onnx.json          the exported scorer and its preprocessing settings

Every ``.safetensors`` file has a JSON sidecar of the same stem (:func:`sidecar_path`), and the
ONNX export of weights sits beside them with the ``.onnx`` suffix (:func:`onnx_path`).
"""

from __future__ import annotations

from pathlib import Path

MODELS = "models"
CLASSIFIERS = "classifiers"

WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
LAST = "last.safetensors"
CONFIG = "config.yaml"
HISTORY = "history.json"
QUALITY_HISTORY = "quality_history.json"
ONNX = "model.onnx"
#: A UNIT model's second direction (l2h); ``model.onnx`` holds h2l (see models/unit_onnx.py).
ONNX_L2H = "model-l2h.onnx"
#: The residual graph G_l(E_h(x)) − G_h(E_h(x)) that ``translation: residual`` synthesis runs.
ONNX_RESIDUAL = "model-h2l-residual.onnx"
SAMPLES = "samples"

#: The ``format`` value in the metadata of a model's weights, checked when they are loaded.
UNIT_FORMAT = "lesion-studio-unit-1"
DRN_FORMAT = "lesion-studio-drn-1"


def unit_dir(project_folder: str | Path, name: str) -> Path:
    """The folder of the UNIT model ``name``."""
    return Path(project_folder) / MODELS / name


def classifier_dir(project_folder: str | Path, name: str) -> Path:
    """The folder of the classifier ``name``."""
    return Path(project_folder) / MODELS / CLASSIFIERS / name


def sidecar_path(weights: str | Path) -> Path:
    """The JSON metadata next to a weights file (``model.safetensors`` → ``model.json``)."""
    return Path(weights).with_suffix(".json")


def onnx_path(weights: str | Path) -> Path:
    """The ONNX export of a weights file (``model.safetensors`` → ``model.onnx``)."""
    return Path(weights).with_suffix(".onnx")


def onnx_sidecar_path(onnx: str | Path) -> Path:
    """The JSON settings next to an exported classifier (``model.onnx`` → ``model.onnx.json``)."""
    return Path(f"{onnx}.json")
