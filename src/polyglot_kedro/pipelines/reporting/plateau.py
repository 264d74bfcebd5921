"""How many finetuning languages are enough: the plateau (non-inferiority) table and the dose-response numbers.

The ladder is the native mono (1 language) and multi-i (i languages) mixes;
the full Guanaco mix (kind ``full``) is a reference for every rung. A
language group pools its languages' prompts (a prompt in two languages is two
prompts). The tests are :func:`polyglot_kedro.stats.plateau_point`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from polyglot_kedro import stats
from polyglot_kedro.config import MixSpec, mixes_by_label

from .params import ReportingParams
from .statistics import group_interval

PLATEAU_COLUMNS = [
    "model", "task", "prompt_setting", "metric", "scope", "target", "answer", "enough_with", "delta", "alpha",
    "n_prompts", "decisions",
]  # fmt: skip
DOSE_COLUMNS = [
    "model", "task", "prompt_setting", "metric", "group", "mix", "n_languages", "n_prompts", "mean", "ci_low", "ci_high",
]  # fmt: skip
GROUP_ORDER = ("high", "mid", "low")


def ladder(mixes: Mapping[str, MixSpec]) -> tuple[dict[str, int], list[str]]:
    """(native mono/multi mix -> number of finetuning languages, native full mixes)."""
    levels = {name: (1 if s.kind == "mono" else s.n_languages) for name, s in mixes.items()
              if s.source == "native" and s.kind in ("mono", "multi")}
    full = [name for name, s in mixes.items() if s.source == "native" and s.kind == "full"]
    return levels, full


def _targets(cell: pd.DataFrame, language_groups: Mapping[str, Sequence[str]]) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(scope, target, rows): every language of the cell, then every resource group pooled."""
    for lang, rows in cell.groupby("lang", sort=True):
        yield "language", str(lang), rows
    for group in [g for g in GROUP_ORDER if g in language_groups] + [g for g in language_groups if g not in GROUP_ORDER]:
        rows = cell[cell["lang"].isin(language_groups[group])]
        if not rows.empty:
            yield "group", str(group), stats.pool_languages(rows)


def _answer(result: stats.PlateauResult) -> tuple[str, int | None]:
    """The table's words for a plateau label, and the number only where the data decided it."""
    if result.plateau is not None and result.label == str(result.plateau):
        return f"enough with {result.plateau}", result.plateau
    if result.plateau is not None:
        return f"at most {result.plateau} (a smaller mix is undecided)", None
    return {"not reached": "not reached (every tested mix is worse than a larger one)",
            "no data": "no data"}.get(result.label, "undecided"), None


def plateau_table(scores: pd.DataFrame, mixes: dict[str, Any], language_groups: dict[str, list[str]],
                  params: dict[str, Any]) -> pd.DataFrame:
    """The smallest number of finetuning languages not worse than every larger mix, per language and group.

    For each (model, task, prompt setting, metric) and each target language
    and resource group: Multi-i is non-inferior when the one-sided
    ``1 - alpha`` bound of (Multi-i - reference), over prompts, is above
    ``-delta`` for every larger mix and the full Guanaco mix
    (``reporting.plateau.delta`` per metric). ``answer`` is "undecided"
    (never a number) where the intervals are too wide to decide.

    Args:
        scores: the combined tidy scores.
        mixes: ``params:mixes``.
        language_groups: ``params:language_groups``.
        params: ``params:reporting``.

    Returns:
        ``PLATEAU_COLUMNS``; ``decisions`` lists each rung's decision
        (``multi2 (2): non_inferior; ...``); no rows without a ladder of two rungs.
    """
    p = ReportingParams.model_validate(params)
    levels, full = ladder(mixes_by_label(mixes))  # rows carry labels; each model is its own cell
    valid = scores[scores["valid"] & scores["mix"].isin([*levels, *full])]
    rows = []
    if len(levels) + len(full) < 2:
        return pd.DataFrame(rows, columns=PLATEAU_COLUMNS)
    names = {lvl: m for m, lvl in levels.items()}
    for (model, task, setting, metric), cell in valid.groupby(["model", "task", "prompt_setting", "metric"], sort=True):
        delta = p.plateau.delta_for(str(metric))
        for scope, target, rows_ in _targets(cell, language_groups):
            res = stats.plateau_point(rows_, levels, delta=delta, full_mixes=full, alpha=p.alpha,
                                      n_resamples=p.n_boot, seed=p.seed)
            answer, enough = _answer(res)
            rows.append({"model": model, "task": task, "prompt_setting": setting, "metric": metric, "scope": scope,
                         "target": target, "answer": answer, "enough_with": enough, "delta": delta, "alpha": p.alpha,
                         "n_prompts": rows_["item_id"].nunique(),
                         "decisions": "; ".join(f"{names[lvl]} ({lvl}): {d}" for lvl, d in sorted(res.decisions.items()))})
    out = pd.DataFrame(rows, columns=PLATEAU_COLUMNS)
    out["enough_with"] = out["enough_with"].astype("Int64")
    return out


def dose_response(scores: pd.DataFrame, mixes: dict[str, Any], language_groups: dict[str, list[str]],
                  params: dict[str, Any]) -> pd.DataFrame:
    """The metric against the number of finetuning languages, per resource group, with its interval.

    Args:
        scores: the combined tidy scores.
        mixes: ``params:mixes``.
        language_groups: ``params:language_groups``.
        params: ``params:reporting`` (``ci_unit``, ``n_boot``, ``ci_level``, ``seed``).

    Returns:
        ``DOSE_COLUMNS``: one row per (model, task, prompt setting, metric,
        group, mix) of the ladder; ``n_languages`` is NA for a full mix.
    """
    p = ReportingParams.model_validate(params)
    levels, full = ladder(mixes_by_label(mixes))
    valid = scores[scores["valid"] & scores["mix"].isin([*levels, *full])]
    rows = []
    for (model, task, setting, metric), cell in valid.groupby(["model", "task", "prompt_setting", "metric"], sort=True):
        for scope, group, pooled in _targets(cell, language_groups):
            if scope != "group":
                continue
            for mix, grp in pooled.groupby("mix", sort=False):
                mean, low, high = group_interval(grp, p)
                rows.append({"model": model, "task": task, "prompt_setting": setting, "metric": metric, "group": group,
                             "mix": mix, "n_languages": levels.get(str(mix)), "n_prompts": grp["item_id"].nunique(),
                             "mean": mean, "ci_low": low, "ci_high": high})
    out = pd.DataFrame(rows, columns=DOSE_COLUMNS)
    out["n_languages"] = out["n_languages"].astype("Int64")
    return out.sort_values(["model", "task", "prompt_setting", "metric", "group", "n_languages"],
                           na_position="last", kind="stable").reset_index(drop=True)
