"""A model, tokenizer or adapter folder as a (versioned) Kedro dataset.

Nodes that train or convert models write their output into a work folder and
return its path; ``save`` copies that tree into the catalog location.
``load`` returns the folder path as a string: the consumer loads the model
lazily (and on the device it wants), so no model object ever travels through
Kedro's memory datasets.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version


class ModelFolderDataset(AbstractVersionedDataset[str | os.PathLike, str]):
    """A folder on the local file system, copied in on save, returned as a path on load.

    Example catalog entry::

        "{mix}.adapter":
          type: polyglot_kedro.datasets.model_folder.ModelFolderDataset
          path: data/06_models/adapters/{mix}
          versioned: true

    With ``versioned: true`` each save goes to ``<path>/<version>/<name>``
    (Kedro's layout, ``<name>`` being the last component of ``path``).
    """

    def __init__(
        self,
        *,
        path: str,
        move: bool = False,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        """Create the dataset.

        Args:
            path: target folder (local path; ``file://`` accepted).
            move: move the saved folder instead of copying it (for large
                folders a node wrote to a scratch location).
            version: Kedro version (set by the catalog when ``versioned: true``).
            metadata: free-form metadata, ignored by Kedro.
        """
        path = path.removeprefix("file://")
        self._move = move
        self._path = PurePosixPath(Path(path).as_posix())
        self.metadata = metadata
        super().__init__(
            filepath=self._path,
            version=version,
            exists_function=lambda p: Path(p).is_dir(),
            glob_function=_glob_dirs,
        )

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "move": self._move, "version": self._version}

    def load(self) -> str:
        """Return the (resolved-version) folder path.

        Raises:
            DatasetError: the folder does not exist.
        """
        path = Path(str(self._get_load_path()))
        if not path.is_dir():
            raise DatasetError(f"Model folder {path} does not exist (dataset {self._path})")
        return str(path)

    def save(self, data: str | os.PathLike) -> None:
        """Copy the folder ``data`` into the target, atomically.

        The tree is copied into a hidden sibling folder first and renamed into
        place, so a crash mid-copy never leaves a half-written model where a
        reader would find it. An existing non-versioned target is replaced.
        Symlinks are kept as links (a prepared Hub model links into the Hub
        cache rather than duplicating its weights).

        Args:
            data: path of the folder to store.

        Raises:
            DatasetError: ``data`` is not an existing folder.
        """
        src = Path(data)
        if not src.is_dir():
            raise DatasetError(f"ModelFolderDataset({self._path}).save expects an existing folder path, got {data!r}")
        dst = Path(str(self._get_save_path()))
        if src.resolve() == dst.resolve():
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".{dst.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            if self._move:
                shutil.move(str(src), str(tmp))
            else:
                shutil.copytree(src, tmp, symlinks=True)
            if dst.exists():
                old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
                dst.rename(old)
                tmp.rename(dst)
                shutil.rmtree(old)
            else:
                tmp.rename(dst)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:
            return False
        return Path(str(path)).is_dir()


def _glob_dirs(pattern: str) -> list[str]:
    # Kedro resolves the latest load version by globbing `<path>/*/<name>`.
    import glob

    return [p for p in glob.glob(pattern) if Path(p).is_dir()]
