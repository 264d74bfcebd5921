"""Reporting wiring: one (non-namespaced) pipeline reading every mix's results."""

from __future__ import annotations

import functools
from collections.abc import Callable

from kedro.pipeline import Pipeline, node, pipeline

from polyglot_kedro.config import MixSpec

from .nodes import (
    aggregate_scores,
    collect_training_metrics,
    combine_scores,
    compare_mixes,
    count_invalid,
    draw_figures,
    render_report,
    render_tables_markdown,
    summarize_costs,
)


def _for_mixes(func: Callable, names: list[str]) -> Callable:
    """``func`` with its ``mix_names`` bound (the node's inputs are one dataset per mix)."""
    return functools.update_wrapper(functools.partial(func, mix_names=names), func)


def create_pipeline(mixes: dict[str, MixSpec] | None = None, *, with_translation_usage: bool = True,
                    **kwargs) -> Pipeline:
    """Reporting over all mixes: ``{mix}.scores`` -> ``report_*``.

    Args:
        mixes: the experiment grid (``grid.load_mixes``); ``None`` or empty
            gives an empty pipeline.
        with_translation_usage: include the ``translation_usage`` ledger in
            the cost table (off for runs without a translation stage).

    Returns:
        The reporting pipeline.
    """
    names = list(mixes or {})
    if not names:
        return Pipeline([])
    trained = [n for n, spec in mixes.items() if spec.kind != "untuned"]
    usage_inputs = (["translation_usage"] if with_translation_usage else []) + [f"{m}.judging_usage" for m in names]
    usage_names = ([""] if with_translation_usage else []) + names
    return pipeline(
        [
            node(_for_mixes(combine_scores, names), [f"{m}.scores" for m in names], "report_scores",
                 name="combine_scores"),
            node(_for_mixes(summarize_costs, usage_names), usage_inputs, "report_costs",
                 name="summarize_costs"),
            node(_for_mixes(collect_training_metrics, trained), [f"{m}.training_metrics" for m in trained],
                 "report_training_metrics", name="collect_training_metrics"),
            node(aggregate_scores, ["report_scores", "params:reporting"], "report_aggregates", name="aggregate_scores"),
            node(compare_mixes, ["report_scores", "params:mixes", "params:reporting"], "report_significance",
                 name="compare_mixes"),
            node(count_invalid, "report_scores", "report_invalid_counts", name="count_invalid"),
            node(
                draw_figures,
                ["report_aggregates", "report_scores", "params:mixes", "params:data_mixing", "params:language_groups",
                 "mix_summary", "language_distribution", "params:reporting"],
                ["report_figures", "report_figure_numbers", "report_figure_manifest"],
                name="draw_figures",
            ),
            node(
                render_tables_markdown,
                ["report_figure_numbers", "report_significance", "report_invalid_counts", "report_costs",
                 "mix_summary", "language_distribution", "report_training_metrics", "report_figure_manifest"],
                "report_tables_md",
                name="render_tables_markdown",
            ),
            node(
                render_report,
                ["report_figure_manifest", "report_significance", "report_invalid_counts", "report_costs",
                 "mix_summary", "language_distribution", "report_training_metrics", "report_scores",
                 "params:mixes", "params:model", "params:reporting"],
                "report_html",
                name="render_report",
            ),
        ]
    )

