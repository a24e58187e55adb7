"""An experiment's ``lesion_types``: lesion images count only with a box of a chosen type."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesion_studio.classifier.data import split_records
from lesion_studio.config import from_dict
from lesion_studio.dataset.type_selection import lesion_type_selection, select_by_lesion_type
from lesion_studio.errors import ConfigError
from lesion_studio.experiment.config import ExperimentConfig
from lesion_studio.store import Box, Project


def test_split_records_follow_the_selection(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        def image(name: str, label: str, *types: str) -> int:
            image_id = project.add_image(project.folder / name, sha256=name.ljust(64, "0"), width=50, height=50,
                                         label=label, split="train")
            for k, t in enumerate(types):
                project.add_box(image_id, Box(k, k, k + 5, k + 5), lesion_type=t)
            return image_id

        lytic = image("a", "lesion", "lytic", "fracture")
        fracture = image("b", "lesion", "fracture")
        untyped = image("c", "lesion", "")
        normal = image("d", "normal")
        everything = {r.id for r in split_records(project, "train")}
        assert everything == {lytic, fracture, untyped, normal}
        with lesion_type_selection(["lytic", "mixed"]):
            assert {r.id for r in split_records(project, "train")} == {lytic, normal}
        assert {r.id for r in split_records(project, "train")} == everything  # the selection ended
        with lesion_type_selection(None):
            assert {r.id for r in split_records(project, "train")} == everything
        assert [r.id for r in select_by_lesion_type(project, project.images(), ["fracture"])] == [lytic, fracture,
                                                                                                   normal]


def _config(**extra) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {"name": "t", "project": "demo", "studies": [{"body_parts": ["femur"]}],
                                        "classifier": {"preset": "tiny"}, **extra})


def test_config_option_is_checked() -> None:
    assert _config().lesion_types is None
    assert _config(lesion_types=["Lytic", "mixed"]).lesion_types == ["lytic", "mixed"]
    with pytest.raises(ConfigError, match="lesion_types"):
        _config(lesion_types=["no;way"])
    with pytest.raises(ConfigError, match="at least one"):
        _config(lesion_types=[])
