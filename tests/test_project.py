"""The project as users drive it: the kedro CLI on a copy of the project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import kedro_cli as kedro

STAGES = ("data_mixing", "translation", "finetuning", "inference", "judging", "reporting")


def test_registry_lists_the_six_pipelines(project_copy):
    result = kedro(project_copy, "registry", "list")
    assert result.returncode == 0, result.stderr
    for name in (*STAGES, "__default__"):
        assert f"- {name}" in result.stdout


def test_unknown_model_fails_fast_naming_the_valid_ones(project_copy):
    result = kedro(project_copy, "run", "--pipeline", "finetuning", "--params", "model=nope", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Unknown model 'nope'" in out
    for name in ("tiny_llama", "smollm2_135m", "llama2_7b", "llama2_70b", "falcon_7b"):
        assert name in out
    assert "Running node" not in out
    assert not any((project_copy / "data" / "06_models").iterdir())


def test_viz_build_writes_the_lineage_site(project_copy):
    result = kedro(project_copy, "viz", "build", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    main = json.loads((project_copy / "build" / "api" / "main").read_text())
    node_names = {n["name"] for n in main["nodes"]}
    # Per-mix stages appear once per namespace, e.g. the mono finetuning node.
    assert any(name.startswith("mono.") or "mono" in name for name in node_names)
    assert (project_copy / "build" / "index.html").exists()


@pytest.fixture(scope="module")
def rerun_project(default_run: Path, tmp_path_factory) -> Path:
    """A copy of the session's finished default run, for the tests that run more in it.

    The rerun tests add versions (and MLflow runs); on a copy, the tests that
    read ``default_run`` keep seeing one run, and the default is paid once.
    """
    dest = tmp_path_factory.mktemp("rerun") / "project"
    shutil.copytree(default_run, dest, symlinks=True)
    return dest


def _versions(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir())


def test_default_run_leaves_the_report(default_run):
    reporting = default_run / "data" / "08_reporting"
    (html,) = [v / "report.html" for v in _versions(reporting / "report.html")]
    text = html.read_text()
    assert "tiny_llama" in text and "data:image/png;base64," in text
    figures = list((reporting / "figures").rglob("*.png"))
    assert any(f.name.startswith("fig1_io_lang_agreement") for f in figures)
    for table in ("aggregates.csv", "significance.csv", "invalid_counts.csv", "costs.csv", "mix_summary.csv"):
        assert _versions(reporting / table), table


def test_every_mix_was_trained_generated_and_scored(default_run):
    import pandas as pd

    for mix in ("mono", "multi2", "multi3", "multi6", "guanaco"):
        (scores,) = [v / f"{mix}.parquet" for v in _versions(default_run / "data/07_model_output/scores/" f"{mix}.parquet")]
        frame = pd.read_parquet(scores)
        assert set(frame["mix"]) == {mix}
        assert {"io_lang_agreement", "xquad_f1", "xcsqa_acc", "xnli_acc", "helpfulness"} <= set(frame["metric"])
        # Invalid judgments are kept and counted, never scored.
        helpful = frame[frame["metric"] == "helpfulness"]
        assert helpful.loc[~helpful["valid"], "score"].isna().all()
        assert (default_run / "data/06_models/merged" / mix / "config.json").exists()


def test_finetuning_pipeline_alone_with_an_explicit_model(rerun_project):
    result = kedro(rerun_project, "run", "--pipeline", "finetuning", "--params", "model=tiny_llama", "--namespaces", "mono")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    adapters = _versions(rerun_project / "data/06_models/adapters/mono")
    assert len(adapters) == 2, "a rerun adds an adapter version instead of overwriting the first"


def test_reporting_rerun_adds_a_version(rerun_project):
    result = kedro(rerun_project, "run", "--pipeline", "reporting")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert len(_versions(rerun_project / "data/08_reporting/report.html")) == 2
