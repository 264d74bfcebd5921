"""Reporting statistics: per-group summaries, paired comparisons between mixes, invalid counts.

The formulas live in :mod:`polyglot_kedro.stats`; this module decides what is
grouped and paired with what. The prompt is the unit (issue 16): intervals
resample prompts with all their seeds (``reporting.ci_unit``), comparisons
pair mixes on the prompt's mean over its seeds, and the p-values of one
model, task and metric form one family for the correction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from polyglot_kedro.config import MixSpec, mixes_by_label
from polyglot_kedro import stats

from .params import ReportingParams

logger = logging.getLogger(__name__)

GROUP_KEYS = ["model", "mix", "task", "lang", "prompt_setting", "metric"]
CELL_KEYS = ["model", "task", "lang", "prompt_setting", "metric"]
#: ``ci_*``: the interval of ``reporting.ci_unit``; ``seed_ci_*``: the paper's bar (seaborn CI over per-seed means).
STAT_COLUMNS = ["n", "n_prompts", "n_seeds", "n_invalid", "mean", "sd", "ci_low", "ci_high", "seed_ci_low", "seed_ci_high"]
FAMILY_KEYS = ["model", "task", "metric"]
COMPARISON_COLUMNS = [
    *CELL_KEYS, "mix_a", "mix_b", "n_prompts", "n_unpaired", "mean_a", "mean_b", "diff", "ci_low", "ci_high",
    "p_value", "test", "p_floor", "mde", "family", "family_size", "correction", "p_adjusted", "significant",
]  # fmt: skip


def group_interval(valid: pd.DataFrame, p: ReportingParams) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high) of one group's valid rows with ``p.ci_unit`` as the resampling unit."""
    if p.ci_unit == "row":
        s = stats.summarize(valid["score"].to_numpy(float), n_boot=p.n_boot, seed=p.seed, level=p.ci_level)
        return s.mean, s.ci_low, s.ci_high
    ci = stats.cluster_bootstrap_ci(valid, mode="cluster" if p.ci_unit == "prompt_cluster" else "seed_mean",
                                    n_resamples=p.n_boot, confidence=p.ci_level, seed=p.seed)
    return ci.mean, ci.ci_low, ci.ci_high


def _stat_row(key: Mapping[str, Any], grp: pd.DataFrame, p: ReportingParams) -> dict[str, Any]:
    valid = grp[grp["valid"]]
    row = {**key, "n": len(valid), "n_prompts": valid["item_id"].nunique(), "n_seeds": valid["seed"].nunique(),
           "n_invalid": int((~grp["valid"]).sum())}
    nan = float("nan")
    if valid.empty:
        return {**row, "mean": nan, "sd": nan, "ci_low": nan, "ci_high": nan, "seed_ci_low": nan, "seed_ci_high": nan}
    mean, low, high = group_interval(valid, p)
    paper = stats.paper_seed_mean_ci(stats.seed_means(valid).to_numpy(), confidence=p.ci_level, n_boot=p.n_boot,
                                     seed=p.seed)
    sd = float(valid["score"].std(ddof=1)) if len(valid) > 1 else nan
    return {**row, "mean": mean, "sd": sd, "ci_low": low, "ci_high": high,
            "seed_ci_low": paper.ci_low, "seed_ci_high": paper.ci_high}


