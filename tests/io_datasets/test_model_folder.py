"""ModelFolderDataset: save copies a folder in atomically, load returns its path."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DatasetError
from kedro.io.core import Version

from polyglot_kedro.datasets.model_folder import ModelFolderDataset


def _make_folder(root: Path, content: str) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text(content)
    (root / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 10)
    return root


def test_round_trip_replaces(tmp_path):
    ds = ModelFolderDataset(path=str(tmp_path / "out" / "model"))
    assert not ds.exists()
    ds.save(_make_folder(tmp_path / "a", "A"))
    loaded = Path(ds.load())
    assert loaded == tmp_path / "out" / "model"
    assert (loaded / "config.json").read_text() == "A" and (loaded / "sub" / "weights.bin").stat().st_size == 20
    ds.save(str(_make_folder(tmp_path / "b", "B")))
    assert (Path(ds.load()) / "config.json").read_text() == "B"
    assert (tmp_path / "a").is_dir()  # copy, not move
    # No temp/old siblings left behind.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model"]
    assert ds.exists()


def test_versioned_round_trip(tmp_path):
    path = str(tmp_path / "adapters" / "mono")
    v1 = ModelFolderDataset(path=path, version=Version(None, "2024-01-01T00.00.00.000Z"))
    v1.save(_make_folder(tmp_path / "a", "A"))
    v2 = ModelFolderDataset(path=path, version=Version(None, "2024-01-02T00.00.00.000Z"))
    v2.save(_make_folder(tmp_path / "b", "B"))
    latest = ModelFolderDataset(path=path, version=Version(None, None))
    assert Path(latest.load()) == tmp_path / "adapters" / "mono" / "2024-01-02T00.00.00.000Z" / "mono"
    assert (Path(latest.load()) / "config.json").read_text() == "B"
    pinned = ModelFolderDataset(path=path, version=Version("2024-01-01T00.00.00.000Z", None))
    assert (Path(pinned.load()) / "config.json").read_text() == "A"
    assert "version" in str(latest)


def test_move_and_symlinks(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"x" * 100)
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.safetensors").symlink_to(target)
    ds = ModelFolderDataset(path=str(tmp_path / "merged"), move=True)
    ds.save(src)
    assert not src.exists()
    saved = Path(ds.load()) / "model.safetensors"
    assert saved.is_symlink() and saved.resolve() == target


def test_errors(tmp_path):
    ds = ModelFolderDataset(path=str(tmp_path / "x"))
    with pytest.raises(DatasetError, match="existing folder"):
        ds.save(tmp_path / "missing")
    with pytest.raises(DatasetError):
        ds.load()
    versioned = ModelFolderDataset(path=str(tmp_path / "y"), version=Version(None, None))
    assert not versioned.exists()
