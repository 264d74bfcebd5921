"""One job, the report's statistics: mean, sd, bootstrap CIs, paired tests, corrections, non-inferiority.

Two families live here. The prompt-level functions (``cluster_bootstrap_ci``,
``paired_permutation_test``, ``compare_mixes``, ``adjust_pvalues``,
``non_inferiority``, ``plateau_point``, ``minimum_detectable_difference``,
``paper_seed_mean_ci``, ``judge_agreement``, ``length_correlation``) treat the
prompt (item) as the unit: its seeds are repeated measures of one prompt, not
independent draws (issue 16). They are what the report should use.

The row-level functions (``summarize``, ``bootstrap_means``; the report's
``ci_unit: row`` option) resample scored rows (an item under one seed) as if they
were independent, as seaborn's ``barplot(errorbar=("ci", 95))`` does over raw
rows: draw ``n`` row indices with replacement ``n_boot`` times, take each
draw's mean, report the 2.5th and 97.5th percentiles. The draws come from
``numpy.random.default_rng(seed)`` as one ``(n_boot, n)`` matrix, which is also
how ``scipy.stats.bootstrap`` draws them. Their intervals are too narrow when
seeds of a prompt are correlated; the report uses them only when asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as _sps


@dataclass(frozen=True)
class Record:
    """Base of the result records: ``as_dict`` gives a plain dict (one table row)."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Summary(Record):
    """Mean, sample sd (ddof=1) and bootstrap CI of one group of scores."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float


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


# ---------------------------------------------------------------------------
# Prompt-level statistics (issue 16).
#
# The functions below treat the prompt (item) as the unit of analysis: the
# seeds of one prompt are repeated measures of it, not independent draws, so
# intervals resample prompts (keeping their seeds together) and paired tests
# pair mixes on the prompt's mean over its seeds. Inputs are tidy frames with
# one valid scored row per (item, seed) of one (task, metric, language) cell
# (or of a pooled group, see :func:`pool_languages`); column names are
# parameters. "Higher is better" is assumed for every metric.
# ---------------------------------------------------------------------------

#: Elements of one resampling block (rows x prompts): keeps memory near 16 MB.
_BLOCK = 2_000_000


def _check_frame(scores: pd.DataFrame, columns: Sequence[str], fn: str) -> None:
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ValueError(f"{fn}: missing columns {missing}; has {list(scores.columns)}")
    if scores[columns[0]].isna().any():
        raise ValueError(f"{fn}: column {columns[0]!r} has {int(scores[columns[0]].isna().sum())} missing ids")
    for c in columns[1:]:
        vals = pd.to_numeric(scores[c], errors="coerce")
        bad = vals.isna()
        if bad.any():
            first = scores.loc[bad, columns[0]].iloc[0]
            first = first.item() if isinstance(first, np.generic) else first
            raise ValueError(
                f"{fn}: column {c!r} has {int(bad.sum())} missing/non-numeric values (first at "
                f"{columns[0]}={first!r}); drop invalid rows (valid == False) first"
            )


def _item_sums(scores: pd.DataFrame, item: str, value: str, fn: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-item (ids, sum of scores, row count), items in sorted order."""
    _check_frame(scores, [item, value], fn)
    # One column grouped, not the whole frame copied (the report calls this thousands of times);
    # pandas' own (compensated) sums, so the numbers are those of a groupby on the frame.
    g = pd.Series(pd.to_numeric(scores[value]).to_numpy(float)).groupby(scores[item].to_numpy(), sort=True)
    sums, counts = g.sum(), g.count()
    return sums.index.to_numpy(), sums.to_numpy(float), counts.to_numpy(float)


def prompt_means(scores: pd.DataFrame, *, item: str = "item_id", value: str = "score") -> pd.Series:
    """Mean of ``value`` over the seeds (rows) of each prompt, indexed by ``item`` (sorted).

    Raises:
        ValueError: a column is missing or ``value`` holds NaN / non-numbers.
    """
    ids, sums, counts = _item_sums(scores, item, value, "prompt_means")
    return pd.Series(sums / counts, index=pd.Index(ids, name=item), name=value)


