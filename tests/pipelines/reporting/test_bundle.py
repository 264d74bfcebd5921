"""The results bundle: the tables as files and a manifest naming the run and each file's hash."""

from __future__ import annotations

import hashlib
import io
import json

import pandas as pd

from polyglot_kedro.pipelines.reporting.bundle import frame_sha256, results_bundle
from polyglot_kedro.pipelines.reporting.plateau import plateau_table
from polyglot_kedro.pipelines.reporting.statistics import compare_mixes


def test_results_bundle(scores, aggregates, dose, mixes, language_groups, reporting_params, run_info):
    sig = compare_mixes(scores, mixes, reporting_params)
    plateau = plateau_table(scores, mixes, language_groups, reporting_params)
    numbers = pd.DataFrame({"figure": ["fig1_x", "fig1_x", "fig2_y"], "mix": ["mono", "multi2", "mono"],
                            "mean": [0.1, 0.2, 3.0]})
    files = results_bundle(aggregates, sig, plateau, dose, numbers, scores, run_info, reporting_params)
    assert sorted(files) == ["aggregates.csv", "comparisons.csv", "dose_response.csv", "figures/fig1_x.csv",
                             "figures/fig2_y.csv", "figures/fig8_dose_response.csv", "manifest.json", "plateau.csv"]
    assert pd.read_csv(io.StringIO(files["figures/fig1_x.csv"]))["mean"].tolist() == [0.1, 0.2]
    manifest = json.loads(files["manifest.json"])
    assert manifest["run"] == run_info
    assert manifest["inputs"]["score_rows"] == len(scores) and manifest["inputs"]["mixes"] == sorted(mixes)
    assert manifest["statistics"]["correction"] == "holm" and manifest["statistics"]["plateau_delta"]["helpfulness"] == 0.25
    for name, meta in manifest["files"].items():
        assert meta["sha256"] == hashlib.sha256(files[name].encode()).hexdigest()
    back = pd.read_csv(io.StringIO(files["comparisons.csv"]))
    assert len(back) == len(sig) and list(back.columns) == list(sig.columns)
    # the inputs' hash does not depend on row order, and does on content
    assert frame_sha256(scores.iloc[::-1]) == manifest["inputs"]["scores_sha256"]
    changed = scores.copy()
    changed.loc[0, "score"] = 99.0
    assert frame_sha256(changed) != manifest["inputs"]["scores_sha256"]
