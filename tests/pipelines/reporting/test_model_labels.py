"""A mix on a second model under another mix's label (``MixSpec.model``/``label``) in reporting's tables and Fig. 7."""

from __future__ import annotations

import numpy as np

from polyglot_kedro.pipelines.reporting.draw import draw_figures
from polyglot_kedro.pipelines.reporting.inputs import combine_scores
from polyglot_kedro.pipelines.reporting.plateau import dose_response, plateau_table
from polyglot_kedro.pipelines.reporting.statistics import aggregate_scores, compare_mixes

MIXES = {"mono": {"kind": "mono"}, "multi2": {"kind": "multi", "n_languages": 2},
         "mono_s": {"kind": "mono", "model": "tiny_llama_small", "label": "mono"}}


def test_the_labelled_mix_pairs_across_models_and_never_with_another_model(
        scores_by_mix, make_scores, data_mixing_params, language_groups, mix_summary, language_distribution,
        reporting_params):
    small = make_scores("mono", np.random.default_rng(5), model="tiny_llama_small")
    scores = combine_scores(mixes=MIXES, mono=scores_by_mix["mono"], multi2=scores_by_mix["multi2"], mono_s=small)
    aggregates = aggregate_scores(scores, reporting_params)
    dose = dose_response(scores, MIXES, language_groups, reporting_params)
    drawn, _, numbers, _ = draw_figures(aggregates, scores, MIXES, data_mixing_params, language_groups, mix_summary,
                                        language_distribution, dose, reporting_params)
    fig7 = {p.get_gid() for ax in drawn["fig7_model_size.png"].axes for p in ax.patches if p.get_gid()}
    assert fig7 == {"tiny_llama|mono", "tiny_llama_small|mono", "tiny_llama|multi2"}
    # the per-language figures show the main model only (the one with most mixes)
    fig1 = numbers[numbers["figure"] == "fig1_io_lang_agreement"]
    assert set(fig1["model"]) == {"tiny_llama"}
    # comparisons and the plateau ladder stay within one model: the small one has a single rung
    assert set(compare_mixes(scores, MIXES, reporting_params)["model"]) == {"tiny_llama"}
    plateau = plateau_table(scores, MIXES, language_groups, reporting_params)
    small_rows = plateau[plateau["model"] == "tiny_llama_small"]
    assert small_rows["enough_with"].isna().all()
    assert set(dose.loc[dose["model"] == "tiny_llama_small", "mix"]) == {"mono"}
