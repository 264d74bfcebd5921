"""The embedded default's first run draws Fig. 2: the random judge's verdicts follow the rubric's schema (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pandas as pd
import yaml


def _latest(path: Path) -> Path:
    """The newest version's file of the versioned dataset at ``path``."""
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    assert versions, f"no version of {path}"
    return versions[-1] / path.name


def test_every_verdict_of_the_embedded_judge_follows_the_schema(default_run):
    schema = yaml.safe_load((default_run / "conf/base/parameters_judging.yml").read_text())
    schema = schema["judging"]["chat"]["request"].get("json_schema")
    assert schema, "conf/base gives the embedded judge no json_schema"
    frames = [pd.read_parquet(_latest(p)) for p in sorted((default_run / "data/07_model_output/scores").iterdir())]
    helpful = pd.concat(frames, ignore_index=True).query("metric == 'helpfulness'")
    judged = helpful[helpful["judge_raw"].notna()]
    assert len(judged) > 0, "nothing was judged"
    for raw in judged["judge_raw"]:
        # a random model may put control characters inside the reasoning string, which strict JSON refuses
        jsonschema.validate(json.loads(raw, strict=False), schema)
    assert judged["valid"].all() and judged["raw_score"].between(1, 6).all()


def test_fig2_is_drawn_with_values_and_the_report_says_they_are_noise(default_run):
    reporting = default_run / "data" / "08_reporting"
    numbers = pd.read_csv(_latest(reporting / "figure_numbers.csv"))
    fig2 = numbers[numbers["figure"] == "fig2_helpfulness"]
    assert not fig2.empty, "Fig. 2 was skipped"
    assert (fig2["n"] > 0).all() and fig2["mean"].between(1, 6).all()
    assert {"mono", "multi2"} <= set(fig2["mix"])
    assert any(f.name.startswith("fig2_helpfulness") for f in (reporting / "figures").rglob("*.png"))
    html = _latest(reporting / "report.html").read_text()
    assert "Fig. 2" in html and "Fig. 2 (Chat helpfulness (LLM judge)) skipped" not in html
    # the registry's note on the random-weight model, shown in the report's header
    assert "tiny_llama: Random-weight Llama for tests and the demo; its outputs are noise." in html
