"""The judge-noise table: agreement and length correlation of two judgings, in the report and the bundle."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from polyglot_kedro import stats
from polyglot_kedro.contracts import JUDGE_NOISE_COLUMNS
from polyglot_kedro.pipelines.reporting.bundle import results_bundle
from polyglot_kedro.pipelines.reporting.judge_noise import COLUMNS, OFF_NOTE, TITLE, judge_noise_table
from polyglot_kedro.pipelines.reporting.render import render_report, render_tables_markdown

from .test_pipeline import run_report  # noqa: F401  (the fixture: the real reporting pipeline on tmp_path)

ON = {"chat": {"judge_noise": {"enabled": True, "n_items": 2, "second": {"seed": 43}}}}
A, B = "openai:judge [seed 42, temperature 0.0]", "openai:judge [seed 43, temperature 0.0]"

# (mix, lang, first raw score, second raw score, response chars); NaN = an invalid verdict
# (the last two: Mono of a second model, whose rows carry the same mix label)
PAIRS = [
    ("mono", "en", 4, 4, 120), ("mono", "en", 5, 3, 300), ("mono", "en", 2, 2, 40), ("mono", "en", 6, 5, 410),
    ("mono", "de", 3, np.nan, 90), ("mono", "de", 1, 2, 30), ("mono", "de", 4, 4, 200),
    ("multi2", "en", 3, 3, 80), ("multi2", "en", np.nan, 4, 150), ("multi2", "en", 5, 6, 260),
    ("mono", "en", 1, 6, 500), ("mono", "en", 2, 1, 20),
]
SMALL = "tiny_llama_small"


def _noise_frame(rows) -> pd.DataFrame:
    out = []
    for n, (mix, lang, a, b, chars) in enumerate(rows):
        model = SMALL if n >= 10 else "tiny_llama"
        out.append({**{c: None for c in JUDGE_NOISE_COLUMNS}, "model": model, "mix": mix, "task": "chat",
                    "lang": lang, "prompt_setting": "native", "seed": n % 2, "item_id": f"i{n}", "judge": B,
                    "raw_score": float(b), "score": float(b), "valid": not np.isnan(b), "first_judge": A,
                    "first_raw_score": float(a), "first_score": float(a), "first_valid": not np.isnan(a),
                    "response_chars": chars})
    return pd.DataFrame(out, columns=JUDGE_NOISE_COLUMNS)


@pytest.fixture
def noise() -> dict[str, pd.DataFrame]:
    frame = _noise_frame(PAIRS)
    parts = {"mono": frame.iloc[:7], "multi2": frame.iloc[7:10], "mono_s": frame.iloc[10:]}
    return {name: part.reset_index(drop=True) for name, part in parts.items()}


def test_table_equals_the_stats_helpers_on_every_group(noise):
    table = judge_noise_table(ON, **noise)
    assert list(table.columns) == COLUMNS
    assert table[["model", "mix", "lang"]].values.tolist() == [
        ["tiny_llama", "mono", "de"], ["tiny_llama", "mono", "en"], ["tiny_llama", "multi2", "en"],
        [SMALL, "mono", "en"], ["all", "all", "all"]]
    assert set(table["judge_a"]) == {A} and set(table["judge_b"]) == {B}
    groups = {("tiny_llama", "mono", "de"): PAIRS[4:7], ("tiny_llama", "mono", "en"): PAIRS[0:4],
              ("tiny_llama", "multi2", "en"): PAIRS[7:10], (SMALL, "mono", "en"): PAIRS[10:], ("all", "all", "all"): PAIRS}
    for row in table.to_dict("records"):
        rows = groups[(row["model"], row["mix"], row["lang"])]
        a, b, chars = (np.array([r[i] for r in rows], float) for i in (2, 3, 4))
        agree, rho = stats.judge_agreement(a, b), stats.length_correlation(a, chars)
        ok = np.isfinite(a) & np.isfinite(b)
        assert row["n_rejudged"] == len(rows)
        assert (row["n_pairs"], row["exact"], row["within_1"]) == (agree.n, agree.exact, agree.within_1)
        assert row["sd_diff"] == pytest.approx(np.std(a[ok] - b[ok], ddof=1))
        assert row["n_length"] == rho.n
        assert row["length_rho"] == pytest.approx(rho.rho, nan_ok=True)
        assert row["length_p"] == pytest.approx(rho.p_value, nan_ok=True)
    # one group by hand: mono/en pairs (4,4) (5,3) (2,2) (6,5): 2 of 4 equal, 3 of 4 within one point
    en = table[(table["model"] == "tiny_llama") & (table["mix"] == "mono") & (table["lang"] == "en")].iloc[0]
    assert (en["n_pairs"], en["exact"], en["within_1"]) == (4, 0.5, 0.75)
    # scores 4 5 2 6 against lengths 120 300 40 410: the same order, rho 1
    assert en["length_rho"] == pytest.approx(1.0)
    overall = table[table["mix"] == "all"].iloc[0]
    assert (overall["n_rejudged"], overall["n_pairs"]) == (12, 10)  # two invalid verdicts, one from each judge


def test_option_off_reports_not_measured(noise, aggregates, scores, mixes, reporting_params, run_info, dose):
    off = judge_noise_table({}, **noise)  # frames present but the option is off: nothing measured
    assert off.empty and list(off.columns) == COLUMNS
    empty = pd.DataFrame()
    manifest = {"figures": [], "notes": []}
    html = render_report(manifest, empty, empty, dose, empty, empty, empty, empty, empty, scores, mixes,
                         "tiny_llama", reporting_params, run_info, judge_noise=off)
    assert TITLE in html and OFF_NOTE in html
    md = render_tables_markdown(pd.DataFrame(columns=["figure"]), manifest, empty, empty, dose, empty, empty, empty,
                                empty, empty, reporting_params, judge_noise=off)
    assert f"## {TITLE}\n\n{OFF_NOTE}" in md
    files = results_bundle(aggregates, empty, empty, dose, pd.DataFrame(columns=["figure"]), scores, run_info,
                           reporting_params, off)
    assert "judge_noise.csv" not in files
    assert json.loads(files["manifest.json"])["judge_noise"] == OFF_NOTE


def test_bundle_and_report_carry_the_table(noise, aggregates, scores, mixes, reporting_params, run_info, dose):
    table = judge_noise_table(ON, **noise)
    empty = pd.DataFrame()
    files = results_bundle(aggregates, empty, empty, dose, pd.DataFrame(columns=["figure"]), scores, run_info,
                           reporting_params, table)
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(files["judge_noise.csv"])), table, check_dtype=False)
    manifest = json.loads(files["manifest.json"])
    assert "judge_noise.csv" in manifest["files"] and manifest["judge_noise"]["length"] == "characters"
    html = render_report({"figures": [], "notes": []}, empty, empty, dose, empty, empty, empty, empty, empty, scores,
                         mixes, "tiny_llama", reporting_params, run_info, judge_noise=table)
    assert OFF_NOTE not in html and "2*sd_diff/sqrt(n)" in html and "length in characters" in html


def test_on_without_any_rejudged_response_is_a_zero_row():
    table = judge_noise_table(ON, mono=_noise_frame([]))
    assert len(table) == 1 and table.iloc[0]["n_pairs"] == 0 and np.isnan(table.iloc[0]["exact"])


def test_missing_column_names_the_dataset(noise):
    with pytest.raises(ValueError, match=r"dataset 'mono\.judge_noise': missing columns \['response_chars'\]"):
        judge_noise_table(ON, mono=noise["mono"].drop(columns="response_chars"))


def test_pipeline_report_shows_the_table(run_report, noise):
    # multi3's slot holds the second model's Mono rows (labelled mono), as a labelled mix's would
    out = run_report(judging=ON, judge_noise={"mono": noise["mono"], "multi2": noise["multi2"], "multi3": noise["mono_s"]})
    html = (out / "report.html").read_text()
    assert TITLE in html and OFF_NOTE not in html
    on_disk = pd.read_csv(out / "judge_noise.csv")
    pd.testing.assert_frame_equal(on_disk, pd.read_csv(out / "bundle" / "judge_noise.csv"))
    assert on_disk.iloc[-1]["n_pairs"] == 10
    off = run_report()
    assert OFF_NOTE in (off / "report.html").read_text()
