"""Reporting inputs: every mix's scores, cost ledgers and training metrics, checked and combined.

The per-mix datasets reach these nodes as a dict input (``{mix: "<mix>.scores"}``),
so the mix names are keyword names Kedro passes and kedro-viz shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from polyglot_kedro.config import mix_label, mix_specs
from polyglot_kedro.contracts import ITEM_KEYS, SCORE_REQUIRED, USAGE_NUMERIC, require_columns

#: One scored row: an item under one seed and metric (the key that must be unique).
SCORE_KEY = [*ITEM_KEYS, "metric"]


def _clean_scores(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``item_id`` as str, ``valid`` as bool, ``score`` as float; valid rows need a score."""
    require_columns(df, SCORE_REQUIRED, f"dataset '{name}'")
    df = df.copy()
    df["item_id"] = df["item_id"].astype(str)
    df["valid"] = df["valid"].astype(bool)
    df["score"] = pd.to_numeric(df["score"], errors="raise").astype(float)
    bad = df.index[df["valid"] & df["score"].isna()]
    if len(bad):
        row = df.loc[bad[0]]
        raise ValueError(
            f"dataset '{name}' row {bad[0]}: valid is True but score is NaN "
            f"(task={row['task']}, lang={row['lang']}, metric={row['metric']}, item_id={row['item_id']})"
        )
    return df


def combine_scores(*, paper_results: pd.DataFrame | None = None, mixes: Mapping[str, Any] | None = None,
                   **scores: pd.DataFrame) -> pd.DataFrame:
    """Check and concatenate the ``{mix}.scores`` frames of all mixes (and the paper's rows).

    Args:
        paper_results: the paper's released results in the scores schema
            (:func:`~.paper_results.import_paper_results`; model ``paper``),
            or None / empty.
        mixes: ``params:mixes``: a mix's rows carry its label (``MixSpec.label``,
            default its name) as ``mix``; None: every mix's own name.
        **scores: one tidy scores frame per mix, keyed by the mix name.

    Returns:
        One frame with the contract's columns (extra columns kept), ``item_id``
        as str and ``valid`` as bool.

    Raises:
        ValueError: a frame lacks a contract column, holds rows of another mix,
            has a valid row without a score or a duplicated key row; the
            message names the mix (and row).
    """
    specs = mix_specs(dict(mixes or {}))
    frames = []
    for name, df in scores.items():
        df = _clean_scores(f"{name}.scores", df)
        label = mix_label(name, specs[name]) if name in specs else name
        other = sorted(set(df["mix"].astype(str)) - {label})
        if other:
            raise ValueError(f"dataset '{name}.scores' holds rows of other mixes {other} (its rows' mix is {label!r})")
        frames.append(df)
    if paper_results is not None and len(paper_results):
        frames.append(_clean_scores("paper_results", paper_results))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_REQUIRED)
    dup = out.duplicated(SCORE_KEY, keep=False)
    if dup.any():
        first = out.loc[dup.idxmax(), SCORE_KEY].to_dict()
        raise ValueError(f"duplicated score rows for key {first}: each (mix, item, seed, metric, ...) must be scored once")
    return out


def summarize_costs(translation_usage: pd.DataFrame | None = None,
                    guanaco_translation_usage: pd.DataFrame | None = None,
                    **judging_usage: pd.DataFrame) -> pd.DataFrame:
    """The cost ledger: every usage frame with the mix it belongs to, plus a total.

    Args:
        translation_usage: the shared prompt-translation ledger (mix ``""``),
            or None for runs without a translation stage.
        guanaco_translation_usage: the training-example translation ledger of
            the MT mixes (mix ``""``), or None when no mix is machine-translated.
        **judging_usage: each mix's ``{mix}.judging_usage``, keyed by the mix.
            A ledger has ``stage, model, backend, requests, sent, cached,
            failed, prompt_tokens, completion_tokens, cost_usd``.

    Returns:
        Column ``mix`` + the ledger columns, and a ``TOTAL`` row summing the
        numeric ones.
    """
    shared = [df for df in (translation_usage, guanaco_translation_usage) if df is not None]
    named = [("", df) for df in shared] + list(judging_usage.items())
    frames = [df.assign(mix=name) for name, df in named if len(df)]
    if not frames:
        return pd.DataFrame(columns=["mix", "stage", "model", "backend", *USAGE_NUMERIC])
    ledger = pd.concat(frames, ignore_index=True)
    ledger = ledger[["mix"] + [c for c in ledger.columns if c != "mix"]]
    total: dict[str, Any] = {c: ledger[c].sum() for c in USAGE_NUMERIC if c in ledger.columns}
    total["mix"] = "TOTAL"
    return pd.concat([ledger, pd.DataFrame([total])], ignore_index=True)


def collect_training_metrics(**metrics: Mapping[str, Any]) -> pd.DataFrame:
    """One row per finetuned mix with the scalar training metrics.

    Nested dicts are flattened with ``.``; a list of numbers (e.g. a loss
    curve) is reported by its last value (``<key>.last``) and length.

    Args:
        **metrics: ``{mix}.training_metrics`` dicts, keyed by the mix.

    Returns:
        Columns ``mix`` + one per scalar metric.
    """
    rows = []
    for name, m in metrics.items():
        row: dict[str, Any] = {"mix": name}
        _flatten(m or {}, "", row)
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["mix"])


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", out)
        elif isinstance(value, (list, tuple)):
            nums = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if value and len(nums) == len(value):
                out[f"{name}.last"] = nums[-1]
                out[f"{name}.len"] = len(nums)
            elif value and all(isinstance(v, Mapping) for v in value):
                out[f"{name}.len"] = len(value)
                _flatten(value[-1], f"{name}.last.", out)
        elif value is None or isinstance(value, (str, int, float, bool)):
            out[name] = value