def aggregate_scores(scores: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Mean, sd and bootstrap CIs per (model, mix, task, lang, prompt setting, metric).

    Invalid rows (``valid`` False) are counted in ``n_invalid`` and left out
    of the statistics. ``ci_low/ci_high`` resample with ``reporting.ci_unit``
    (default: prompts, each with all its seeds); ``seed_ci_*`` is the paper's
    bar, seaborn's bootstrap over the per-seed means. Every group uses a fresh
    generator seeded with ``reporting.seed``, so a group's numbers do not
    depend on the others.

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
    """Paired sign-flip tests between mixes on every (model, task, lang, prompt setting, metric).

    The two mixes are paired on the prompt: each prompt's mean over its valid
    seeds (prompts with valid scores in only one mix are counted in
    ``n_unpaired``). ``diff = mean_b - mean_a`` with a bootstrap CI over
    prompts; ``p_value`` is exact (all sign vectors) up to
    ``reporting.exact_max_n`` prompts, else Monte Carlo; ``p_floor`` is the
    smallest p-value the test could give; ``mde`` the smallest difference it
    would detect (power 0.8, uncorrected ``alpha``). ``p_adjusted`` corrects
    (``reporting.correction``) over the family named in ``family``: every test
    of one model, task and metric (all mix pairs x languages x prompt
    settings); ``significant`` is ``p_adjusted < alpha``.

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
    specs = mixes_by_label(mixes)  # rows carry labels; a label is one recipe on one or more models
    present = list(pd.unique(scores["mix"]))
    if p.comparisons is None:
        pairs = default_comparisons(specs, present)
    else:
        pairs = list(p.comparisons)
        unknown = sorted({m for pair in pairs for m in pair} - set(specs) - set(present))
        if unknown:
            raise ValueError(f"reporting.comparisons names unknown mixes {unknown}; known: {sorted(specs)}")
    valid = scores[scores["valid"]]
    cells = {key: grp for key, grp in valid.groupby(["mix", *CELL_KEYS], sort=True)}
    rows = []
    for a, b in pairs:
        if not ((valid["mix"] == a).any() and (valid["mix"] == b).any()):
            logger.warning("comparison %s vs %s skipped: no valid scores for %s", a, b,
                           a if not (valid["mix"] == a).any() else b)
            continue
        keys = sorted({k[1:] for k in cells if k[0] == a} & {k[1:] for k in cells if k[0] == b})
        for key in keys:
            left, right = cells[(a, *key)], cells[(b, *key)]
            if not set(left["item_id"]) & set(right["item_id"]):
                continue
            r = stats.compare_mixes(left, right, n_resamples=p.test_resamples, exact_max_n=p.exact_max_n,
                                    confidence=p.ci_level, n_boot=p.n_boot, alpha=p.alpha, seed=p.seed)
            rows.append({**dict(zip(CELL_KEYS, key)), "mix_a": a, "mix_b": b, "n_prompts": r.n,
                         "n_unpaired": r.n_unpaired, "mean_a": r.mean_a, "mean_b": r.mean_b, "diff": r.mean_diff,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value, "test": r.method,
                         "p_floor": r.p_floor, "mde": r.mde})
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    if out.empty:
        return out
    fam = out.groupby(FAMILY_KEYS, sort=False)
    out["family"] = out["task"].astype(str) + "/" + out["metric"].astype(str) + " (" + out["model"].astype(str) + ")"
    out["family_size"] = fam["p_value"].transform("size").astype(int)
    out["correction"] = p.correction
    out["p_adjusted"] = fam["p_value"].transform(lambda s: stats.adjust_pvalues(s.to_numpy(float), p.correction))
    out["significant"] = out["p_adjusted"] < p.alpha
    return out


def count_invalid(scores: pd.DataFrame) -> pd.DataFrame:
    """Invalid judgments/scores per (model, mix, task, lang, metric) with their reasons.

    Args:
        scores: the combined tidy scores.

    Returns:
        ``model, mix, task, lang, metric, n_rows, n_invalid, invalid_share,
        n_prompt_truncated`` (rows whose prompt was cut to fit the context;
        0 for scores written before that column existed), ``reasons``
        (``reason: count`` pairs, most frequent first).
    """
    keys = ["model", "mix", "task", "lang", "metric"]
    rows = []
    for key, grp in scores.groupby(keys, sort=True):
        inv = grp[~grp["valid"]]
        counts = inv["invalid_reason"].fillna("").astype(str).replace("", "unspecified").value_counts()
        truncated = int(grp["prompt_truncated"].fillna(False).astype(bool).sum()) if "prompt_truncated" in grp else 0
        rows.append({**dict(zip(keys, key)), "n_rows": len(grp), "n_invalid": len(inv),
                     "invalid_share": len(inv) / len(grp), "n_prompt_truncated": truncated,
                     "reasons": "; ".join(f"{r}: {n}" for r, n in counts.items())})
    return pd.DataFrame(rows, columns=keys + ["n_rows", "n_invalid", "invalid_share", "n_prompt_truncated", "reasons"])
