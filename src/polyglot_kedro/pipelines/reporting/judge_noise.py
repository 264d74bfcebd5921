"""The judge's own noise (issue 16): how far two judgings of the same responses agree.

``judging.chat.judge_noise`` judges a subset of every mix's judged responses a
second time (another seed, temperature or judge model; ``{mix}.judge_noise``).
This module turns those pairs into one table per (judge pair, model, mix,
language) plus one overall row per judge pair: exact and within-one-point agreement of
the two judges' raw 1-6 scores (``stats.judge_agreement``; the verdicts before
the language rule forces a mismatched response to 1, so the rule's agreement
is not counted as the judge's), the sd of their difference, and Spearman's rho
of the first judge's raw score with the response's length in characters
(``stats.length_correlation``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from polyglot_kedro import stats
from polyglot_kedro.contracts import JUDGE_NOISE_COLUMNS, require_columns

#: The unit of ``length_rho``'s length (``{mix}.judge_noise.response_chars``).
LENGTH_UNIT = "characters"
#: ``model`` / ``mix`` / ``lang`` of the rows that pool every model, mix and language of a judge pair.
ALL = "all"
COLUMNS = ["judge_a", "judge_b", "model", "mix", "lang", "n_rejudged", "n_pairs", "exact", "within_1", "sd_diff",
           "length_rho", "length_p", "n_length"]
TITLE = "Judge noise (a subset judged twice)"
OFF_NOTE = "judge noise: not measured (option off)"


def _row(pair: tuple[str, str], model: str, mix: str, lang: str, df: pd.DataFrame) -> dict:
    a, b = df["first_raw_score"].to_numpy(float), df["raw_score"].to_numpy(float)
    agree = stats.judge_agreement(a, b)
    ok = np.isfinite(a) & np.isfinite(b)
    diff = a[ok] - b[ok]
    rho = stats.length_correlation(a, df["response_chars"].to_numpy(float))
    return {"judge_a": pair[0], "judge_b": pair[1], "model": model, "mix": mix, "lang": lang, "n_rejudged": int(len(df)),
            "n_pairs": agree.n, "exact": agree.exact, "within_1": agree.within_1,
            "sd_diff": float(np.std(diff, ddof=1)) if diff.size >= 2 else float("nan"),
            "length_rho": rho.rho, "length_p": rho.p_value, "n_length": rho.n}


def judge_noise_table(judging: dict, **noise: pd.DataFrame) -> pd.DataFrame:
    """Judge-judge agreement and length correlation per (judge pair, model, mix, language), and overall.

    Args:
        judging: ``params:judging`` (whether the option is on).
        **noise: each mix's ``{mix}.judge_noise`` (``contracts.JUDGE_NOISE_COLUMNS``), keyed by the mix.

    Returns:
        ``COLUMNS``: ``n_rejudged`` responses judged again, ``n_pairs`` of them
        with a valid score from both judges, ``exact`` / ``within_1`` the
        shares of those pairs with equal scores / at most one point apart,
        ``sd_diff`` the sd of ``first - second``, ``length_rho`` / ``length_p`` /
        ``n_length`` Spearman's rho of the first judge's score with the
        response length in characters (NaN below 3 pairs). One row per judge
        pair, model, mix and language (a mix's rows carry its label, so two
        models' Mono stay apart by ``model``), then one per judge pair with
        ``model``, ``mix`` and ``lang`` ``"all"``. No rows when the option is off.

    Raises:
        ValueError: a frame lacks a judge-noise column (the message names the dataset).
    """
    from polyglot_kedro.pipelines.judging.nodes import JudgingParams

    chat = JudgingParams.model_validate(judging or {}).chat
    if not (chat.enabled and chat.judge_noise.enabled):
        return pd.DataFrame(columns=COLUMNS)
    frames = []
    for mix, df in noise.items():
        require_columns(df, JUDGE_NOISE_COLUMNS, f"dataset '{mix}.judge_noise'")
        frames.append(df)  # rows keep their own ``mix`` (the mix's label, as in the scores)
    pairs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=JUDGE_NOISE_COLUMNS)
    if pairs.empty:  # on, but nothing was judged: say so with a zero row rather than nothing
        return pd.DataFrame([_row(("", ""), ALL, ALL, ALL, pairs)], columns=COLUMNS)
    rows = []
    for pair, by_pair in pairs.groupby(["first_judge", "judge"], sort=True):
        rows += [_row(pair, model, mix, lang, g)
                 for (model, mix, lang), g in by_pair.groupby(["model", "mix", "lang"], sort=True)]
        rows.append(_row(pair, ALL, ALL, ALL, by_pair))
    return pd.DataFrame(rows, columns=COLUMNS)


def judge_noise_note(table: pd.DataFrame) -> str:
    """How to read the table (or that it was not measured)."""
    if table is None or table.empty:
        return OFF_NOTE
    return ("The same responses judged twice: judge_a is the run's judge (its verdict stays the score), judge_b the "
            "second judging. exact / within_1: share of the n_pairs responses both judged validly that got the same "
            "1-6 score / scores at most one point apart (raw verdicts, before the language rule). sd_diff: sd of "
            "the difference of the two scores; judge noise alone moves the difference of two mixes' mean "
            "helpfulness over n responses each by about sd_diff/sqrt(n), so a difference below roughly "
            "2*sd_diff/sqrt(n) is one the judge itself could explain. length_rho: Spearman's rho of judge_a's score "
            f"with the response's length in {LENGTH_UNIT} (positive: longer answers score higher); the 'all' rows "
            "pool models, mixes and languages, whose character counts differ by script.")


def judge_noise_section(table: pd.DataFrame | None) -> tuple[str, str, pd.DataFrame]:
    """The report's (title, note, frame) for the judge-noise table."""
    table = pd.DataFrame(columns=COLUMNS) if table is None else table
    return TITLE, judge_noise_note(table), table
