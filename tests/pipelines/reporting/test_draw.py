"""The report's figures: hatching, order, captions, skipped figures, no pyplot state."""

from __future__ import annotations

import base64
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polyglot_kedro.config import mix_specs
from polyglot_kedro.pipelines.reporting import figures
from polyglot_kedro.pipelines.reporting.draw import draw_figures, stable_mix_order
from polyglot_kedro.pipelines.reporting.inputs import combine_scores
from polyglot_kedro.pipelines.reporting.plateau import dose_response
from polyglot_kedro.pipelines.reporting.statistics import aggregate_scores, compare_mixes


def _bars(fig):
    return {p.get_gid(): p for ax in fig.axes for p in ax.patches if p.get_gid()}


def test_figures_hatching_order_captions_and_skips(aggregates, scores, mixes, data_mixing_params, language_groups,
                                                  mix_summary, language_distribution, dose, reporting_params):
    open_before = plt.get_fignums()
    drawn, svg, numbers, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups,
                                            mix_summary, language_distribution, dose, reporting_params)
    assert plt.get_fignums() == open_before  # Figure objects, not pyplot's global registry
    assert sorted(drawn) == ["fig1_io_lang_agreement.png", "fig2_helpfulness.png", "fig3_xquad.png", "fig4_xcsqa.png",
                             "fig8_dose_response.png"]
    notes = " ".join(manifest["notes"])
    assert "Fig. 5 (XNLI) skipped" in notes and "Fig. 6" in notes and "Fig. 7" in notes
    fig2 = drawn["fig2_helpfulness.png"]
    bars = _bars(fig2)
    assert len(bars) == 12
    hatched = {gid for gid, p in bars.items() if p.get_hatch()}
    assert hatched == {"mono|en", "multi2|en", "multi2|es", "multi3|en", "multi3|es", "multi3|ru"}
    assert [t.get_text() for t in fig2.axes[0].get_xticklabels()] == ["en", "de", "es", "ru"]
    # bar heights are the aggregate means
    row = aggregates[(aggregates["mix"] == "multi3") & (aggregates["lang"] == "ru") & (aggregates["metric"] == "helpfulness")].iloc[0]
    assert bars["multi3|ru"].get_height() == pytest.approx(row["mean"])
    # two panels for XQuAD
    assert [ax.get_title() for ax in drawn["fig3_xquad.png"].axes] == ["XQuAD (en:xx)", "XQuAD (xx:xx)"]
    captions = {f["id"]: f["caption"] for f in manifest["figures"]}
    assert "standard deviation" in captions["fig2_helpfulness"]
    assert "95% bootstrap confidence interval" in captions["fig1_io_lang_agreement"]
    assert "resampling prompts with all their seeds" in captions["fig1_io_lang_agreement"]
    assert set(numbers.loc[numbers["figure"] == "fig2_helpfulness", "error_bars"]) == {"sd"}
    assert len(numbers[numbers["figure"] == "fig3_xquad"]) == 24
    for f in manifest["figures"]:
        img = Image.open(io.BytesIO(base64.b64decode(f["png_base64"])))
        assert img.size[0] > 100 and img.size[1] > 100


def test_figures_native_vs_mt_and_model_sizes(scores_by_mix, make_scores, data_mixing_params, language_groups, mix_summary,
                                              language_distribution, reporting_params):
    rng = np.random.default_rng(3)
    mixes = {"mono": {"kind": "mono"}, "multi2": {"kind": "multi", "n_languages": 2},
             "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"}}
    frames = {"mono": scores_by_mix["mono"], "multi2": scores_by_mix["multi2"], "mt_multi2": make_scores("mt_multi2", rng)}
    big = {m: make_scores(m, rng, model="bigger") for m in ("mono", "multi2")}
    all_scores = combine_scores(**{m: pd.concat([frames[m], big.get(m, frames[m].iloc[:0])]) for m in frames})
    agg = aggregate_scores(all_scores, reporting_params)
    drawn, svg, numbers, manifest = draw_figures(agg, all_scores, mixes, data_mixing_params, language_groups,
                                            mix_summary, language_distribution, dose_response(all_scores, mixes,
                                            language_groups, reporting_params), reporting_params)
    assert "fig6_native_vs_mt.png" in drawn and "fig7_model_size.png" in drawn
    fig6 = _bars(drawn["fig6_native_vs_mt.png"])
    assert fig6["mt_multi2|es"].get_hatch() == "//" and not fig6["mt_multi2|ru"].get_hatch()
    fig7 = _bars(drawn["fig7_model_size.png"])
    assert set(fig7) == {"tiny_llama|mono", "tiny_llama|multi2", "tiny_llama|mt_multi2", "bigger|mono", "bigger|multi2"}
    pooled = all_scores[(all_scores["model"] == "bigger") & (all_scores["mix"] == "mono")
                        & (all_scores["metric"] == "helpfulness") & all_scores["valid"]]
    assert fig7["bigger|mono"].get_height() == pytest.approx(pooled["score"].mean())
    sig = compare_mixes(all_scores, mixes, reporting_params)
    assert ("multi2", "mt_multi2") in set(zip(sig["mix_a"], sig["mix_b"]))


