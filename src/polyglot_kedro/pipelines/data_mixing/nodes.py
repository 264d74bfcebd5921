"""Nodes of data_mixing that read Guanaco: parse the rows, identify their language, summarise.

The mixes themselves are built in :mod:`.mixes` (native) and :mod:`.mt_mixes`
(machine-translated); parameters live in :mod:`.params`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from polyglot_kedro.contracts import SOURCE_ERROR, SOURCE_LINE
from polyglot_kedro.lid import LanguageIdentifier
from polyglot_kedro.pipelines.data_mixing.params import DataMixingParams
from polyglot_kedro.prompting import GuanacoParseError, Turn, parse_guanaco, plain_text

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- parsing


def parse_guanaco_rows(guanaco_raw: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse raw Guanaco rows into turns; send unparsable rows to a rejected table.

    Args:
        guanaco_raw: a ``text`` column of ``### Human: ... ### Assistant: ...`` rows.
        params: ``data_mixing`` parameters (``parsing.allow_trailing_human_turn``).

    Returns:
        ``guanaco_parsed`` (``id`` = ``g{row:05d}``, ``text``, ``turns`` as a JSON
        list of ``{role, content}``, ``n_turns``) and ``guanaco_rejected``
        (``row, text, reason``).

    Raises:
        ValueError: ``guanaco_raw`` has no ``text`` column.

    A source line that was not a JSON object (``source_error``, from a raw
    dataset read with ``on_bad_line: reject``) and a row without a ``text``
    field are rejected with that reason and the source line, not dropped
    silently and not fatal for the other rows.
    """
    cfg = DataMixingParams.model_validate(params)
    if "text" not in guanaco_raw.columns and SOURCE_ERROR not in guanaco_raw.columns:
        raise ValueError(f"guanaco_raw has no 'text' column (columns: {list(guanaco_raw.columns)})")
    parsed, rejected = [], []
    for row, record in enumerate(guanaco_raw.to_dict("records")):
        text = record.get("text")
        reason = _unusable(record)
        if reason is None:
            try:
                turns = parse_guanaco(text, allow_trailing_human=cfg.parsing.allow_trailing_human_turn)
            except GuanacoParseError as exc:
                reason = exc.reason
        if reason is not None:
            line = record.get(SOURCE_LINE)
            where = f"line {int(line)}: " if line is not None and pd.notna(line) and reason[:4] != "line" else ""
            rejected.append({"row": row, "text": text if isinstance(text, str) else "", "reason": where + reason})
            continue
        parsed.append(
            {
                "id": f"g{row:05d}",
                "text": text,
                "turns": json.dumps([{"role": t.role, "content": t.content} for t in turns], ensure_ascii=False),
                "n_turns": len(turns),
            }
        )
    if rejected:
        logger.warning("guanaco: %d of %d rows rejected (see guanaco_rejected)", len(rejected), len(guanaco_raw))
    logger.info("guanaco: %d rows parsed", len(parsed))
    parsed_df = pd.DataFrame(parsed, columns=["id", "text", "turns", "n_turns"]).astype({"n_turns": "int64"})
    rejected_df = pd.DataFrame(rejected, columns=["row", "text", "reason"]).astype({"row": "int64"})
    return parsed_df, rejected_df


def _unusable(record: dict[str, Any]) -> str | None:
    """Why a raw row cannot be parsed at all (bad source line, no ``text`` field), else None."""
    error = record.get(SOURCE_ERROR)
    if isinstance(error, str) and error:
        # "<file>, line N: <what>" -> "line N: <what>" (the file is the dataset's source).
        return error.split(", ", 1)[1] if ", line " in error else error
    text = record.get("text")
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        fields = sorted(k for k, v in record.items()
                        if k not in (SOURCE_LINE, SOURCE_ERROR, "text") and v is not None and not _is_nan(v))
        return f"missing or null field 'text' (the row has: {', '.join(fields) or 'no fields'})"
    return None


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


