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

from lesion_studio.errors import ConfigError

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


#: The longest model, run or experiment name (characters; it is also a folder name).
MAX_NAME_LENGTH = 100
_FORBIDDEN = set('/\\:*?"<>|')


def check_name(name: str, what: str = "model name") -> str:
    """``name`` when it can be a folder name of its own, else a ConfigError saying why.

    A name becomes a folder under ``models/`` (or a results folder), so it may not hold a path
    separator or a character Windows forbids, may not be ``..`` or start with a dot (hidden,
    or a way up), may not hold control characters, and is at most :data:`MAX_NAME_LENGTH`
    characters. A check, not a repair: a changed name would silently write somewhere else.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"The {what} is empty; give a name such as unit-hand-fast.")
    problem = ""
    if len(name) > MAX_NAME_LENGTH or len(name.encode("utf-8", "surrogateescape")) > 2 * MAX_NAME_LENGTH:
        problem = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif name != name.strip():
        problem = "it starts or ends with a space"
    elif any(c in _FORBIDDEN for c in name):
        problem = f"it holds {next(c for c in name if c in _FORBIDDEN)!r} (no / \\ : * ? \" < > |)"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "it holds a control character"
    elif name.startswith(".") or ".." in name:
        problem = "it starts with a dot or holds '..'"
    if problem:
        raise ConfigError(f"The {what} {name!r} cannot be used: {problem}. Use letters, digits, '-', '_', '+' "
                          "and '.' (a name becomes a folder).")
    return name


def inside(folder: str | Path, name: str, what: str = "model name") -> Path:
    """``folder / name`` after :func:`check_name`, checked to stay inside ``folder`` once resolved
    (a symbolic link in the way must not lead out either)."""
    check_name(name, what)
    base = Path(folder)
    path = base / name
    resolved_base = base.resolve()
    if not path.resolve().is_relative_to(resolved_base) or path.resolve() == resolved_base:
        raise ConfigError(f"The {what} {name!r} leads outside {base} (a link there points elsewhere); "
                          "choose another name.")
    return path


def unit_dir(project_folder: str | Path, name: str) -> Path:
    """The folder of the UNIT model ``name`` (a ConfigError for a name that is not a plain folder name)."""
    if name == CLASSIFIERS:
        raise ConfigError(f"The model name {name!r} is reserved for the classifiers' folder; choose another.")
    return inside(Path(project_folder) / MODELS, name)


def classifier_dir(project_folder: str | Path, name: str) -> Path:
    """The folder of the classifier ``name`` (a ConfigError for a name that is not a plain folder name)."""
    return inside(Path(project_folder) / MODELS / CLASSIFIERS, name)


def sidecar_path(weights: str | Path) -> Path:
    """The JSON metadata next to a weights file (``model.safetensors`` → ``model.json``)."""
    return Path(weights).with_suffix(".json")


def onnx_path(weights: str | Path) -> Path:
    """The ONNX export of a weights file (``model.safetensors`` → ``model.onnx``)."""
    return Path(weights).with_suffix(".onnx")


def onnx_sidecar_path(onnx: str | Path) -> Path:
    """The JSON settings next to an exported classifier (``model.onnx`` → ``model.onnx.json``)."""
    return Path(f"{onnx}.json")
