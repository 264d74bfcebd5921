"""The paper's released per-item results, imported as model ``paper`` beside ours.

Kew et al. released their chat outputs and judgments in
ZurichNLP/multilingual-instruction-tuning as JSON-lines files, one per
(model, mix, prompt language, seed):

* generations: ``data/alpaca_eval_outputs/<model>_<tag>_merged/alpaca_eval_instructions_<lang>-...-s<seed>-....jsonl``,
  rows ``{prompt, system, finish_reason, source, secs, source_lang, system_lang}``
  (OpenLID labels such as ``deu_Latn``);
* Likert judgments: ``data/llm_evals/likert/<judge>/<model>_<tag>_merged/alpaca_eval_instructions_<lang>-...-s<seed>-...-source-system.jsonl``,
  the same rows plus ``{id, eval_reasoning, eval_score, eval_meta: {model_name, ...}}``.

The mix tag ``ml1`` is the paper's Mono, ``ml2``..``ml6`` its Multi-2..6,
``guanaco`` the full mix; other tags (e.g. ``de``, ``ca``) are kept as they
are. ``reporting.paper_results`` lists the files to import (see
:func:`load_paper_results`); ``null`` imports nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from polyglot_kedro.contracts import SCORE_COLUMNS
from polyglot_kedro.lid import normalize_label

from .params import ReportingParams

#: The ``model`` value of imported rows (unless an entry sets ``label``).
PAPER_MODEL = "paper"
PAPER_MIX_ALIASES = {"ml1": "mono", "mono": "mono", "guanaco": "guanaco", **{f"ml{i}": f"multi{i}" for i in range(2, 7)}}
_FILE_PREFIX = "alpaca_eval_instructions_"


def paper_lang(label: Any) -> str | None:
    """The project's language code of an OpenLID/NLLB label (``bul_Cyrl`` -> ``bg``); None when empty."""
    if label is None or (isinstance(label, float) and math.isnan(label)) or str(label).strip() == "":
        return None
    return normalize_label(str(label))