def test_paper_rows_beside_ours_not_instead(scores, mixes, make_scores, data_mixing_params, language_groups, mix_summary,
                                            language_distribution, reporting_params):
    # The paper has more mixes than we do; the per-language figures still show our model.
    rng = np.random.default_rng(5)
    paper = pd.concat([make_scores(m, rng, model="paper") for m in ("mono", "multi2", "multi3", "multi4")])
    both = pd.concat([scores, paper], ignore_index=True)
    agg = aggregate_scores(both, reporting_params)
    drawn, svg, numbers, manifest = draw_figures(agg, both, mixes, data_mixing_params, language_groups, mix_summary,
                                            language_distribution, dose_response(both, mixes, language_groups,
                                                                                 reporting_params), reporting_params)
    assert set(numbers.loc[numbers["figure"] == "fig2_helpfulness", "model"]) == {"tiny_llama"}
    fig7 = _bars(drawn["fig7_model_size.png"])
    assert {"paper|multi4", "tiny_llama|multi3"} <= set(fig7)


def test_paper_error_bars_are_the_per_seed_mean_interval(aggregates, scores, mixes, data_mixing_params, language_groups,
                                                        mix_summary, language_distribution, dose, reporting_params):
    params = {**reporting_params, "error_bars": "paper", "error_bars_by_figure": {}}
    drawn, svg, numbers, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups,
                                            mix_summary, language_distribution, dose, params)
    caption = {f["id"]: f["caption"] for f in manifest["figures"]}["fig2_helpfulness"]
    assert "per-seed means" in caption
    row = aggregates[(aggregates["mix"] == "multi2") & (aggregates["lang"] == "es")
                     & (aggregates["metric"] == "helpfulness")].iloc[0]
    bar = _bars(drawn["fig2_helpfulness.png"])["multi2|es"]
    # the error bar line of this bar spans the seed-mean interval
    ax = drawn["fig2_helpfulness.png"].axes[0]
    x = bar.get_x() + bar.get_width() / 2
    spans = [seg for coll in ax.collections for seg in coll.get_segments() if abs(seg[0][0] - x) < 1e-9]
    assert len(spans) == 1
    assert (spans[0][0][1], spans[0][1][1]) == pytest.approx((row["seed_ci_low"], row["seed_ci_high"]))


def test_dose_response_figure(dose, aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                              language_distribution, reporting_params):
    drawn, _, _, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                                      language_distribution, dose, reporting_params)
    fig = drawn["fig8_dose_response.png"]
    lines = {ln.get_gid(): ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == "high|line"}
    assert lines  # the high group's line (en, es, ru, de are all high)
    helpful = [ax for ax in fig.axes if ax.get_visible() and "Helpfulness" in ax.get_title()][0]
    line = [ln for ln in helpful.lines if ln.get_gid() == "high|line"][0]
    expect = dose[(dose["metric"] == "helpfulness") & (dose["group"] == "high")].sort_values("n_languages")["mean"]
    assert list(line.get_ydata()) == pytest.approx(list(expect))
    assert [t.get_text() for t in helpful.get_xticklabels()] == ["1", "2", "3"]
    caption = {f["id"]: f["caption"] for f in manifest["figures"]}["fig8_dose_response"]
    assert "One line per language group" in caption and "resampling prompts" in caption


def test_every_figure_one_width_and_the_metric_range(aggregates, scores, mixes, data_mixing_params, language_groups,
                                                    mix_summary, language_distribution, dose, reporting_params):
    drawn, svg, _, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups,
                                           mix_summary, language_distribution, dose, reporting_params)
    assert sorted(svg) == sorted(name.replace(".png", ".svg") for name in drawn)
    assert all(svg[name.replace(".png", ".svg")] is fig for name, fig in drawn.items())
    widths = {name: fig.get_size_inches()[0] for name, fig in drawn.items()}
    assert set(widths.values()) == {figures.FIG_WIDTH}, widths
    png_widths = {Image.open(io.BytesIO(base64.b64decode(f["png_base64"]))).size[0] for f in manifest["figures"]}
    assert png_widths == {int(figures.FIG_WIDTH * figures.DPI)}
    expected = {"fig1_io_lang_agreement.png": (0, 1), "fig2_helpfulness.png": (1, 6), "fig3_xquad.png": (0, 1),
                "fig4_xcsqa.png": (0, 1)}
    for name, ylim in expected.items():
        for ax in drawn[name].axes:
            assert ax.get_ylim() == pytest.approx(ylim), (name, ax.get_title())
    fonts = {t.get_fontsize() for fig in drawn.values() for ax in fig.axes if ax.get_visible()
             for t in ax.get_xticklabels()}
    assert fonts == {figures.STYLE["xtick.labelsize"]}
    # languages labelled by resource group under the axis
    groups = [t.get_text() for t in drawn["fig2_helpfulness.png"].axes[0].texts]
    assert groups == ["high-resource"]


def test_all_equal_values_are_said_in_the_caption(scores, mixes, data_mixing_params, language_groups, mix_summary,
                                                 language_distribution, reporting_params):
    flat = scores.copy()
    flat.loc[flat["task"] == "xcsqa", "score"] = 0.0
    agg = aggregate_scores(flat, reporting_params)
    _, _, _, manifest = draw_figures(agg, flat, mixes, data_mixing_params, language_groups, mix_summary,
                                     language_distribution, dose_response(flat, mixes, language_groups,
                                                                          reporting_params), reporting_params)
    captions = {f["id"]: f["caption"] for f in manifest["figures"]}
    assert "All drawn values are equal (0)" in captions["fig4_xcsqa"]
    assert "All drawn values are equal" not in captions["fig2_helpfulness"]


def test_stable_mix_order():
    specs = mix_specs({"guanaco": {"kind": "full"}, "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"},
                       "multi3": {"kind": "multi", "n_languages": 3}, "multi2": {"kind": "multi", "n_languages": 2},
                       "mono": {"kind": "mono"}, "base": {"kind": "untuned"}})
    assert stable_mix_order(specs, ["paper_tag", *specs]) == [
        "base", "mono", "multi2", "mt_multi2", "multi3", "guanaco", "paper_tag"]
