"""Typed outputs of the experiment's stages, and their plain-JSON form in the stage cache.

Each stage of :class:`~lesion_studio.experiment.runner.ExperimentRunner` returns one of these
dataclasses, so the runner reads attributes, not string keys. The
:class:`~lesion_studio.experiment.stages.StageCache` stores ``to_dict()`` and gives back
``from_dict()``. The dict forms are the dicts the runner stored before these types existed, key for
key: a stage's inputs include its upstream stages' outputs, so the same dicts keep the same inputs
hashes, and results folders made by earlier versions still resume from their cache. The same dicts
also go into ``results.json`` (the generator, the filter decision), which therefore does not change.

Torch-free and project-free: plain data only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar

T = TypeVar("T", bound="StageOutput")
R = TypeVar("R", bound="_PlainRecord")


class StageOutput(Protocol):
    """What :meth:`StageCache.run_as` stores: a value with a plain-JSON form."""

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T: ...


def _fields_dict(value: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The dataclass's fields in declaration order (lists copied, so the dict does not alias it)."""
    return {f.name: _copy(getattr(value, f.name)) for f in fields(value) if f.name not in skip}


def _copy(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_copy(x) for x in v]
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    return v


def _load(cls: type[Any], data: dict[str, Any]) -> Any:
    """Build ``cls`` from the keys it declares; a missing required key raises ``TypeError``."""
    return cls(**{f.name: _copy(data[f.name]) for f in fields(cls) if f.name in data})


class _PlainRecord:
    """The plain-JSON form most outputs have: every field in declaration order, and back.
    Subclasses (dataclasses) override where their dict form differs (skipped keys, JSON's text keys)."""

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self)

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        return _load(cls, data)


@dataclass(frozen=True)
class BaselineRun(_PlainRecord):
    """One training seed's baseline classifier, with its scores on the project's validation images
    (None when the body parts have no validation set with both classes): the filter and the
    selection are decided on them without loading the model again."""

    path: str
    sha256: str
    val_auc: float | None
    seed: int
    epoch: int
    model_id: int
    model_name: str
    val_scores: list[float] | None = None
    val_labels: list[int] | None = None

    @property
    def trained(self) -> bool:
        return True


