"""The embedded default's report compares two model sizes (Fig. 7) on its first run (issue 18).

Reads the session's ``default_run`` (tests/conftest.py); runs nothing itself.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from polyglot_kedro.project_config import load_parameters


def _latest(path: Path) -> Path:
    (version,) = sorted(p for p in path.iterdir() if p.is_dir())[-1:]
    return version / path.name


def test_default_run_draws_fig7_with_both_model_sizes(default_run: Path):
    params = load_parameters(default_run / "conf", "local")
    on_own_model = {m: spec for m, spec in params["mixes"].items() if spec and spec.get("model")}
    assert on_own_model, "conf/base has no mix on a second model"
    reporting = default_run / "data" / "08_reporting"

    figures = {p.name for p in _latest(reporting / "figures").parent.rglob("*.png")}
    assert "fig7_model_size.png" in figures and "fig1_io_lang_agreement.png" in figures, sorted(figures)
    report = _latest(reporting / "report.html").read_text()
    assert "Model size comparison" in report and "Fig. 7 (Model size comparison) skipped" not in report

    numbers = pd.read_csv(_latest(reporting / "figure_numbers.csv"))
    fig7 = numbers[numbers["figure"] == "fig7_model_size"]
    for name, spec in on_own_model.items():
        label = spec.get("label") or name
        # the same mix on both models: one bar per model, each with scores
        assert set(fig7.loc[fig7["mix"] == label, "model"]) == {params["model"], spec["model"]}, name
    assert (fig7["n"] > 0).all()

    # aggregates keep the models apart; the second model holds only its own mixes
    aggregates = pd.read_csv(_latest(reporting / "aggregates.csv"))
    small = aggregates[aggregates["model"].isin({s["model"] for s in on_own_model.values()})]
    assert set(small["mix"]) == {s.get("label") or m for m, s in on_own_model.items()}
    assert not aggregates.duplicated(["model", "mix", "task", "lang", "prompt_setting", "metric"]).any()
    # paired comparisons stay within a model: the second model has one mix, so no comparison of its own
    significance = pd.read_csv(_latest(reporting / "significance.csv"))
    assert params["model"] in set(significance["model"])
    assert not set(significance["model"]) & {s["model"] for s in on_own_model.values()}
