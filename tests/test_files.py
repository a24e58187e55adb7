"""The one file helper: atomic writes leave old or new content, never a half file or a temp file."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from lesion_studio.files import atomic_path, atomic_write, atomic_write_json, atomic_write_text, file_sha256


def test_atomic_write_creates_folders_and_replaces_content(tmp_path):
    target = tmp_path / "a" / "b" / "data.bin"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["data.bin"]


def test_text_and_json_round_trip(tmp_path):
    atomic_write_text(tmp_path / "t.txt", "grüße\n")
    atomic_write_json(tmp_path / "d.json", {"b": 1, "a": [1, 2]}, indent=1, sort_keys=True)
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "grüße\n"
    assert (tmp_path / "d.json").read_text() == json.dumps({"a": [1, 2], "b": 1}, indent=1)


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "cache.npy"
    np.save(target, np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        np.save(tmp, np.arange(5))
        assert tmp.exists() and tmp.parent == tmp_path
        raise RuntimeError("writer died half way")
    assert np.load(target).tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["cache.npy"]


def test_temp_name_keeps_the_suffix_that_numpy_needs(tmp_path):
    # np.save appends ".npy" to a name without it; the temp name must already end in it, or the
    # file numpy writes would not be the one moved into place.
    with atomic_path(tmp_path / "x.npy") as tmp:
        assert tmp.suffix == ".npy" and tmp.name.startswith(".")
        np.save(tmp, np.ones(2))
    assert np.load(tmp_path / "x.npy").tolist() == [1.0, 1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(tmp_path / "f")) != file_sha256(_write(tmp_path / "g", data + b"!"))


def _write(path, data):
    path.write_bytes(data)
    return path
