"""Reporting statistics: per-group summaries, paired comparisons between mixes, invalid counts.

The formulas live in :mod:`polyglot_kedro.stats`; this module decides what is
grouped and paired with what.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.stats import holm, paired_bootstrap, summarize

from .params import ReportingParams

logger = logging.getLogger(__name__)

GROUP_KEYS = ["model", "mix", "task", "lang", "prompt_setting", "metric"]
PAIR_KEYS = ["model", "task", "lang", "prompt_setting", "metric", "seed", "item_id"]
STAT_COLUMNS = ["n", "n_invalid", "mean", "sd", "ci_low", "ci_high"]
COMPARISON_COLUMNS = [
    "model", "task", "lang", "prompt_setting", "metric", "mix_a", "mix_b", "n_pairs", "n_unpaired",
    "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value", "p_holm", "significant",
]  # fmt: skip


def _stat_row(key: Mapping[str, Any], grp: pd.DataFrame, p: ReportingParams) -> dict[str, Any]:
    s = summarize(grp.loc[grp["valid"], "score"].to_numpy(dtype=float), n_boot=p.n_boot, seed=p.seed, level=p.ci_level)
    return {**key, "n": s.n, "n_invalid": int((~grp["valid"]).sum()),
            "mean": s.mean, "sd": s.sd, "ci_low": s.ci_low, "ci_high": s.ci_high}


def aggregate_scores(scores: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Mean, sd and bootstrap CI per (model, mix, task, lang, prompt setting, metric).

    Invalid rows (``valid`` False) are counted in ``n_invalid`` and left out
    of the statistics. Every group uses a fresh generator seeded with
    ``reporting.seed``, so a group's numbers do not depend on the others.

    Args:
        scores: the combined tidy scores.
        params: ``params:reporting``.

    Returns:
        ``GROUP_KEYS`` + ``n, n_invalid, mean, sd, ci_low, ci_high``.
    """
    p = ReportingParams.model_validate(params)
    rows = [_stat_row(dict(zip(GROUP_KEYS, key)), grp, p)
            for key, grp in scores.groupby(GROUP_KEYS, sort=True, dropna=False)]
    return pd.DataFrame(rows, columns=GROUP_KEYS + STAT_COLUMNS)


def pooled_summary(scores: pd.DataFrame, metric: str, params: dict[str, Any]) -> pd.DataFrame:
    """``metric`` per (model, mix), pooled over languages and prompt settings (Fig. 7).

    Returns:
        Rows shaped like :func:`aggregate_scores` (``lang`` and
        ``prompt_setting`` are ``all``; ``task`` lists the tasks pooled);
        groups without a valid score are left out.
    """
    p = ReportingParams.model_validate(params)
    rows = []
    for (model, mix), grp in scores[scores["metric"] == metric].groupby(["model", "mix"], sort=True):
        key = {"model": model, "mix": mix, "task": ",".join(sorted(grp["task"].unique())), "lang": "all",
               "prompt_setting": "all", "metric": metric}
        row = _stat_row(key, grp, p)
        if row["n"]:
            rows.append(row)
    return pd.DataFrame(rows, columns=GROUP_KEYS + STAT_COLUMNS)


def native_twin(mt_mix: str, mixes: Mapping[str, MixSpec], names: Sequence[str]) -> str | None:
    """The native mix among ``names`` with the same kind and language count as ``mt_mix``."""
    spec = mixes[mt_mix]
    for m in names:
        s = mixes[m]
        if s.source == "native" and s.kind == spec.kind and s.n_languages == spec.n_languages:
            return m
    return None


def default_comparisons(mixes: Mapping[str, MixSpec], present: Sequence[str]) -> list[tuple[str, str]]:
    """Consecutive native mixes (params order) plus each mt mix vs its native twin."""
    names = [m for m in mixes if m in set(present)]
    native = [m for m in names if mixes[m].source == "native" and mixes[m].kind != "untuned"]
    pairs = list(zip(native, native[1:]))
    for m in names:
        if mixes[m].source == "mt":
            twin = native_twin(m, mixes, names)
            if twin:
                pairs.append((twin, m))
    return pairs


