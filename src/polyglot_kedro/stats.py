"""Summary statistics for the report: mean, sd, bootstrap CIs, paired tests.

The unit of resampling is one scored row (an item under one seed), as in
seaborn's ``barplot(errorbar=("ci", 95))``: draw ``n`` row indices with
replacement ``n_boot`` times, take the mean of each draw, and report the
2.5th and 97.5th percentiles of those means (the percentile method). The
draws come from ``numpy.random.default_rng(seed)`` as one ``(n_boot, n)``
matrix, which is also how ``scipy.stats.bootstrap`` draws them, so both give
the same interval for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Mean, sample sd (ddof=1) and bootstrap CI of one group of scores."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PairedResult:
    """Paired bootstrap comparison of ``b`` against ``a`` (difference b - a)."""

    n_pairs: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float


def _as_clean_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if np.isnan(arr).any():
        raise ValueError("scores contain NaN: drop invalid rows (valid == False) before computing statistics")
    return arr


def bootstrap_means(values, *, n_boot: int = 1000, seed: int = 42) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``values``.

    Args:
        values: 1-d scores, no NaN.
        n_boot: number of resamples.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        Array of shape ``(n_boot,)``; empty when ``values`` is empty.
    """
    arr = _as_clean_array(values)
    if arr.size == 0:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, (n_boot, arr.size))
    return arr[idx].mean(axis=1)


def percentile_ci(boot: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a bootstrap distribution (NaN, NaN when empty)."""
    if boot.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def summarize(values, *, n_boot: int = 1000, seed: int = 42, level: float = 0.95) -> Summary:
    """Mean, sd (ddof=1; NaN for fewer than 2 values) and percentile bootstrap CI.

    Args:
        values: 1-d scores of one group (valid rows only).
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        level: confidence level of the interval.

    Returns:
        The group's :class:`Summary`. An empty group has ``n == 0`` and NaNs.
    """
    arr = _as_clean_array(values)
    if arr.size == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan)
    sd = float(np.std(arr, ddof=1)) if arr.size > 1 else float("nan")
    low, high = percentile_ci(bootstrap_means(arr, n_boot=n_boot, seed=seed), level)
    return Summary(int(arr.size), float(arr.mean()), sd, low, high)


def paired_bootstrap(a, b, *, n_boot: int = 1000, seed: int = 42, level: float = 0.95) -> PairedResult:
    """Paired bootstrap of the mean difference ``b - a`` over aligned pairs.

    ``a[i]`` and ``b[i]`` must be the same item under the same seed (and
    language, prompt setting, metric) scored for two systems. The pairs are
    resampled together. The p-value is two-sided and tests ``diff == 0`` by
    centring the bootstrap distribution on zero (Efron & Tibshirani 1993,
    §16.4): ``p = (1 + #{|d*_b - d| >= |d|}) / (n_boot + 1)``.

    Args:
        a: scores of the first system.
        b: scores of the second system, same length and order.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        level: confidence level of the difference's interval.

    Returns:
        The :class:`PairedResult`.

    Raises:
        ValueError: ``a`` and ``b`` differ in length, are empty, or hold NaN.
    """
    xa, xb = _as_clean_array(a), _as_clean_array(b)
    if xa.size != xb.size:
        raise ValueError(f"paired_bootstrap needs aligned pairs: got {xa.size} and {xb.size} scores")
    if xa.size == 0:
        raise ValueError("paired_bootstrap needs at least one pair")
    d = xb - xa
    observed = float(d.mean())
    boot = bootstrap_means(d, n_boot=n_boot, seed=seed)
    low, high = percentile_ci(boot, level)
    extreme = np.abs(boot - observed) >= abs(observed) - 1e-12
    p = (1.0 + float(extreme.sum())) / (n_boot + 1.0)
    return PairedResult(int(d.size), float(xa.mean()), float(xb.mean()), observed, low, high, min(p, 1.0))


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as the input; NaN kept)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    vals = p[ok]
    m = vals.size
    if m == 0:
        return out
    order = np.argsort(vals)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * vals[order])
    res = np.empty(m)
    res[order] = np.minimum(adjusted, 1.0)
    out[ok] = res
    return out