# --------------------------------------------------------------------------- LID


def identify_languages(guanaco_parsed: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Language-identify each conversation (all turns, markers removed, one line).

    Args:
        guanaco_parsed: output of ``parse_guanaco_rows``.
        params: ``data_mixing`` parameters (``lid``: model, revision, label mode, threshold).

    Returns:
        ``guanaco_parsed`` plus ``lang`` (ISO 639-1, else 639-3), ``lid_label``,
        ``lid_confidence`` and ``keep`` (confidence >= ``min_confidence``).
    """
    cfg = DataMixingParams.model_validate(params)
    lid = LanguageIdentifier.from_config(cfg.lid)
    texts = [plain_text([Turn(t["role"], t["content"]) for t in json.loads(s)]) for s in guanaco_parsed["turns"]]
    pred = lid.predict_many(texts)
    out = guanaco_parsed.reset_index(drop=True).copy()
    for col in ("lang", "lid_label", "lid_confidence"):
        out[col] = pred[col].to_numpy()
    out["keep"] = out["lid_confidence"] >= cfg.lid.min_confidence
    logger.info(
        "LID (%s): %d of %d rows kept at confidence >= %.2f",
        lid.model_path, int(out["keep"].sum()), len(out), cfg.lid.min_confidence,
    )
    return out


def summarise_language_distribution(guanaco_lid: pd.DataFrame) -> pd.DataFrame:
    """Table 1 style: rows and share per language, over all rows and over kept rows.

    Returns:
        ``lang, count_all, share_all, count_kept, share_kept`` sorted by
        ``count_all`` (descending), then ``lang``.
    """
    all_counts = guanaco_lid["lang"].value_counts()
    kept_counts = guanaco_lid.loc[guanaco_lid["keep"], "lang"].value_counts()
    out = pd.DataFrame({"count_all": all_counts, "count_kept": kept_counts}).fillna(0).astype("int64")
    out.index.name = "lang"
    out = out.reset_index()
    out["share_all"] = out["count_all"] / max(int(out["count_all"].sum()), 1)
    out["share_kept"] = out["count_kept"] / max(int(out["count_kept"].sum()), 1)
    out = out.sort_values(["count_all", "lang"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    return out[["lang", "count_all", "share_all", "count_kept", "share_kept"]]


# --------------------------------------------------------------------------- summary


def summarise_mixes(base_model: str, **mix_frames: pd.DataFrame) -> pd.DataFrame:
    """Per-mix summary: size, languages and length in tokens of the selected model.

    Args:
        base_model: path of a transformers model folder (only its tokenizer is loaded).
        **mix_frames: mix name -> training mix (``id, text, lang, source``).

    Returns:
        One row per mix (sorted by name): ``mix, rows, n_languages, languages``
        (by count, descending), ``lang_counts`` (JSON), ``mt_rows``,
        ``mean_tokens``, ``total_tokens`` (texts tokenized without special tokens).
    """
    from polyglot_kedro.modeling import (
        load_tokenizer,  # heavy import (transformers), only for this node
    )

    tokenizer = load_tokenizer(base_model)  # honours the manifest's trust_remote_code/revision
    rows = []
    for mix in sorted(mix_frames):
        frame = mix_frames[mix]
        counts = frame["lang"].value_counts()
        counts = counts.sort_index().sort_values(ascending=False, kind="mergesort")
        texts = frame["text"].tolist()
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
        rows.append(
            {
                "mix": mix,
                "rows": len(frame),
                "n_languages": len(counts),
                "languages": ",".join(counts.index),
                "lang_counts": json.dumps({k: int(v) for k, v in counts.items()}),
                "mt_rows": int((frame["source"] == "mt").sum()),
                "mean_tokens": float(np.mean(lengths)) if lengths else float("nan"),
                "total_tokens": int(sum(lengths)),
            }
        )
    return pd.DataFrame(rows)