def parse_paper_path(path: str, mix_aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Model, mix, prompt language, seed (and judge) from a released file's path.

    Args:
        path: the file path (only its last three parts are read).
        mix_aliases: the paper's mix tags -> our mix names, on top of
            ``PAPER_MIX_ALIASES`` (unknown tags are kept as they are).

    Returns:
        ``{"model", "mix", "lang", "seed", "judge"}`` (judge None for generation files).

    Raises:
        ValueError: the path does not follow the pattern.
    """
    aliases = {**PAPER_MIX_ALIASES, **(mix_aliases or {})}
    parts = Path(path).parts
    name = parts[-1] if parts else ""
    fields = name.removeprefix(_FILE_PREFIX).split("-") if name.startswith(_FILE_PREFIX) else []
    seeds = [f[1:] for f in fields[1:] if f[:1] == "s" and f[1:].isdigit()]
    if not fields or not seeds or len(parts) < 2 or not parts[-2].endswith("_merged") or "_" not in parts[-2]:
        raise ValueError(f"{path}: not a paper results path "
                         "(<model>_<mix>_merged/alpaca_eval_instructions_<lang>-...-s<seed>-....jsonl)")
    model, _, tag = parts[-2].removesuffix("_merged").rpartition("_")
    judge = parts[-3] if "llm_evals" in parts and len(parts) >= 3 else None
    return {"model": model, "mix": aliases.get(tag, tag), "lang": fields[0], "seed": int(seeds[0]), "judge": judge}


def import_paper_results(records: Sequence[Mapping[str, Any]], *, model: str, mix: str, lang: str, seed: int,
                         judge: str | None = None, label: str = PAPER_MODEL, source: str = "") -> pd.DataFrame:
    """One released file's rows in the tidy ``scores`` schema.

    A row with ``source_lang`` and ``system_lang`` gives an
    ``io_lang_agreement`` row: 1 when both labels map to the same language
    code (as the judging stage decides: Norwegian variants are one language,
    an empty response never matches); invalid when the prompt has no label.
    A row with ``eval_score`` gives a ``helpfulness`` row, invalid when the
    score is not an integer in 1..6. Item ids are the row's ``id`` (judge
    files), else the line number.

    Args:
        records: the file's JSON lines, parsed.
        model, mix, lang, seed: the file's cell (see :func:`parse_paper_path`);
            ``model`` (the paper's model) goes to the ``engine`` column.
        judge: judge model for helpfulness rows (else ``eval_meta.model_name``).
        label: the ``model`` value of the rows.
        source: file name for error messages.

    Returns:
        Rows with ``SCORE_COLUMNS`` (task ``chat``, prompt_setting ``native``).

    Raises:
        ValueError: a row has neither language labels nor an ``eval_score``;
            the message names the file and line.
    """
    rows = []
    for i, rec in enumerate(records):
        base = {"model": label, "mix": mix, "task": "chat", "lang": lang, "prompt_setting": "native",
                "seed": int(seed), "item_id": str(rec.get("id", i)), "engine": f"paper:{model}",
                "prompt_lang": paper_lang(rec.get("source_lang")), "response_lang": paper_lang(rec.get("system_lang"))}
        has_lid = "source_lang" in rec and "system_lang" in rec
        has_eval = "eval_score" in rec
        if not has_lid and not has_eval:
            raise ValueError(f"{source or 'paper results'} line {i + 1}: neither source_lang/system_lang nor eval_score")
        if has_lid:
            ok = base["prompt_lang"] is not None
            match = ok and base["response_lang"] == base["prompt_lang"]
            rows.append({**base, "metric": "io_lang_agreement", "score": float(match) if ok else math.nan,
                         "valid": ok, "invalid_reason": "" if ok else "prompt has no language label",
                         "lang_match": match if ok else None})
        if has_eval:
            raw = rec.get("eval_score")
            score = _likert(raw)
            valid = not math.isnan(score)
            rows.append({**base, "metric": "helpfulness", "score": score, "valid": valid,
                         "invalid_reason": "" if valid else f"eval_score {raw!r} not an integer in 1..6",
                         "raw_score": None if raw is None else str(raw),
                         "judge": judge or (rec.get("eval_meta") or {}).get("model_name")})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def _likert(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return math.nan
    return value if value.is_integer() and 1 <= value <= 6 else math.nan


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {n}: not JSON ({exc.msg})") from exc
    return records


def load_paper_results(params: dict[str, Any]) -> pd.DataFrame:
    """The files listed in ``reporting.paper_results`` as tidy scores of model ``paper``.

    Each entry is either the path of a released file (the paper repo's layout,
    which gives its cell) or a mapping with ``path`` (the released path,
    parsed for the cell), optionally ``records`` (the file's rows inline;
    else ``path`` is read), ``label`` (default ``paper``), ``mix_aliases``,
    and overrides of ``model``, ``mix``, ``lang``, ``seed``, ``judge``.

    This node reads the files itself because they are optional: Kedro's
    catalog has no dataset that may be absent (a PartitionedDataset over an
    empty folder fails to load), and the default run imports nothing.

    Args:
        params: ``params:reporting``.

    Returns:
        ``SCORE_COLUMNS`` rows (none when ``paper_results`` is null).

    Raises:
        ValueError: an entry's path does not parse, a file line is not JSON,
            or one label holds two paper models (their rows would pool).
    """
    entries = ReportingParams.model_validate(params).paper_results or []
    frames = []
    for k, entry in enumerate(entries):
        spec: dict[str, Any] = {"path": entry} if isinstance(entry, str) else dict(entry)
        if "path" not in spec:
            raise ValueError(f"reporting.paper_results[{k}]: needs a 'path' (the released file's path)")
        cell = {**parse_paper_path(spec["path"], spec.get("mix_aliases")),
                **{key: spec[key] for key in ("model", "mix", "lang", "seed", "judge") if key in spec}}
        records = spec["records"] if "records" in spec else _read_jsonl(spec["path"])
        frames.append(import_paper_results(records, **cell, label=spec.get("label", PAPER_MODEL), source=spec["path"]))
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    for label, grp in out.groupby("model"):
        engines = sorted(set(grp["engine"]))
        if len(engines) > 1:
            raise ValueError(f"reporting.paper_results: label {label!r} holds the paper's models {engines}; "
                             "give each model's entries their own 'label'")
    return out
