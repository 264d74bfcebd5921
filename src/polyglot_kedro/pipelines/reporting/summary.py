"""The answer first: one line per resource group and headline metric, generated from the results.

Each line gives Mono against the best Multi-i (each with its interval, from
the dose-response numbers) and the plateau answer for that group, with
links to the figures it comes from.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .figures import METRIC_LABELS, figure_specs
from .paper_results import PAPER_MODEL
from .plateau import GROUP_ORDER

SUMMARY_COLUMNS = ["group", "metric", "task", "prompt_setting", "mono", "best_multi", "plateau", "figures"]


def _interval(row: pd.Series) -> str:
    if pd.isna(row["ci_low"]):
        return f"{row['mean']:.3g} (no interval: one prompt)"
    return f"{row['mean']:.3g} [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"


def summary_lines(dose_response: pd.DataFrame, plateau: pd.DataFrame, model: str,
                  headline_metrics: list[str], xquad_metric: str = "xquad_f1") -> pd.DataFrame:
    """Mono vs the best Multi-i and the plateau answer per resource group, for each headline metric.

    Args:
        dose_response: :func:`~.plateau.dose_response`.
        plateau: :func:`~.plateau.plateau_table`.
        model: ``params:model``; used when it has results, else the model
            with most rows that is not the paper's.
        headline_metrics: the metrics summarised, in order (those without
            results are left out).
        xquad_metric: which XQuAD metric Fig. 3 draws (for the figure links).

    Returns:
        ``SUMMARY_COLUMNS``; ``figures`` is a list of (label, anchor) pairs.
    """
    if dose_response.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    ours = dose_response[dose_response["model"] != PAPER_MODEL]
    pool = ours if len(ours) else dose_response
    chosen = model if model in set(pool["model"]) else str(pool["model"].value_counts().index[0])
    dose = pool[pool["model"] == chosen]
    fig_of = {spec.metric: (spec.label, spec.id) for spec in figure_specs(xquad_metric)}
    groups = [g for g in GROUP_ORDER if g in set(dose["group"])] + sorted(set(dose["group"]) - set(GROUP_ORDER))
    rows = []
    for metric in headline_metrics:
        for (task, setting), cell in dose[dose["metric"] == metric].groupby(["task", "prompt_setting"], sort=True):
            for group in groups:
                g = cell[cell["group"] == group]
                mono = g[g["n_languages"] == 1]
                multi = g[g["n_languages"].fillna(0) >= 2]
                if mono.empty and multi.empty:
                    continue
                best = multi.loc[multi["mean"].idxmax()] if len(multi) else None
                hit = plateau[(plateau["model"] == chosen) & (plateau["scope"] == "group") & (plateau["target"] == group)
                              & (plateau["metric"] == metric) & (plateau["task"] == task)
                              & (plateau["prompt_setting"] == setting)] if len(plateau) else plateau
                answer = (f"{hit['answer'].iloc[0]} (delta {hit['delta'].iloc[0]:g})" if len(hit)
                          else "not tested (fewer than two mixes of the ladder)")
                links = [fig_of[metric]] if metric in fig_of else []
                rows.append({"group": group, "metric": METRIC_LABELS.get(metric, metric), "task": task,
                             "prompt_setting": setting,
                             "mono": _interval(mono.iloc[0]) if len(mono) else "no mono results",
                             "best_multi": f"{best['mix']}: {_interval(best)}" if best is not None else "no multi-i results",
                             "plateau": answer, "figures": links + [("Fig. 8", "fig8_dose_response")]})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_intro(lines: pd.DataFrame, params: Any) -> str:
    """The sentence above the summary: what the numbers are."""
    if lines.empty:
        return "No resource group has results of both Mono and a Multi-i mix yet; see the figures and notes below."
    pct = int(round(params.ci_level * 100))
    return (f"Per resource group (its languages pooled): the mean of Mono and of the best Multi-i mix with "
            f"{pct}% intervals over prompts, and the smallest number of finetuning languages that is not worse "
            f"than the larger mixes by more than delta (non-inferiority, one-sided {1 - params.alpha:.0%}).")
