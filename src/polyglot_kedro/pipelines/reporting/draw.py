"""The report's figures: which of Figs. 1-7 can be drawn, from which rows, with which captions.

The drawing itself is in :mod:`.figures`; this module is the ``draw_figures``
node that picks the data, orders mixes and languages and records every
drawn bar's numbers beside the embeddable PNG.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from polyglot_kedro.config import MixSpec, mixes_by_label

from . import figures
from .languages import finetuning_languages
from .paper_results import PAPER_MODEL
from .params import ReportingParams
from .statistics import GROUP_KEYS, STAT_COLUMNS, native_twin, pooled_summary


def draw_figures(aggregates: pd.DataFrame, scores: pd.DataFrame, mixes: dict[str, Any],
                 data_mixing: dict[str, Any], language_groups: dict[str, list[str]],
                 mix_summary: pd.DataFrame, language_distribution: pd.DataFrame, dose_response: pd.DataFrame,
                 params: dict[str, Any]) -> tuple[dict[str, Figure], dict[str, Figure], pd.DataFrame, dict[str, Any]]:
    """Figures 1-7 of the paper's layout, the dose-response Fig. 8, their numbers, and the embeddable PNGs.

    A figure whose data is missing is not drawn; a note says why.

    Args:
        aggregates: output of :func:`aggregate_scores`.
        scores: the combined tidy scores (Fig. 7 pools over languages).
        mixes: ``params:mixes``.
        data_mixing: ``params:data_mixing``.
        language_groups: ``params:language_groups`` (high/mid/low lists).
        mix_summary: data_mixing's per-mix summary.
        language_distribution: data_mixing's language distribution.
        dose_response: :func:`~.plateau.dose_response` (Fig. 8; its numbers stay in that table).
        params: ``params:reporting``.

    Returns:
        (``{"<figure id>.png": Figure}`` and ``{"<figure id>.svg": Figure}``
        for the catalog (the same figures), the numbers of every
        drawn bar of Figs. 1-7 with a ``figure`` column, a manifest ``{"figures": [{id,
        title, caption, error_bars, png_base64}], "notes": [...]}``).
    """
    p = ReportingParams.model_validate(params)
    hatch, notes = finetuning_languages(mixes, data_mixing, mix_summary, language_distribution)
    specs = mixes_by_label(mixes)  # rows carry labels: mono on two models is one bar group of Fig. 7
    present = list(pd.unique(aggregates["mix"])) if len(aggregates) else []
    unknown = [m for m in present if m not in specs]
    if unknown:
        notes.append(f"Mixes {unknown} are not in params:mixes: their bars are not hatched.")
    mix_order = stable_mix_order(specs, present)
    languages = figures.ordered_languages(language_groups, aggregates["lang"].unique() if len(aggregates) else [])
    specs_list = figures.figure_specs(p.xquad_metric)
    drawn: dict[str, Any] = {}
    numbers = []
    manifest: dict[str, Any] = {"figures": [], "notes": notes}
    models = sorted(pd.unique(aggregates["model"])) if len(aggregates) else []
    main_model = _main_model(aggregates)

    for spec in specs_list:
        sub = aggregates[(aggregates["task"] == spec.task) & (aggregates["metric"] == spec.metric)]
        if spec.prompt_settings:
            sub = sub[sub["prompt_setting"].isin(spec.prompt_settings)]
        sub = sub[sub["n"] > 0]
        if sub.empty:
            notes.append(f"{spec.label} ({spec.title}) skipped: no valid '{spec.metric}' scores for task '{spec.task}'.")
            continue
        missing = [m for m in mix_order if m not in set(sub["mix"])]
        if missing:
            notes.append(f"{spec.label}: no '{spec.metric}' scores for mixes {missing}.")
        bars = p.bars_for(spec.id)
        # With several models the per-language figures show the main one; Fig. 7 compares sizes.
        model = main_model
        if len(models) > 1:
            notes.append(f"{spec.label} shows model '{model}'; Fig. 7 compares models.")
        sub = sub[sub["model"] == model]
        fig = figures.draw_language_bars(sub, spec, languages, [m for m in mix_order if m in set(sub["mix"])],
                                         hatch, bars, language_groups)
        _record(drawn, numbers, manifest, fig, spec.id, spec.title, sub, bars, p, hatched=True,
                extra=f"Model: {model}.")

    pairs = [(twin, m) for m in mix_order if m in specs and specs[m].source == "mt"
             for twin in [native_twin(m, specs, mix_order)] if twin]
    fig6_id, fig6_title = "fig6_native_vs_mt", "Native vs machine-translated non-English training examples"
    chat = aggregates[(aggregates["task"] == "chat") & (aggregates["n"] > 0)]
    with_both = [(a, b) for a, b in pairs if {a, b} <= set(chat["mix"])]
    if not with_both:
        notes.append(f"Fig. 6 ({fig6_title}) skipped: no pair of a native multi-i mix and its mt twin with chat results.")
    else:
        bars = p.bars_for(fig6_id)
        model = _main_model(chat[chat["mix"].isin({m for pair in with_both for m in pair})])
        sub = chat[(chat["model"] == model) & chat["mix"].isin({m for pair in with_both for m in pair})]
        fig = figures.draw_native_vs_mt(sub, with_both, languages, hatch, bars)
        _record(drawn, numbers, manifest, fig, fig6_id, fig6_title, sub, bars, p, hatched=True,
                extra=f"Model: {model}. Pairs: " + ", ".join(f"{a} vs {b}" for a, b in with_both) + ".")

    fig7_id, fig7_title = "fig7_model_size", "Model size comparison"
    if len(models) < 2:
        notes.append(f"Fig. 7 ({fig7_title}) skipped: results for only {len(models)} model(s).")
    else:
        pooled = pooled_summary(scores, p.size_metric, params)
        if pooled.empty:
            notes.append(f"Fig. 7 ({fig7_title}) skipped: no valid '{p.size_metric}' scores.")
        else:
            bars = p.bars_for(fig7_id)
            fig = figures.draw_model_sizes(pooled, [m for m in mix_order if m in set(pooled["mix"])], models,
                                        p.size_metric, bars)
            _record(drawn, numbers, manifest, fig, fig7_id, fig7_title, pooled, bars, p, hatched=False,
                    extra=f"'{p.size_metric}' pooled over all languages and prompt settings.")

    _dose_figure(drawn, manifest, dose_response, main_model, language_groups, specs_list, p)
    numbers_df = pd.concat(numbers, ignore_index=True) if numbers else pd.DataFrame(
        columns=["figure", "error_bars", *GROUP_KEYS, *STAT_COLUMNS])
    return drawn, {name.removesuffix(".png") + ".svg": fig for name, fig in drawn.items()}, numbers_df, manifest


def stable_mix_order(specs: dict[str, MixSpec], present: list[str]) -> list[str]:
    """Mixes in the paper's order: untuned base, mono, multi2, multi3, ..., full; each MT mix beside its native twin.

    Mixes not in ``params:mixes`` (e.g. the paper's other tags) come last, sorted.
    """
    def rank(name: str) -> tuple:
        s = specs[name]
        kind = {"untuned": 0, "mono": 1, "multi": 2, "full": 3}[s.kind]
        return (kind, s.n_languages if s.kind == "multi" else 0, s.source != "native", name)

    known = sorted((m for m in present if m in specs), key=rank)
    return known + sorted(m for m in present if m not in specs)


def _main_model(aggregates: pd.DataFrame) -> str | None:
    """The model drawn in the per-language figures: ours before the paper's, then most mixes, most rows, name."""
    if aggregates.empty:
        return None
    stats = aggregates.groupby("model").agg(mixes=("mix", "nunique"), rows=("n", "sum")).reset_index()
    stats["paper"] = stats["model"].astype(str) == PAPER_MODEL
    stats = stats.sort_values(["paper", "mixes", "rows", "model"], ascending=[True, False, False, True])
    return str(stats["model"].iloc[0])


def _dose_figure(drawn: dict[str, Figure], manifest: dict[str, Any], dose: pd.DataFrame, model: str | None,
                 language_groups: dict[str, list[str]], specs_list: list[figures.LanguageFigure],
                 p: ReportingParams) -> None:
    fig_id, title = "fig8_dose_response", "How many languages: the metric against the number of finetuning languages"
    sub = dose[dose["model"] == model] if len(dose) else dose
    if sub.empty:
        manifest["notes"].append(f"Fig. 8 ({title}) skipped: no resource group with scores of a mono/multi-i ladder.")
        return
    cells = list(dict.fromkeys(zip(sub["task"], sub["prompt_setting"], sub["metric"])))
    # the paper's figure order first, then whatever else was scored
    rank = {(s.task, s.metric): i for i, s in enumerate(specs_list)}
    cells.sort(key=lambda c: (rank.get((c[0], c[2]), len(rank)), c))
    groups = [g for g in language_groups if g in set(sub["group"])]
    fig = figures.draw_dose_response(sub, cells, groups)
    drawn[f"{fig_id}.png"] = fig
    interval = figures.interval_text("ci", p.ci_level, p.n_boot, p.ci_unit)
    manifest["figures"].append({
        "id": fig_id, "title": title, "error_bars": "ci",
        "caption": (f"Model: {model}. One line per language group, its languages' prompts pooled; x: the number of "
                    f"finetuning languages of the native mono/multi-i mixes, then the full mix(es). Bands and bars: "
                    f"{interval}. Numbers: the dose-response table."),
        "png_base64": figures.to_base64_png(fig),
    })


def _record(drawn: dict[str, Figure], numbers: list[pd.DataFrame], manifest: dict[str, Any], fig: Figure, fig_id: str,
            title: str, sub: pd.DataFrame, bars: str, p: ReportingParams, *, hatched: bool, extra: str) -> None:
    drawn[f"{fig_id}.png"] = fig
    means = sub["mean"].dropna().round(12).unique()
    if len(means) == 1:
        extra += f" All drawn values are equal ({means[0]:.4g}): this figure shows no difference."
    numbers.append(sub.assign(figure=fig_id, error_bars=bars)[["figure", "error_bars", *GROUP_KEYS, *STAT_COLUMNS]])
    manifest["figures"].append({
        "id": fig_id, "title": title, "error_bars": bars,
        "caption": figures.caption(bars, p.ci_level, p.n_boot, hatched=hatched, extra=extra, ci_unit=p.ci_unit),
        "png_base64": figures.to_base64_png(fig),
    })