def compare_mixes(scores: pd.DataFrame, mixes: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """Paired bootstrap between mixes on every (model, task, lang, prompt setting, metric).

    Rows are paired on (model, task, lang, prompt_setting, metric, seed,
    item_id); a pair needs a valid score on both sides (the count of unpaired
    valid rows is reported). ``diff = mean_b - mean_a``; ``p_holm`` is the
    Holm adjustment over the languages of one (comparison, task, prompt
    setting, metric); ``significant`` is ``p_holm < alpha``.

    Args:
        scores: the combined tidy scores.
        mixes: ``params:mixes``.
        params: ``params:reporting``.

    Returns:
        ``COMPARISON_COLUMNS``.

    Raises:
        ValueError: a configured comparison names a mix that is not in
            ``params:mixes``.
    """
    p = ReportingParams.model_validate(params)
    specs = mix_specs(mixes)
    present = list(pd.unique(scores["mix"]))
    if p.comparisons is None:
        pairs = default_comparisons(specs, present)
    else:
        pairs = list(p.comparisons)
        unknown = sorted({m for pair in pairs for m in pair} - set(specs) - set(present))
        if unknown:
            raise ValueError(f"reporting.comparisons names unknown mixes {unknown}; known: {sorted(specs)}")
    valid = scores[scores["valid"]]
    rows = []
    for a, b in pairs:
        left = valid[valid["mix"] == a][PAIR_KEYS + ["score"]]
        right = valid[valid["mix"] == b][PAIR_KEYS + ["score"]]
        if left.empty or right.empty:
            logger.warning("comparison %s vs %s skipped: no valid scores for %s", a, b, a if left.empty else b)
            continue
        merged = left.merge(right, on=PAIR_KEYS, suffixes=("_a", "_b"), how="outer", indicator=True)
        for key, grp in merged.groupby(PAIR_KEYS[:5], sort=True):
            both = grp[grp["_merge"] == "both"]
            if both.empty:
                continue
            r = paired_bootstrap(both["score_a"], both["score_b"], n_boot=p.n_boot, seed=p.seed, level=p.ci_level)
            rows.append({**dict(zip(PAIR_KEYS[:5], key)), "mix_a": a, "mix_b": b, "n_pairs": r.n_pairs,
                         "n_unpaired": int((grp["_merge"] != "both").sum()), "mean_a": r.mean_a,
                         "mean_b": r.mean_b, "diff": r.diff, "ci_low": r.ci_low, "ci_high": r.ci_high,
                         "p_value": r.p_value})
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    # One family per comparison and metric (its languages): a table-wide
    # correction would need more resamples than the bootstrap p-value's floor
    # 1/(n_boot+1) allows.
    family = ["model", "task", "prompt_setting", "metric", "mix_a", "mix_b"]
    out["p_holm"] = (out.groupby(family, sort=False)["p_value"].transform(lambda s: holm(s.to_numpy(float)))
                     if len(out) else pd.Series(dtype=float))
    out["significant"] = out["p_holm"] < p.alpha
    return out


def count_invalid(scores: pd.DataFrame) -> pd.DataFrame:
    """Invalid judgments/scores per (model, mix, task, lang, metric) with their reasons.

    Args:
        scores: the combined tidy scores.

    Returns:
        ``model, mix, task, lang, metric, n_rows, n_invalid, invalid_share,
        reasons`` (``reason: count`` pairs, most frequent first).
    """
    keys = ["model", "mix", "task", "lang", "metric"]
    rows = []
    for key, grp in scores.groupby(keys, sort=True):
        inv = grp[~grp["valid"]]
        counts = inv["invalid_reason"].fillna("").astype(str).replace("", "unspecified").value_counts()
        rows.append({**dict(zip(keys, key)), "n_rows": len(grp), "n_invalid": len(inv),
                     "invalid_share": len(inv) / len(grp),
                     "reasons": "; ".join(f"{r}: {n}" for r, n in counts.items())})
    return pd.DataFrame(rows, columns=keys + ["n_rows", "n_invalid", "invalid_share", "reasons"])
