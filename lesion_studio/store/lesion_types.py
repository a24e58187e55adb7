"""The project's own list of lesion types (fracture, lytic, sclerotic, mixed, other, ...).

The list lives in the project's settings, so every reader of a project sees the same types in
the same order (the order gives the GUI's type key its cycle and YOLO its class numbers). A type
a box carries is always listed, even when an older list or a hand-edited database lacks it, so
nothing typed is ever hidden. Imports add the types their files name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lesion_studio.errors import ProjectError
from lesion_studio.store.records import DEFAULT_LESION_TYPES

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

SETTING = "lesion_types"
_NAME = re.compile(r"^[a-z0-9][a-z0-9 _+.:-]{0,31}$")


def check_type(name: str) -> str:
    """A valid type name (lower case, stripped) or a :class:`ProjectError`."""
    value = str(name).strip().lower()
    if not _NAME.match(value):
        raise ProjectError(f"{name!r} is not a usable lesion type: use up to 32 letters, digits, spaces "
                           "and _ + . : - (starting with a letter or digit).")
    return value


def _stored(project: Project) -> list[str] | None:
    text = project.get_setting(SETTING)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


def types_in_use(project: Project) -> dict[str, int]:
    """Type -> number of boxes carrying it ("" counts the untyped boxes)."""
    rows = project._query("SELECT lesion_type, COUNT(*) FROM lesion_boxes GROUP BY lesion_type")
    return {str(r[0]): int(r[1]) for r in rows}


def lesion_types(project: Project) -> list[str]:
    """The project's types, in their order; types boxes carry but the list lacks come last."""
    listed = _stored(project) or list(DEFAULT_LESION_TYPES)
    extra = sorted(t for t in types_in_use(project) if t and t not in listed)
    return listed + extra


def set_lesion_types(project: Project, types: Iterable[str]) -> list[str]:
    """Replace the list (order kept, duplicates dropped). A type boxes still carry cannot go."""
    wanted: list[str] = []
    for t in types:
        name = check_type(t)
        if name not in wanted:
            wanted.append(name)
    if not wanted:
        raise ProjectError("A project needs at least one lesion type.")
    used = {t: n for t, n in types_in_use(project).items() if t and t not in wanted}
    if used:
        t, n = sorted(used.items())[0]
        raise ProjectError(f"{n} box(es) are typed {t!r}; retype them before removing the type.")
    project.set_setting(SETTING, json.dumps(wanted))
    return wanted


def add_lesion_types(project: Project, types: Iterable[str]) -> list[str]:
    """Append the types not listed yet (an import brings its own); returns those added. Types that
    boxes already carry count as new until listed (an import's boxes land before this call)."""
    current = _stored(project) or list(DEFAULT_LESION_TYPES)
    new = []
    for t in types:
        name = check_type(t)
        if name not in current and name not in new:
            new.append(name)
    if new:
        project.set_setting(SETTING, json.dumps(current + new))
    return new