def seed_means(scores: pd.DataFrame, *, seed: str = "seed", value: str = "score") -> pd.Series:
    """Mean of ``value`` over the prompts of each seed (the paper's per-seed points)."""
    _check_frame(scores, [seed, value], "seed_means")
    return scores.assign(**{value: pd.to_numeric(scores[value])}).groupby(seed, sort=True)[value].mean()


@dataclass(frozen=True)
class ClusterCI(Record):
    """Mean and bootstrap CI with the prompt as the resampling unit.

    ``mode``: ``cluster`` (statistic = mean over all rows of a resample of
    prompts) or ``seed_mean`` (mean of prompt means). ``method``:
    ``percentile`` or ``bca``. ``ci_low``/``ci_high`` are NaN for fewer than
    two prompts (a single prompt says nothing about prompt-to-prompt spread).
    """

    n_items: int
    n_rows: int
    mean: float
    ci_low: float
    ci_high: float
    mode: str
    method: str
    confidence: float
    n_resamples: int



def _ratio_stat(s, c, axis=-1):
    # vectorised over resamples: mean over all rows of the resampled prompts
    return s.sum(axis=axis) / c.sum(axis=axis)


def _mean_stat(x, axis=-1):
    return x.mean(axis=axis)


def _scipy_bootstrap(data: tuple, statistic, *, n_resamples: int, confidence: float, method: str,
                     seed: int | None, alternative: str = "two-sided"):
    if method not in ("percentile", "bca"):
        raise ValueError(f"bootstrap method must be 'percentile' or 'bca', got {method!r}")
    n = data[0].size
    return _sps.bootstrap(
        data, statistic, n_resamples=n_resamples, batch=max(1, _BLOCK // max(n, 1)), vectorized=True,
        paired=len(data) > 1, confidence_level=confidence, alternative=alternative,
        method="BCa" if method == "bca" else "percentile", rng=np.random.default_rng(seed),
    )


def _cluster_data(scores, item, value, mode, fn):
    if mode not in ("cluster", "seed_mean"):
        raise ValueError(f"{fn}: mode must be 'cluster' or 'seed_mean', got {mode!r}")
    _, sums, counts = _item_sums(scores, item, value, fn)
    if mode == "cluster":
        return (sums, counts), _ratio_stat, sums, counts
    return (sums / counts,), _mean_stat, sums, counts


def cluster_bootstrap_ci(
    scores: pd.DataFrame,
    *,
    item: str = "item_id",
    value: str = "score",
    mode: Literal["cluster", "seed_mean"] = "cluster",
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: Literal["percentile", "bca"] = "percentile",
    seed: int | None = 0,
) -> ClusterCI:
    """Bootstrap CI of the mean score with prompts (items) as the resampling unit.

    ``cluster`` mode draws prompts with replacement, keeps all seeds (rows) of
    a drawn prompt together, and takes the mean over all rows of the
    resample: with equal seed counts per prompt it equals the mean of prompt
    means; with unequal counts it weights a prompt by its rows, as the point
    estimate does. ``seed_mean`` mode averages seeds within a prompt first and
    bootstraps the prompt means (``scipy.stats.bootstrap`` on them, exactly).
    Both delegate to ``scipy.stats.bootstrap`` (vectorised, in blocks), with
    ``paired=True`` over (prompt sum, prompt count) in cluster mode so that
    ``bca`` jackknifes whole prompts.

    Args:
        scores: valid rows of one cell, one per (item, seed); other columns ignored.
        item: prompt id column. value: score column.
        mode: ``cluster`` (default) or ``seed_mean``.
        n_resamples: bootstrap resamples.
        confidence: two-sided confidence level.
        method: ``percentile`` or ``bca``.
        seed: seed of ``numpy.random.default_rng`` (same seed, same interval).

    Returns:
        :class:`ClusterCI` (``mean`` is the point estimate of ``mode``).

    Raises:
        ValueError: missing column, NaN/non-numeric scores, empty input, bad mode/method.
    """
    data, stat, sums, counts = _cluster_data(scores, item, value, mode, "cluster_bootstrap_ci")
    if sums.size == 0:
        raise ValueError("cluster_bootstrap_ci: no rows")
    est = float(stat(*data))
    low = high = float("nan")
    if sums.size >= 2:
        ci = _scipy_bootstrap(data, stat, n_resamples=n_resamples, confidence=confidence, method=method,
                              seed=seed).confidence_interval
        low, high = float(ci.low), float(ci.high)
    return ClusterCI(int(sums.size), int(counts.sum()), est, low, high, mode, method, float(confidence),
                     int(n_resamples))


def cluster_bootstrap_distribution(
    scores: pd.DataFrame,
    *,
    item: str = "item_id",
    value: str = "score",
    mode: Literal["cluster", "seed_mean"] = "cluster",
    n_resamples: int = 10_000,
    seed: int | None = 0,
) -> np.ndarray:
    """The ``(n_resamples,)`` bootstrap distribution behind :func:`cluster_bootstrap_ci` (same seed, same draws).

    Raises:
        ValueError: as :func:`cluster_bootstrap_ci`, and for fewer than two prompts.
    """
    data, stat, sums, _ = _cluster_data(scores, item, value, mode, "cluster_bootstrap_distribution")
    if sums.size < 2:
        raise ValueError(f"cluster_bootstrap_distribution: needs at least 2 prompts, got {sums.size}")
    res = _scipy_bootstrap(data, stat, n_resamples=n_resamples, confidence=0.95, method="percentile", seed=seed)
    return np.asarray(res.bootstrap_distribution, dtype=float)


def _clean_1d(values, fn: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if np.isnan(arr).any():
        raise ValueError(f"{fn}: input holds {int(np.isnan(arr).sum())} NaN values")
    return arr


def _mean_ci(d: np.ndarray, *, n_resamples: int, confidence: float, method: str, seed: int | None):
    if d.size < 2:
        return float("nan"), float("nan")
    ci = _scipy_bootstrap((d,), _mean_stat, n_resamples=n_resamples, confidence=confidence, method=method,
                          seed=seed).confidence_interval
    return float(ci.low), float(ci.high)


def paired_prompt_diffs(
    a: pd.DataFrame, b: pd.DataFrame, *, item: str = "item_id", value: str = "score"
) -> pd.DataFrame:
    """Pair two mixes on the prompt: each mix's mean over its seeds, then ``diff = mean_b - mean_a``.

    Args:
        a, b: valid rows of the same cell for mix a and mix b.

    Returns:
        Frame indexed by ``item`` (sorted; prompts present in both) with
        ``mean_a``, ``mean_b``, ``diff``. Prompts of only one mix are dropped
        (``len(union) - len(result)`` is the unpaired count).
    """
    ids_a, sums_a, counts_a = _item_sums(a, item, value, "prompt_means")
    ids_b, sums_b, counts_b = _item_sums(b, item, value, "prompt_means")
    both, ia, ib = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    mean_a, mean_b = sums_a[ia] / counts_a[ia], sums_b[ib] / counts_b[ib]
    index = pd.Index(both, name=item, dtype=a[item].dtype if len(both) == 0 else None)
    return pd.DataFrame({"mean_a": mean_a, "mean_b": mean_b, "diff": mean_b - mean_a}, index=index)


def minimum_detectable_difference(sd_of_prompt_diffs: float, n: int, *, alpha: float = 0.05,
                                  power: float = 0.8, two_sided: bool = True) -> float:
    """Smallest true mean difference a paired test on ``n`` prompts detects with ``power``.

    Normal approximation: ``(z_{1-alpha/2} + z_{power}) * sd / sqrt(n)``
    (``z_{1-alpha}`` when one-sided). A non-significant comparison whose MDE
    exceeds the difference of interest means "too few prompts to tell", not
    "no effect". NaN for ``n < 2`` or a NaN sd.
    """
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"minimum_detectable_difference: alpha and power must be in (0, 1), got {alpha}, {power}")
    if n < 2 or not np.isfinite(sd_of_prompt_diffs):
        return float("nan")
    z_a = _sps.norm.ppf(1 - alpha / 2 if two_sided else 1 - alpha)
    return float((z_a + _sps.norm.ppf(power)) * sd_of_prompt_diffs / np.sqrt(n))


@dataclass(frozen=True)
class PermutationResult(Record):
    """Two-sided paired sign-flip permutation test on prompt-level differences.

    ``method``: ``exact`` (all ``2**n`` sign vectors; ``n_resamples`` is
    ``2**n``) or ``monte_carlo`` (``p = (1 + #{|T*| >= |T|}) / (B + 1)``).
    ``p_floor``: the smallest p-value this test can report (``2 / 2**n``
    exact, ``1 / (B + 1)`` Monte Carlo). ``ci_*``: percentile bootstrap CI of
    ``mean_diff`` over prompts. ``mde``: :func:`minimum_detectable_difference`
    at ``alpha`` (uncorrected) and power 0.8.
    """

    n: int
    mean_diff: float
    sd_diff: float
    p_value: float
    method: str
    p_floor: float
    n_resamples: int
    ci_low: float
    ci_high: float
    confidence: float
    mde: float
    alpha: float



def _signed_sums(x: np.ndarray) -> np.ndarray:
    """Sums of ``x`` under all ``2**len(x)`` sign vectors (each vector once)."""
    sums = np.zeros(1)
    for v in x:
        sums = np.concatenate([sums + v, sums - v])
    return sums


def _count_extreme_exact(d: np.ndarray, thresh: float) -> int:
    """How many of the ``2**n`` sign vectors give ``|sum| >= thresh``.

    Meet in the middle: the sums of each half's sign vectors are enumerated
    (``2**(n/2)`` each), and for every first-half sum the second-half sums
    that reach the threshold on either side are counted by binary search, so
    n = 40 costs about a million operations instead of 2**40.
    """
    if thresh <= 0:
        return 2 ** d.size
    h = d.size // 2
    left, right = _signed_sums(d[:h]), np.sort(_signed_sums(d[h:]))
    high = right.size - np.searchsorted(right, thresh - left, side="left")  # left + r >= thresh
    low = np.searchsorted(right, -thresh - left, side="right")  # left + r <= -thresh
    return int(high.sum() + low.sum())


def _count_extreme_mc(d: np.ndarray, thresh: float, n_resamples: int, rng: np.random.Generator) -> int:
    n = d.size
    count = 0
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, n_resamples, step):
        m = min(step, n_resamples - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, (m, n), dtype=np.int8)
        count += int((np.abs(signs @ d) >= thresh).sum())
    return count


