"""Reporting wiring: one (non-namespaced) pipeline reading every mix's results."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from polyglot_kedro.config import MixSpec

from .bundle import results_bundle
from .draw import draw_figures
from .inputs import collect_training_metrics, combine_scores, summarize_costs
from .judge_noise import judge_noise_table
from .paper_results import load_paper_results
from .plateau import dose_response, plateau_table
from .render import render_report, render_tables_markdown
from .statistics import aggregate_scores, compare_mixes, count_invalid

# Keyword names the combining nodes take besides one keyword per mix.
_RESERVED = {"paper_results", "mixes", "translation_usage", "guanaco_translation_usage", "judging"}


def create_pipeline(mixes: dict[str, MixSpec] | None = None, *, with_translation_usage: bool = True,
                    **kwargs) -> Pipeline:
    """Reporting over all mixes: ``{mix}.scores`` -> ``report_*``.

    The per-mix datasets are dict inputs (``{mix: "<mix>.scores"}``): each
    mix's name is the keyword its frame is passed under.

    Args:
        mixes: the experiment grid (``grid.load_mixes``); ``None`` or empty
            gives an empty pipeline.
        with_translation_usage: include the translation stage's ledgers in
            the cost table: ``translation_usage`` (prompts) and, when a mix
            has ``source: mt``, ``guanaco_translation_usage`` (training
            examples). Off for runs without a translation stage.

    Returns:
        The reporting pipeline.

    Raises:
        ValueError: a mix is named like one of the nodes' own inputs.
    """
    names = list(mixes or {})
    if not names:
        return Pipeline([])
    clash = sorted(_RESERVED & set(names))
    if clash:
        raise ValueError(f"mix names {clash} are reserved by the reporting pipeline; rename the mix")
    trained = [n for n, spec in mixes.items() if spec.kind != "untuned"]
    usage = {m: f"{m}.judging_usage" for m in names}
    if with_translation_usage:
        usage["translation_usage"] = "translation_usage"
        if any(spec.source == "mt" for spec in mixes.values()):
            usage["guanaco_translation_usage"] = "guanaco_translation_usage"
    tables = {"significance": "report_significance", "plateau": "report_plateau",
              "invalid_counts": "report_invalid_counts", "costs": "report_costs", "mix_summary": "mix_summary",
              "language_distribution": "language_distribution", "training_metrics": "report_training_metrics",
              "judge_noise": "report_judge_noise"}
    return pipeline(
        [
            node(load_paper_results, "params:reporting", "report_paper_results", name="load_paper_results"),
            node(combine_scores, {"paper_results": "report_paper_results", "mixes": "params:mixes",
                                  **{m: f"{m}.scores" for m in names}},
                 "report_scores", name="combine_scores"),
            node(summarize_costs, usage, "report_costs", name="summarize_costs"),
            node(collect_training_metrics, {m: f"{m}.training_metrics" for m in trained},
                 "report_training_metrics", name="collect_training_metrics"),
            node(aggregate_scores, ["report_scores", "params:reporting"], "report_aggregates", name="aggregate_scores"),
            node(compare_mixes, ["report_scores", "params:mixes", "params:reporting"], "report_significance",
                 name="compare_mixes"),
            node(count_invalid, "report_scores", "report_invalid_counts", name="count_invalid"),
            node(judge_noise_table, {"judging": "params:judging", **{m: f"{m}.judge_noise" for m in names}},
                 "report_judge_noise", name="judge_noise_table"),
            node(plateau_table, ["report_scores", "params:mixes", "params:language_groups", "params:reporting"],
                 "report_plateau", name="plateau_table"),
            node(dose_response, ["report_scores", "params:mixes", "params:language_groups", "params:reporting"],
                 "report_dose_response", name="dose_response"),
            node(
                draw_figures,
                ["report_aggregates", "report_scores", "params:mixes", "params:data_mixing", "params:language_groups",
                 "mix_summary", "language_distribution", "report_dose_response", "params:reporting"],
                ["report_figures", "report_figures_svg", "report_figure_numbers", "report_figure_manifest"],
                name="draw_figures",
            ),
            node(
                render_tables_markdown,
                {"figure_numbers": "report_figure_numbers", "manifest": "report_figure_manifest", **tables,
                 "dose_response": "report_dose_response", "params": "params:reporting"},
                "report_tables_md",
                name="render_tables_markdown",
            ),
            node(
                render_report,
                {"manifest": "report_figure_manifest", **tables, "dose_response": "report_dose_response",
                 "scores": "report_scores", "mixes": "params:mixes",
                 "model": "params:model", "params": "params:reporting", "run_info": "run_info",
                 "models": "params:models"},
                "report_html",
                name="render_report",
            ),
            node(
                results_bundle,
                ["report_aggregates", "report_significance", "report_plateau", "report_dose_response",
                 "report_figure_numbers", "report_scores", "run_info", "params:reporting", "report_judge_noise"],
                "report_bundle",
                name="results_bundle",
            ),
        ]
    )
