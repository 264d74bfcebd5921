"""A read-only raw dataset: a local file, or else a Hugging Face Hub dataset id.

The same catalog entry serves the offline demo (a local JSON lines file) and
paper scale (a Hub id): ``source`` comes from ``conf/<env>/globals.yml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

Format = Literal["auto", "jsonl", "json", "tsv", "squad"]
_SUFFIX_FORMAT = {".jsonl": "jsonl", ".json": "json", ".tsv": "tsv"}


class HubOrLocalDataset(AbstractDataset[None, pd.DataFrame]):
    """Load ``source`` as a DataFrame: a local file if it exists, else a Hub dataset.

    Local formats: ``jsonl`` (one JSON object per line), ``json`` (an array of
    records; a file that is not an array is read as JSON lines), ``tsv``
    (tab-separated, no quoting; column names from ``load_args: {names: [...]}``),
    ``squad`` (SQuAD v1.1 JSON flattened to ``id, title, context, question,
    answers`` with ``answers`` a list of answer strings). ``auto`` picks by
    suffix (``.jsonl``/``.json``/``.tsv``). For a Hub id,
    ``datasets.load_dataset(source, split=split, revision=revision, **load_args)``
    (e.g. ``load_args: {name: de}`` for a config).

    Example catalog entry::

        guanaco_raw:
          type: polyglot_kedro.datasets.hub_or_local.HubOrLocalDataset
          source: ${globals:sources.guanaco}
    """

    def __init__(
        self,
        *,
        source: str,
        format: Format = "auto",
        split: str = "train",
        revision: str | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        """Create the dataset.

        Args:
            source: local file path, or a Hub dataset id.
            format: local file format (``auto`` = by suffix).
            split: Hub split.
            revision: Hub revision (pin a commit sha for reproducibility).
            load_args: local: ``names`` (TSV columns); Hub: extra
                ``load_dataset`` keyword arguments.
            metadata: free-form, ignored by Kedro.
        """
        if format not in ("auto", "jsonl", "json", "tsv", "squad"):
            raise DatasetError(f"HubOrLocalDataset: unknown format {format!r} (source {source})")
        self._source = str(source)
        self._format = format
        self._split = split
        self._revision = revision
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "source": self._source,
            "format": self._format,
            "split": self._split,
            "revision": self._revision,
            "load_args": self._load_args,
        }

    def _is_local(self) -> bool:
        return Path(self._source).exists()

    def load(self) -> pd.DataFrame:
        """Read the source.

        Raises:
            DatasetError: unreadable file (naming file and line), unknown
                format, or a Hub dataset that cannot be loaded.
        """
        if self._is_local():
            return self._load_local(Path(self._source))
        return self._load_hub()

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError(f"HubOrLocalDataset is read-only (source {self._source})")

    def _exists(self) -> bool:
        return self._is_local()

    def _local_format(self, path: Path) -> str:
        if self._format != "auto":
            return self._format
        fmt = _SUFFIX_FORMAT.get(path.suffix.lower())
        if fmt is None:
            raise DatasetError(f"{path}: cannot infer format from suffix {path.suffix!r}; set format")
        return fmt

    def _load_local(self, path: Path) -> pd.DataFrame:
        fmt = self._local_format(path)
        if fmt == "jsonl":
            return pd.DataFrame(_read_jsonl(path))
        if fmt == "json":
            return _read_json(path)
        if fmt == "tsv":
            return _read_tsv(path, self._load_args)
        return _read_squad(path)

    def _load_hub(self) -> pd.DataFrame:
        import datasets  # heavy import, only for Hub sources

        try:
            ds = datasets.load_dataset(self._source, split=self._split, revision=self._revision, **self._load_args)
        except (OSError, ValueError, ConnectionError) as exc:
            raise DatasetError(
                f"{self._source!r} is not a local file and could not be loaded from the Hub "
                f"(split={self._split!r}, revision={self._revision!r}): {exc}"
            ) from exc
        return ds.to_pandas()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(
                    f"{path}, line {lineno}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
                ) from exc
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}, line {lineno}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}, line {lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def _read_json(path: Path) -> pd.DataFrame:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}, line {line}: not UTF-8 ({exc.reason})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # Several "JSON" files in the wild (e.g. the paper's) are JSON lines.
        if exc.msg == "Extra data":
            return pd.DataFrame(_read_jsonl(path))
        raise DatasetError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DatasetError(f"{path}: expected a JSON array of objects")
    return pd.DataFrame(data)


def _read_tsv(path: Path, load_args: dict[str, Any]) -> pd.DataFrame:
    import csv

    names = load_args.get("names")
    try:
        return pd.read_csv(
            path, sep="\t", header=None if names else 0, names=names, quoting=csv.QUOTE_NONE,
            dtype=str, keep_default_na=False,
        )
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path}: cannot parse TSV: {exc}") from exc


def _read_squad(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [
            {
                "id": qa["id"],
                "title": article.get("title", ""),
                "context": para["context"],
                "question": qa["question"],
                "answers": [a["text"] for a in qa["answers"]],
            }
            for article in data["data"]
            for para in article["paragraphs"]
            for qa in para["qas"]
        ]
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from exc
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not SQuAD v1.1 JSON (missing field {exc})") from exc
    return pd.DataFrame(rows, columns=["id", "title", "context", "question", "answers"])