@dataclass(frozen=True)
class GeneratorInfo:
    """Which generator makes a body-part group's candidates.

    ``kind`` "unit": a registered UNIT model (``trained`` says whether this run trained it).
    ``kind`` "stub": the stub painter, whose settings (version, strength) are kept in ``settings``.
    """

    kind: str
    model_id: int | None = None
    model_name: str | None = None
    sha256: str | None = None
    trained: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    _UNIT_KEYS: ClassVar[tuple[str, ...]] = ("model_id", "model_name", "sha256", "trained")

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "unit":
            return {"kind": self.kind, **{k: getattr(self, k) for k in self._UNIT_KEYS}}
        return {"kind": self.kind, **_copy(self.settings)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorInfo:
        if data["kind"] == "unit":
            return cls(kind="unit", **{k: data[k] for k in cls._UNIT_KEYS})
        return cls(kind=data["kind"], settings={k: _copy(v) for k, v in data.items() if k != "kind"})


@dataclass(frozen=True)
class CandidateBatch(_PlainRecord):
    """The synthetic candidates made for a study: the project's batch name and the sample ids."""

    batch: str
    sample_ids: list[int]


@dataclass(frozen=True)
class ScoredCandidates(_PlainRecord):
    """The filter's score of every candidate (the mean over the seeds' baselines), by sample id.

    JSON keys are text, so the dict form keys ``scores`` by ``str(id)``; the order of the scores
    is kept both ways (``results.json`` lists them as they come).
    """

    scores: dict[int, float]
    seed_scores: list[list[float]]
    filter_model: str | None
    filter_models: list[str | None]
    filter_sha256: str
    backend: str

    def to_dict(self) -> dict[str, Any]:
        return {**_fields_dict(self), "scores": {str(k): v for k, v in self.scores.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoredCandidates:
        return _load(cls, {**data, "scores": {int(k): float(v) for k, v in data["scores"].items()}})

    @property
    def json_scores(self) -> dict[str, float]:
        """The scores as ``results.json`` keeps them (by ``str(id)``)."""
        return self.to_dict()["scores"]


@dataclass(frozen=True)
class FilterDecision(_PlainRecord):
    """Whether the seeds' mean baseline may filter, and the score cut each configured t means."""

    refused: bool
    val_auc: float | None
    cuts: dict[float, float]
    reason: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FilterDecision:
        return _load(cls, {**data, "cuts": {float(k): float(v) for k, v in data["cuts"].items()}})


@dataclass(frozen=True)
class AugmentedRun(_PlainRecord):
    """One training seed's augmented classifier at threshold t (score cut ``cut``).

    ``skipped`` when no candidate passed the cut: nothing was trained and the model fields are None
    (and absent from the dict form, as before).
    """

    t: float
    cut: float
    seed: int
    kept: int
    kept_ids: list[int]
    val_auc: float | None
    skipped: bool
    path: str | None = None
    sha256: str | None = None
    model_id: int | None = None
    model_name: str | None = None
    val_scores: list[float] | None = None
    val_labels: list[int] | None = None

    _MODEL_KEYS: ClassVar[tuple[str, ...]] = ("path", "sha256", "model_id", "model_name", "val_scores",
                                               "val_labels")

    @property
    def trained(self) -> bool:
        return self.path is not None

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self, skip=self._MODEL_KEYS if self.skipped else ())


@dataclass(frozen=True)
class ArmRun(_PlainRecord):
    """One training seed's classifier of an augmentation arm (``experiment/arms.py``) at a ratio
    and threshold: ``added`` lesion images (``sample_ids``: synthetic or copy-paste samples;
    ``repeat_ids``: real training images repeated), or ``skipped`` when there was nothing to add."""

    arm: str
    ratio: float
    t: float
    cut: float
    seed: int
    added: int
    sample_ids: list[int]
    repeat_ids: list[int]
    val_auc: float | None
    skipped: bool
    path: str | None = None
    sha256: str | None = None
    model_id: int | None = None
    model_name: str | None = None
    val_scores: list[float] | None = None
    val_labels: list[int] | None = None

    @property
    def trained(self) -> bool:
        return self.path is not None

    @property
    def kept(self) -> int:
        return self.added


@dataclass(frozen=True)
class Selection(_PlainRecord):
    """The choice among {baseline, each t} on validation (see ``SelectionSpec``): the per-t
    comparison rows (``t``, ``kept`` and ``val_delta`` or a ``note``), the best t, and whether it
    is accepted."""

    compared: list[dict[str, Any]]
    #: The best threshold t, or with augmentation arms the best trial (``arm|ratio|t``).
    best_t: float | str | None
    accepted: bool
    reason: str

    def compared_at(self, t: float) -> dict[str, Any]:
        return next((c for c in self.compared if c["t"] == t and "arm" not in c), {})

    def compared_at_trial(self, trial: str) -> dict[str, Any]:
        """The comparison row of an arms trial (``arm|ratio|t``)."""
        return next((c for c in self.compared if c.get("trial") == trial), {})


@dataclass(frozen=True)
class ModelRow(_PlainRecord):
    """One row of the results table: a model type of a study, trained once per seed.

    ``seeds``, ``paths``, ``sha256`` and ``model_name`` list the trained seeds' models (empty when
    nothing was trained, e.g. a refused filter); ``val_auc`` is their mean.
    """

    id: str
    target: str
    parts: list[str]
    type: str
    status: str
    transfer_from: str | None
    selection_reason: str | None
    t: float | None
    cut: float | None
    augmented_samples: int
    seeds: list[int]
    paths: list[str]
    sha256: list[str]
    model_name: list[str | None]
    val_auc: float | None
    #: Row ids this row is also compared with (an arm against the controls of its ratio).
    controls: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self, skip=() if self.controls else ("controls",))


@dataclass(frozen=True)
class Evaluation(_PlainRecord):
    """The evaluate stage: the test set's name and one report entry per row and test line."""

    test_set: str
    evaluations: list[dict[str, Any]]