def paired_permutation_test(
    diff_per_prompt,
    *,
    n_resamples: int = 100_000,
    exact_max_n: int = 30,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> PermutationResult:
    """Two-sided sign-flip permutation test of ``mean(diff) == 0``, paired on the prompt.

    Under H0 (the two mixes are exchangeable on each prompt) each prompt's
    difference is equally likely to carry either sign. The statistic is the
    mean difference; the p-value is the share of sign vectors whose ``|mean|``
    reaches the observed one. With ``n <= exact_max_n`` all ``2**n`` vectors
    are enumerated (the identity is one of them); otherwise ``n_resamples``
    random vectors are drawn (vectorised in blocks) and the +1 correction
    keeps the p-value valid (Phipson & Smyth 2010). Ties are compared with a
    tolerance relative to ``sum|d|`` so float rounding never drops the
    observed vector.

    Args:
        diff_per_prompt: one difference (b - a) per prompt, each already the
            mean over the prompt's seeds (:func:`paired_prompt_diffs`).
        n_resamples: Monte Carlo sign vectors (``p_floor = 1/(B+1)``).
        exact_max_n: largest n counted exactly (at most 40; n = 30 takes ~40 ms, n = 40 ~1 s).
        confidence, n_boot: the bootstrap CI of the mean difference.
        alpha: level of the reported MDE.
        seed: seed of the Monte Carlo draws and of the bootstrap.

    Returns:
        :class:`PermutationResult`.

    Raises:
        ValueError: empty input or NaN.
    """
    d = _clean_1d(diff_per_prompt, "paired_permutation_test")
    n = d.size
    if n == 0:
        raise ValueError("paired_permutation_test: no paired prompts")
    if exact_max_n > 40:
        raise ValueError(f"paired_permutation_test: exact_max_n={exact_max_n} > 40 (2**20 sums per half at most)")
    thresh = abs(d.sum()) - 1e-10 * max(float(np.abs(d).sum()), 1e-300)
    if n <= exact_max_n:
        total = 2**n
        p = _count_extreme_exact(d, thresh) / total
        method, floor, used = "exact", min(1.0, 2.0 / total), total
    else:
        rng = np.random.default_rng(seed)
        p = (1.0 + _count_extreme_mc(d, thresh, n_resamples, rng)) / (n_resamples + 1.0)
        method, floor, used = "monte_carlo", 1.0 / (n_resamples + 1.0), int(n_resamples)
    sd = float(np.std(d, ddof=1)) if n > 1 else float("nan")
    low, high = _mean_ci(d, n_resamples=n_boot, confidence=confidence, method="percentile", seed=seed)
    return PermutationResult(
        n, float(d.mean()), sd, float(min(p, 1.0)), method, float(floor), used, low, high, float(confidence),
        minimum_detectable_difference(sd, n, alpha=alpha), float(alpha),
    )


@dataclass(frozen=True)
class MixComparison(PermutationResult):
    """:class:`PermutationResult` of ``b - a`` plus each mix's prompt-level mean and the unpaired count."""

    mean_a: float
    mean_b: float
    n_unpaired: int


def compare_mixes(a: pd.DataFrame, b: pd.DataFrame, *, item: str = "item_id", value: str = "score",
                  **test_kwargs) -> MixComparison:
    """Pair mixes a and b on the prompt (:func:`paired_prompt_diffs`) and test ``b - a``.

    ``mean_a``/``mean_b`` are means of prompt means over the paired prompts.
    ``test_kwargs`` go to :func:`paired_permutation_test`.

    Raises:
        ValueError: no prompt is shared by both mixes (the message gives both counts).
    """
    pairs = paired_prompt_diffs(a, b, item=item, value=value)
    n_a, n_b = a[item].nunique(), b[item].nunique()
    if pairs.empty:
        raise ValueError(f"compare_mixes: no prompt in both mixes ({n_a} and {n_b} prompts)")
    union = len(set(a[item]) | set(b[item]))
    res = paired_permutation_test(pairs["diff"].to_numpy(float), **test_kwargs)
    return MixComparison(**asdict(res), mean_a=float(pairs["mean_a"].mean()), mean_b=float(pairs["mean_b"].mean()),
                         n_unpaired=union - len(pairs))


def adjust_pvalues(pvals, method: Literal["holm", "bh"] = "holm") -> np.ndarray:
    """Multiple-comparison adjusted p-values over one family, same order; NaN stays NaN and is not counted.

    ``holm``: Holm's step-down (family-wise error). ``bh``: Benjamini-Hochberg
    step-up (false discovery rate; ``scipy.stats.false_discovery_control``).

    Raises:
        ValueError: unknown method, or a p-value outside [0, 1].
    """
    p = np.asarray(pvals, dtype=float)
    ok = ~np.isnan(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError(f"adjust_pvalues: p-values must lie in [0, 1], got {p[ok][(p[ok] < 0) | (p[ok] > 1)][:3]}")
    if method == "holm":
        return holm(p)
    if method != "bh":
        raise ValueError(f"adjust_pvalues: method must be 'holm' or 'bh', got {method!r}")
    out = np.full_like(p, np.nan)
    if ok.any():
        out[ok] = _sps.false_discovery_control(p[ok], method="bh")
    return out


Decision = Literal["non_inferior", "worse", "undecided"]


def decide_non_inferiority(lower: float, upper: float, delta: float) -> Decision:
    """Non-inferiority decision from one-sided bounds of (candidate - reference).

    ``non_inferior`` when ``lower > -delta``; ``worse`` when ``upper < -delta``
    (worse by more than the margin); ``undecided`` otherwise, including NaN
    bounds.
    """
    if delta < 0:
        raise ValueError(f"non-inferiority margin delta must be >= 0, got {delta}")
    if np.isfinite(lower) and lower > -delta:
        return "non_inferior"
    if np.isfinite(upper) and upper < -delta:
        return "worse"
    return "undecided"


@dataclass(frozen=True)
class NonInferiority(Record):
    """Non-inferiority of a candidate against a reference (difference = candidate - reference).

    ``lower``/``upper``: one-sided ``1 - alpha`` bounds (the ``1 - 2 alpha``
    two-sided percentile bootstrap interval over prompts).
    """

    decision: str
    n: int
    estimate: float
    lower: float
    upper: float
    delta: float
    alpha: float



def non_inferiority(diff_per_prompt, *, delta: float, alpha: float = 0.05, n_resamples: int = 10_000,
                    method: Literal["percentile", "bca"] = "percentile", seed: int | None = 0) -> NonInferiority:
    """One-sided test that the candidate is not worse than the reference by more than ``delta``.

    Args:
        diff_per_prompt: candidate - reference per prompt (each a mean over seeds;
            :func:`paired_prompt_diffs` with a = reference, b = candidate).
        delta: the margin (>= 0, in the metric's units).
        alpha: one-sided level of each bound.
        n_resamples, method, seed: the bootstrap over prompts.

    Returns:
        :class:`NonInferiority`; fewer than two prompts gives ``undecided``.
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"non_inferiority: alpha must be in (0, 0.5), got {alpha}")
    d = _clean_1d(diff_per_prompt, "non_inferiority")
    if d.size == 0:
        raise ValueError("non_inferiority: no paired prompts")
    low, high = _mean_ci(d, n_resamples=n_resamples, confidence=1 - 2 * alpha, method=method, seed=seed)
    return NonInferiority(decide_non_inferiority(low, high, delta), int(d.size), float(d.mean()), low, high,
                          float(delta), float(alpha))


def pool_languages(scores: pd.DataFrame, *, lang: str = "lang", item: str = "item_id", sep: str = "/") -> pd.DataFrame:
    """Copy of ``scores`` with ``item`` made unique across languages (``"<lang>/<item_id>"``).

    Pools a resource group's languages into one cell: the same item id in two
    languages is two prompts.
    """
    _check_frame(scores, [item], "pool_languages")
    if lang not in scores.columns:
        raise ValueError(f"pool_languages: missing column {lang!r}; has {list(scores.columns)}")
    return scores.assign(**{item: scores[lang].astype(str) + sep + scores[item].astype(str)})


@dataclass(frozen=True)
class PlateauStep(Record):
    """One rung of the ladder: Multi-``level`` against one reference mix."""

    level: int
    mix: str
    reference: str
    decision: str
    n: int
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class PlateauResult(Record):
    """Smallest number of finetuning languages that is non-inferior to every larger mix.

    ``label``: ``"<i>"`` (levels below i all decided worse), ``"<=<i>"``
    (i is non-inferior but some smaller level is undecided), ``"undecided"``
    (no level non-inferior, some undecided), ``"not reached"`` (every tested
    level is worse than some larger mix), ``"no data"`` (nothing testable).
    ``plateau`` is the smallest non-inferior level (None unless a number is
    in the label). ``decisions``: level -> combined decision. ``steps``: every
    (level, reference) test.
    """

    label: str
    plateau: int | None
    delta: float
    alpha: float
    decisions: dict[int, str]
    steps: tuple[PlateauStep, ...]

    def steps_frame(self) -> pd.DataFrame:
        cols = [f.name for f in PlateauStep.__dataclass_fields__.values()]
        return pd.DataFrame([asdict(s) for s in self.steps], columns=cols)


def plateau_point(
    scores: pd.DataFrame,
    levels: Mapping[str, int],
    *,
    delta: float,
    full_mixes: Sequence[str] = (),
    alpha: float = 0.05,
    mix: str = "mix",
    item: str = "item_id",
    value: str = "score",
    n_resamples: int = 10_000,
    method: Literal["percentile", "bca"] = "percentile",
    seed: int | None = 0,
) -> PlateauResult:
    """How many finetuning languages are enough: the smallest i non-inferior to all larger mixes.

    For each level i (ascending) with rows, the references are the mixes of
    ``levels`` with a larger level plus the ``full_mixes`` that have rows. Multi-i
    is paired with each reference on the prompt (:func:`paired_prompt_diffs`)
    and tested with :func:`non_inferiority` at ``alpha``. Level i is
    ``non_inferior`` when it is so against every reference (an
    intersection-union test: valid at ``alpha`` without correction, and the
    best larger mix is the binding one), ``worse`` when it is worse than at
    least one, otherwise ``undecided``. A level without references (the
    largest, with no full mix) is not tested.

    Args:
        scores: valid rows of one (task, metric, language) cell, or of a group
            pooled with :func:`pool_languages`, for all mixes (rows of mixes
            in neither ``levels`` nor ``full_mixes`` are ignored).
        levels: mix name -> number of finetuning languages (mono = 1, Multi-i = i),
            one mix per level (e.g. the native mixes only).
        delta: non-inferiority margin in the metric's units.
        full_mixes: mixes that are references for every level (the full Guanaco mix).
        alpha, n_resamples, method, seed: as :func:`non_inferiority`.
        mix, item, value: column names.

    Returns:
        :class:`PlateauResult`.

    Raises:
        ValueError: a missing column, two mixes with the same level, a mix in
        both ``levels`` and ``full_mixes``.
    """
    _check_frame(scores, [item, value], "plateau_point")
    if mix not in scores.columns:
        raise ValueError(f"plateau_point: missing column {mix!r}; has {list(scores.columns)}")
    by_level: dict[int, str] = {}
    for name, lvl in levels.items():
        if int(lvl) in by_level:
            raise ValueError(f"plateau_point: mixes {by_level[int(lvl)]!r} and {name!r} share level {lvl}")
        by_level[int(lvl)] = name
    both = set(levels) & set(full_mixes)
    if both:
        raise ValueError(f"plateau_point: mixes {sorted(both)} are in both levels and full_mixes")
    present = set(scores[mix].astype(str).unique())
    groups = {str(m): g for m, g in scores.groupby(mix, sort=False)}
    ladder = sorted(lvl for lvl, m in by_level.items() if m in present)
    fulls = [m for m in full_mixes if m in present]
    steps: list[PlateauStep] = []
    decisions: dict[int, str] = {}
    for lvl in ladder:
        cand = by_level[lvl]
        refs = [by_level[x] for x in ladder if x > lvl] + fulls
        if not refs:
            continue
        per_ref = []
        for ref in refs:
            d = paired_prompt_diffs(groups[ref], groups[cand], item=item, value=value)["diff"].to_numpy(float)
            if d.size == 0:
                r = NonInferiority("undecided", 0, float("nan"), float("nan"), float("nan"), delta, alpha)
            else:
                r = non_inferiority(d, delta=delta, alpha=alpha, n_resamples=n_resamples, method=method, seed=seed)
            per_ref.append(r.decision)
            steps.append(PlateauStep(lvl, cand, ref, r.decision, r.n, r.estimate, r.lower, r.upper))
        if all(x == "non_inferior" for x in per_ref):
            decisions[lvl] = "non_inferior"
        elif "worse" in per_ref:
            decisions[lvl] = "worse"
        else:
            decisions[lvl] = "undecided"
    label, plateau = "no data", None
    if decisions:
        ok = [lvl for lvl, dec in decisions.items() if dec == "non_inferior"]
        if ok:
            plateau = min(ok)
            below = [decisions[x] for x in decisions if x < plateau]
            label = str(plateau) if all(x == "worse" for x in below) else f"<={plateau}"
        elif "undecided" in decisions.values():
            label = "undecided"
        else:
            label = "not reached"
    return PlateauResult(label, plateau, float(delta), float(alpha), decisions, tuple(steps))


@dataclass(frozen=True)
class SeedMeanCI(Record):
    """The paper's error bar: mean of the per-seed means and seaborn's ``errorbar="ci"`` interval."""

    n_seeds: int
    mean: float
    ci_low: float
    ci_high: float



def paper_seed_mean_ci(per_seed_means, *, confidence: float = 0.95, n_boot: int = 1000,
                       seed: int | None = 0) -> SeedMeanCI:
    """Reproduce seaborn's ``barplot(errorbar="ci")`` bar over the per-seed means (the paper's figures).

    seaborn's ``EstimateAggregator`` with ``errorbar="ci"`` calls
    ``algorithms.bootstrap(vals, func="mean", n_boot=1000, seed=seed)``, which
    draws ``rng.integers(0, n, n, dtype=intp)`` ``n_boot`` times from
    ``np.random.default_rng(seed)``, and takes ``np.nanpercentile`` at
    ``(100 - width) / 2`` and ``100 - that``; one value gives NaN bounds. The
    draws here are one ``(n_boot, n)`` matrix from the same generator, which
    is the same stream. With n = 3 seeds this bootstraps three numbers: it
    says how much the seeds disagree, not how uncertain the mean over prompts
    is (use :func:`cluster_bootstrap_ci` for that). seaborn's own default
    seed is None (not reproducible); the default here is 0.
    """
    x = np.asarray(per_seed_means, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("paper_seed_mean_ci: no per-seed means")
    mean = float(np.mean(x))
    if x.size <= 1:
        return SeedMeanCI(int(x.size), mean, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, x.size, (n_boot, x.size), dtype=np.intp)].mean(axis=1)
    edge = (100 - 100 * confidence) / 2
    low, high = np.nanpercentile(boots, [edge, 100 - edge])
    return SeedMeanCI(int(x.size), mean, float(low), float(high))


@dataclass(frozen=True)
class JudgeAgreement(Record):
    """Agreement of two judgings of the same responses (NaN pairs dropped)."""

    n: int
    exact: float
    within_1: float



def _paired_finite(a, b, fn: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.size != y.size:
        raise ValueError(f"{fn}: needs aligned pairs, got {x.size} and {y.size} values")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def judge_agreement(a, b) -> JudgeAgreement:
    """Exact and within-one-point agreement of two judge scores of the same responses.

    Pairs where either score is NaN (an invalid judgement) are dropped; ``n``
    counts the pairs used (NaN shares when none is left).
    """
    x, y = _paired_finite(a, b, "judge_agreement")
    if x.size == 0:
        return JudgeAgreement(0, float("nan"), float("nan"))
    diff = np.abs(x - y)
    return JudgeAgreement(int(x.size), float(np.mean(diff == 0)), float(np.mean(diff <= 1)))


@dataclass(frozen=True)
class LengthCorrelation(Record):
    """Spearman correlation of judge scores with response length (NaN pairs dropped)."""

    n: int
    rho: float
    p_value: float



def length_correlation(scores, lengths) -> LengthCorrelation:
    """Spearman's rho (``scipy.stats.spearmanr``) of scores against response lengths.

    NaN for fewer than 3 pairs or a constant input.
    """
    x, y = _paired_finite(scores, lengths, "length_correlation")
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return LengthCorrelation(int(x.size), float("nan"), float("nan"))
    res = _sps.spearmanr(x, y)
    return LengthCorrelation(int(x.size), float(res.statistic), float(res.pvalue))
