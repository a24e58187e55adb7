"""The mutation table (tools/mutation_check.py) must stay applicable: each mutation's text occurs
exactly once in its file, or a refactor has made that row silently check nothing."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_mutation_still_applies_to_the_source() -> None:
    from tools.mutation_check import MUTATIONS

    stale = {m.id: (m.file, (ROOT / m.file).read_text(encoding="utf-8").count(m.old)) for m in MUTATIONS
             if (ROOT / m.file).read_text(encoding="utf-8").count(m.old) != 1}
    assert not stale, f"mutations whose text no longer occurs once (file, count): {stale}"
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
