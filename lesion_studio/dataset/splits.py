"""Train/val/test assignment: stratified by (label, body part), seeded, grouped by a group key.

Grouping comes first: all images of one group (patient or study) move together, so no patient
spans two splits. Stratification then works on groups: within each stratum (the majority label and
body part of a group) groups are shuffled with the seed and each goes to the split that is
furthest below its target share of that stratum's images.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.project import Project
from lesion_studio.store.records import ImageRecord

SPLIT_NAMES = ("train", "val", "test")


def plan_splits(
    images: Sequence[ImageRecord],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
    group_by_key: bool = True,
) -> dict[int, str]:
    """Pure: map image id -> split name."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise LesionStudioError("Split fractions must be three non-negative numbers (train, val, test).")
    total = sum(fractions)
    shares = [f / total for f in fractions]

    groups: dict[str, list[ImageRecord]] = defaultdict(list)
    for rec in images:
        key = rec.group_key if (group_by_key and rec.group_key) else f"image:{rec.id}"
        groups[key].append(rec)

    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, members in groups.items():
        stratum = Counter((m.label, m.body_part) for m in members).most_common(1)[0][0]
        strata[stratum].append(key)

    rng = random.Random(seed)
    assignment: dict[int, str] = {}
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        rng.shuffle(keys)
        # Bigger groups first, so they do not overshoot a small split at the end.
        keys.sort(key=lambda k: -len(groups[k]))
        counts = [0, 0, 0]
        for key in keys:
            size = len(groups[key])
            filled = sum(counts) + size
            deficits = [shares[i] * filled - counts[i] for i in range(3)]
            choice = max(range(3), key=lambda i: (deficits[i], -i))
            counts[choice] += size
            for rec in groups[key]:
                assignment[rec.id] = SPLIT_NAMES[choice]
    return assignment


def assign_splits(
    project: Project,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
    group_by_key: bool = True,
    only_unassigned: bool = False,
) -> dict[str, int]:
    """Plan and store splits; returns the number of images per split."""
    images = project.images()
    if only_unassigned:
        images = [r for r in images if r.split == "unassigned"]
    assignment = plan_splits(images, fractions, seed=seed, group_by_key=group_by_key)
    project.set_splits(assignment)
    return dict(Counter(assignment.values()))
