"""Selecting lesion images by the types of their boxes, for a study on some lesion types only.

An experiment config's ``lesion_types: [lytic, mixed]`` keeps, as lesion examples, only the lesion
images with at least one box of those types; a lesion image whose boxes are all of other types
(or untyped) leaves the study, as neither a lesion nor a normal image. Normal images are kept.

The selection is a context (:func:`lesion_type_selection`) that :func:`classifier.data.split_records`
consults, so every split the runner reads (training, validation, test, synthesis sources) is
filtered the same way without threading one more argument through the trainers. The generators
are not filtered: a UNIT generator learns how lesions look from every box.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

_SELECTED: ContextVar[frozenset[str] | None] = ContextVar("lesion_types", default=None)


@contextlib.contextmanager
def lesion_type_selection(types: Iterable[str] | None) -> Iterator[None]:
    """Within the block, lesion images count only when a box has one of ``types`` (None: all)."""
    token = _SELECTED.set(frozenset(types) if types else None)
    try:
        yield
    finally:
        _SELECTED.reset(token)


def selected_types() -> frozenset[str] | None:
    return _SELECTED.get()


def select_by_lesion_type(project: Project, records: Sequence[Any], types: Iterable[str] | None = None) -> list[Any]:
    """``records`` without the lesion images that have no box of ``types`` (default: the active
    selection; no selection keeps everything)."""
    chosen = frozenset(types) if types is not None else _SELECTED.get()
    if not chosen:
        return list(records)
    typed = {b.image_id for b in project.boxes() if b.lesion_type in chosen}
    return [r for r in records if r.label != "lesion" or r.id in typed]
