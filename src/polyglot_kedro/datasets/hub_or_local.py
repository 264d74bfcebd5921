"""A read-only raw dataset: a local file, a URL (fsspec), or else a Hugging Face Hub dataset id.

The same catalog entry serves the offline demo (a local JSON lines file) and
paper scale (a Hub id, or the paper's own files at a pinned commit over
``https://``): ``source`` comes from ``conf/<env>/globals.yml``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from polyglot_kedro.contracts import SOURCE_ERROR, SOURCE_LINE

Format = Literal["auto", "jsonl", "json", "tsv", "squad"]
BadLinePolicy = Literal["error", "reject"]
_SUFFIX_FORMAT = {".jsonl": "jsonl", ".json": "json", ".tsv": "tsv"}


class HubOrLocalDataset(AbstractDataset[None, pd.DataFrame]):
    """Load ``source`` as a DataFrame: a local file if it exists, a URL, else a Hub dataset.

    Local formats: ``jsonl`` (one JSON object per line), ``json`` (an array of
    records; a file that is not an array is read as JSON lines), ``tsv``
    (tab-separated, no quoting; column names from ``load_args: {names: [...]}``),
    ``squad`` (SQuAD v1.1 JSON flattened to ``id, title, context, question,
    answers`` with ``answers`` a list of answer strings). ``auto`` picks by
    suffix (``.jsonl``/``.json``/``.tsv``). A source with a protocol
    (``https://...``, ``s3://...``, any fsspec URL) is read through fsspec
    and parsed like a local file of that format. For a Hub id,
    ``datasets.load_dataset(source, split=split, revision=revision, **load_args)``
    (e.g. ``load_args: {name: de}`` for a config).

    ``source`` may also map languages to sources, for data published one file
    (or one Hub config) per language: each is loaded as above and gets a
    ``lang`` column; where a source has no ``id`` column, rows are numbered
    per language (``00000``, ...), so parallel files share ids. A per-language
    value is a path/Hub id, or a dict overriding ``source``, ``format``,
    ``split``, ``revision`` and ``load_args`` for that language. ``rename``
    renames columns and ``value_map`` recodes values (e.g. XNLI's integer
    labels), after loading.

    Example catalog entries::

        guanaco_raw:
          type: polyglot_kedro.datasets.hub_or_local.HubOrLocalDataset
          source: ${globals:sources.guanaco}

        xnli_raw:   # globals: {de: facebook/xnli, ...} or {de: dev-de.tsv, ...}
          type: polyglot_kedro.datasets.hub_or_local.HubOrLocalDataset
          source: {de: {source: facebook/xnli, load_args: {name: de}, split: validation}}
          value_map: {label: {0: entailment, 1: neutral, 2: contradiction}}
    """

    def __init__(
        self,
        *,
        source: str | Mapping[str, Any],
        format: Format = "auto",
        split: str = "train",
        revision: str | None = None,
        load_args: dict[str, Any] | None = None,
        rename: dict[str, str] | None = None,
        value_map: dict[str, dict[Any, Any]] | None = None,
        on_bad_line: BadLinePolicy = "error",
        metadata: dict[str, Any] | None = None,
    ):
        """Create the dataset.

        Args:
            source: local file path, or a Hub dataset id, or a mapping
                language -> either (see the class docstring).
            format: local file format (``auto`` = by suffix).
            split: Hub split.
            revision: Hub revision (pin a commit sha for reproducibility).
            load_args: local: ``names`` (TSV columns); Hub: extra
                ``load_dataset`` keyword arguments.
            rename: column renames applied after loading (``{prompt: instruction}``).
            value_map: per-column value recoding applied after loading.
            on_bad_line: a JSON-lines line that is not UTF-8, not JSON or not
                a JSON object: ``error`` raises naming the file and line;
                ``reject`` keeps reading and gives that line a row whose
                ``source_error`` says what is wrong (every row then carries
                its ``source_line``), for the consumer's rejected table.
            metadata: free-form, ignored by Kedro.
        """
        if format not in ("auto", "jsonl", "json", "tsv", "squad"):
            raise DatasetError(f"HubOrLocalDataset: unknown format {format!r} (source {source})")
        self._source: str | dict[str, Any] = (
            {str(k): v for k, v in source.items()} if isinstance(source, Mapping) else str(source)
        )
        self._format = format
        self._split = split
        self._revision = revision
        self._load_args = dict(load_args or {})
        self._rename = dict(rename or {})
        self._value_map = {col: dict(m) for col, m in (value_map or {}).items()}
        if on_bad_line not in ("error", "reject"):
            raise DatasetError(f"HubOrLocalDataset: on_bad_line must be 'error' or 'reject', got {on_bad_line!r}")
        self._on_bad_line = on_bad_line
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "source": self._source,
            "format": self._format,
            "split": self._split,
            "revision": self._revision,
            "load_args": self._load_args,
            "rename": self._rename,
            "value_map": self._value_map,
        }

    def _specs(self) -> list[tuple[str | None, dict[str, Any]]]:
        """(language or None, resolved spec) for every source to read."""
        default = {"format": self._format, "split": self._split, "revision": self._revision,
                   "load_args": self._load_args, "on_bad_line": self._on_bad_line}  # fmt: skip
        if isinstance(self._source, str):
            return [(None, {**default, "source": self._source})]
        specs = []
        for lang, value in self._source.items():
            spec = {**default, **value} if isinstance(value, Mapping) else {**default, "source": value}
            if "source" not in spec:
                raise DatasetError(f"HubOrLocalDataset: language {lang!r} has no 'source'")
            unknown = set(spec) - {"source", "format", "split", "revision", "load_args", "on_bad_line"}
            if unknown:
                raise DatasetError(f"HubOrLocalDataset: language {lang!r}: unknown key(s) {sorted(unknown)}")
            specs.append((lang, {**spec, "source": str(spec["source"])}))
        return specs

    def load(self) -> pd.DataFrame:
        """Read the source(s).

        Raises:
            DatasetError: unreadable file (naming file and line), unknown
                format, or a Hub dataset that cannot be loaded.
        """
        frames: list[pd.DataFrame] = []
        seen: set[str] = set()
        for lang, spec in self._specs():
            path = Path(spec["source"])
            if _is_url(spec["source"]):
                frame = _load_url(spec)
            else:
                frame = _load_local(path, spec) if path.exists() else _load_hub(spec)
            if lang is not None:
                if "id" not in frame.columns:
                    frame.insert(0, "id", [f"{i:05d}" for i in range(len(frame))])
                if "lang" not in frame.columns:
                    frame.insert(1, "lang", lang)
            # Renamed per source, so files that name a column differently
            # (prompt / instruction) line up before they are stacked.
            frames.append(frame.rename(columns=self._rename))
            seen.update(frame.columns)
        missing = sorted(set(self._rename) - seen)
        if missing:
            raise DatasetError(f"HubOrLocalDataset ({self._source}): rename names missing column(s) {missing}")
        data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        for column, mapping in self._value_map.items():
            if column not in data.columns:
                raise DatasetError(f"HubOrLocalDataset ({self._source}): value_map names missing column {column!r}")
            unmapped = sorted({str(v) for v in data[column].unique()} - {str(k) for k in mapping})
            if unmapped:
                raise DatasetError(
                    f"HubOrLocalDataset ({self._source}): column {column!r} has values {unmapped} not in value_map"
                )
            by_text = {str(k): v for k, v in mapping.items()}
            data[column] = data[column].map(lambda v: by_text[str(v)])
        return data

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError(f"HubOrLocalDataset is read-only (source {self._source})")

    def _exists(self) -> bool:
        import fsspec

        def exists(source: str) -> bool:
            if _is_url(source):
                fs, path = fsspec.core.url_to_fs(source)
                return fs.exists(path)
            return Path(source).exists()

        return all(exists(spec["source"]) for _, spec in self._specs())


def _is_url(source: str) -> bool:
    """A source with an fsspec protocol (``https://``, ``s3://``, ``memory://``); not a Windows drive."""
    import fsspec

    protocol, _ = fsspec.core.split_protocol(source)
    return protocol not in (None, "file") and len(protocol) > 1


def _local_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    found = _SUFFIX_FORMAT.get(path.suffix.lower())
    if found is None:
        raise DatasetError(f"{path}: cannot infer format from suffix {path.suffix!r}; set format")
    return found


def _load_local(path: Path, spec: dict[str, Any]) -> pd.DataFrame:
    return _parse(str(path), _local_format(path, spec["format"]), path.read_bytes(), spec["load_args"],
                  spec["on_bad_line"])


def _load_url(spec: dict[str, Any]) -> pd.DataFrame:
    import fsspec

    url = spec["source"]
    fmt = _local_format(Path(url.split("?", 1)[0]), spec["format"])
    try:
        with fsspec.open(url, "rb") as fh:
            data = fh.read()
    except (OSError, ValueError, ImportError) as exc:
        raise DatasetError(f"{url}: cannot read ({type(exc).__name__}: {exc})") from exc
    return _parse(url, fmt, data, spec["load_args"], spec["on_bad_line"])


def _parse(name: str, fmt: str, data: bytes, load_args: dict[str, Any],
           on_bad_line: BadLinePolicy = "error") -> pd.DataFrame:
    """Parse a file's bytes; ``name`` (path or URL) is what error messages cite."""
    if fmt == "jsonl":
        return pd.DataFrame(_read_jsonl(name, data, on_bad_line))
    if fmt == "json":
        return _read_json(name, data)
    if fmt == "tsv":
        return _read_tsv(name, data, load_args)
    return _read_squad(name, data)


def _load_hub(spec: dict[str, Any]) -> pd.DataFrame:
    import datasets  # heavy import, only for Hub sources

    try:
        ds = datasets.load_dataset(spec["source"], split=spec["split"], revision=spec["revision"], **spec["load_args"])
    except (OSError, ValueError, ConnectionError) as exc:
        raise DatasetError(
            f"{spec['source']!r} is not a local file and could not be loaded from the Hub "
            f"(split={spec['split']!r}, revision={spec['revision']!r}): {exc}"
        ) from exc
    frame = ds.to_pandas()
    if spec["format"] == "squad" and "answers" in frame.columns:
        # Hub SQuAD-style rows hold {"text": [...], "answer_start": [...]}: keep the texts, as locally.
        frame["answers"] = [list(a["text"]) if isinstance(a, Mapping) else a for a in frame["answers"]]
    return frame


def _read_jsonl(name: str, data: bytes, on_bad_line: BadLinePolicy = "error") -> list[dict[str, Any]]:
    rows = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            row = _jsonl_row(name, lineno, raw)
        except DatasetError as exc:
            if on_bad_line == "error":
                raise
            rows.append({SOURCE_LINE: lineno, SOURCE_ERROR: str(exc)})
            continue
        if row is not None:
            rows.append({**row, SOURCE_LINE: lineno} if on_bad_line == "reject" else row)
    return rows


def _jsonl_row(name: str, lineno: int, raw: bytes) -> dict[str, Any] | None:
    """One JSON-lines line as an object (None for a blank line); DatasetError names the file and line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{name}, line {lineno}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
        ) from exc
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{name}, line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(row, dict):
        raise DatasetError(f"{name}, line {lineno}: expected a JSON object, got {type(row).__name__}")
    return row


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{name}, line {line}: not UTF-8 ({exc.reason})") from exc


def _read_json(name: str, data: bytes) -> pd.DataFrame:
    text = _decode(name, data)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        # Several "JSON" files in the wild (e.g. the paper's) are JSON lines.
        if exc.msg == "Extra data":
            return pd.DataFrame(_read_jsonl(name, data))
        raise DatasetError(f"{name}: invalid JSON at line {exc.lineno} ({exc.msg})") from exc
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
        raise DatasetError(f"{name}: expected a JSON array of objects")
    return pd.DataFrame(parsed)


def _read_tsv(name: str, data: bytes, load_args: dict[str, Any]) -> pd.DataFrame:
    import csv
    import io

    names = load_args.get("names")
    try:
        return pd.read_csv(
            io.BytesIO(data), sep="\t", header=None if names else 0, names=names, quoting=csv.QUOTE_NONE,
            dtype=str, keep_default_na=False,
        )
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{name}: cannot parse TSV: {exc}") from exc


def _read_squad(name: str, data: bytes) -> pd.DataFrame:
    try:
        parsed = json.loads(_decode(name, data))
        rows = [
            {
                "id": qa["id"],
                "title": article.get("title", ""),
                "context": para["context"],
                "question": qa["question"],
                "answers": [a["text"] for a in qa["answers"]],
            }
            for article in parsed["data"]
            for para in article["paragraphs"]
            for qa in para["qas"]
        ]
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{name}: invalid JSON at line {exc.lineno} ({exc.msg})") from exc
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{name}: not SQuAD v1.1 JSON (missing field {exc})") from exc
    return pd.DataFrame(rows, columns=["id", "title", "context", "question", "answers"])
