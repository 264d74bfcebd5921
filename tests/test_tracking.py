"""MLflow tracking: kedro-mlflow's run per ``kedro run`` and polyglot_kedro.tracking."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from polyglot_kedro.tracking import (  # noqa: E402
    MIX_TAG,
    MODEL_TAG,
    PARENT_TAG,
    MlflowResultsHook,
    log_aggregates,
    mix_metrics,
    run_metrics,
    trainer_callbacks,
)


def _aggregates(rows: list[tuple]) -> pd.DataFrame:
    cols = ["model", "mix", "task", "lang", "prompt_setting", "metric", "n", "mean"]
    return pd.DataFrame(rows, columns=cols)


AGG = _aggregates([
    ("tiny", "mono", "chat", "de", "xx:xx", "io_lang_agreement", 4, 0.25),
    ("tiny", "mono", "chat", "zh-Hant", "xx:xx", "io_lang_agreement", 4, 0.5),
    ("tiny", "multi3", "chat", "de", "xx:xx", "io_lang_agreement", 4, 0.75),
    ("tiny", "mono", "xquad", "de", "en:xx", "xquad_f1", 3, 11.0),
    ("tiny", "mono", "xquad", "de", "xx:xx", "xquad_f1", 3, 12.0),
    ("tiny", "multi3", "chat", "de", "xx:xx", "helpfulness", 0, float("nan")),
])


def test_mix_metrics_one_key_per_task_metric_language():
    out = mix_metrics(AGG)
    assert out[("tiny", "mono")] == {
        "chat/io_lang_agreement/de": 0.25,
        "chat/io_lang_agreement/zh-Hant": 0.5,
        # xquad is scored under two prompt settings: the setting joins the key.
        "xquad/xquad_f1/de/en:xx": 11.0,
        "xquad/xquad_f1/de/xx:xx": 12.0,
    }
    # No valid score: no metric (MLflow would show NaN as a number).
    assert out[("tiny", "multi3")] == {"chat/io_lang_agreement/de": 0.75}
    assert run_metrics(out)["multi3/chat/io_lang_agreement/de"] == 0.75
    two_models = {("a", "mono"): {"k": 1.0}, ("b", "mono"): {"k": 2.0}}
    assert run_metrics(two_models) == {"a/mono/k": 1.0, "b/mono/k": 2.0}


def test_mix_metrics_rejects_bad_tables():
    with pytest.raises(ValueError, match=r"missing columns \['mean'\]"):
        mix_metrics(AGG.drop(columns="mean"))
    with pytest.raises(ValueError, match="two rows for model 'tiny', mix 'mono'"):
        mix_metrics(pd.concat([AGG, AGG.iloc[[0]]]))


@pytest.fixture(scope="module")
def _store(tmp_path_factory):
    # One SQLite store per module: creating its tables takes seconds.
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    return uri, mlflow.MlflowClient(uri)


@pytest.fixture
def local_store(_store, request):
    """A fresh experiment in a throwaway SQLite store, the fluent API pointed at it."""
    uri, client = _store
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment(request.node.name)
    yield client, experiment.experiment_id
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def test_log_aggregates_parent_and_one_nested_run_per_mix(local_store):
    client, experiment_id = local_store
    parent = client.create_run(experiment_id, run_name="__default__").info.run_id
    # The mono training run transformers' MLflowCallback made (named after the mix).
    training = client.create_run(experiment_id, run_name="mono", tags={PARENT_TAG: parent}).info.run_id
    client.log_metric(training, "loss", 7.6, step=10)

    nested = log_aggregates(AGG, parent, client)

    assert nested["tiny/mono"] == training, "the mix's training run gets its metrics"
    on_parent = client.get_run(parent).data.metrics
    assert on_parent == run_metrics(mix_metrics(AGG))
    multi3 = client.get_run(nested["tiny/multi3"])
    assert multi3.data.tags[PARENT_TAG] == parent and multi3.data.tags[MIX_TAG] == "multi3"
    assert multi3.data.metrics == {"chat/io_lang_agreement/de": 0.75}
    assert multi3.info.status == "FINISHED"
    mono = client.get_run(training).data
    assert mono.metrics["chat/io_lang_agreement/zh-Hant"] == 0.5 and mono.metrics["loss"] == 7.6
    assert mono.tags[MIX_TAG] == "mono" and mono.tags["model"] == "tiny"


def test_hook_mirrors_only_the_aggregates_of_an_active_run(local_store, monkeypatch):
    client, _ = local_store
    monkeypatch.delenv("MLFLOW_NESTED_RUN", raising=False)
    hook = MlflowResultsHook()
    hook.after_dataset_saved("report_aggregates", AGG, node=None)  # no active run: nothing, no error
    with mlflow.start_run() as run:
        hook.before_pipeline_run({}, None, None)
        # transformers' MLflowCallback nests each mix's training in the run.
        assert os.environ["MLFLOW_NESTED_RUN"] == "TRUE"
        hook.after_dataset_saved("report_significance", AGG, node=None)
        assert client.get_run(run.info.run_id).data.metrics == {}
        hook.after_dataset_saved("report_aggregates", AGG, node=None)
        assert "mono/chat/io_lang_agreement/de" in client.get_run(run.info.run_id).data.metrics
        hook.after_pipeline_run({}, None, None)
    assert "MLFLOW_NESTED_RUN" not in os.environ


def test_each_mix_trains_in_a_nested_run_and_the_parent_stays_open(local_store, monkeypatch, tmp_path):
    import gc

    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    client, experiment_id = local_store
    monkeypatch.delenv("MLFLOW_NESTED_RUN", raising=False)
    assert trainer_callbacks() == [], "no run: no callback (it would open a run of its own)"
    config = LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1)
    rows = Dataset.from_list([{"input_ids": [1, 2, 3, 4], "labels": [1, 2, 3, 4]}] * 4)
    hook = MlflowResultsHook()
    with mlflow.start_run(run_name="__default__") as parent:
        hook.before_pipeline_run({}, None, None)
        for mix in ("mono", "multi3"):
            torch.manual_seed(0)
            args = TrainingArguments(output_dir=str(tmp_path / mix), max_steps=2, logging_steps=1, report_to="none",
                                     run_name=mix, use_cpu=True, disable_tqdm=True, save_strategy="no")
            trainer = Trainer(model=LlamaForCausalLM(config), args=args, train_dataset=rows,
                              callbacks=trainer_callbacks())
            trainer.train()
            del trainer
            gc.collect()  # transformers' own callback ends the active (parent) run here
            assert mlflow.active_run().info.run_id == parent.info.run_id, mix
        hook.after_pipeline_run({}, None, None)
    children = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    assert sorted(c.info.run_name for c in children) == ["mono", "multi3"]
    for child in children:
        assert "loss" in child.data.metrics and child.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "loss")] == [1, 2]


def test_hook_logs_the_saved_version_of_report_and_figures(local_store, tmp_path):
    from kedro.io import DataCatalog
    from matplotlib.figure import Figure

    client, _ = local_store
    catalog = DataCatalog.from_config({
        "report_html": {"type": "text.TextDataset", "filepath": str(tmp_path / "report.html"), "versioned": True},
        "report_figures": {"type": "matplotlib.MatplotlibDataset", "filepath": str(tmp_path / "figures"),
                           "versioned": True, "save_args": {"format": "png"}},
    })
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    hook = MlflowResultsHook()
    hook.after_catalog_created(catalog)
    with mlflow.start_run() as run:
        for name, data in (("report_html", "<html>first</html>"), ("report_figures", {"fig1_x.png": figure})):
            catalog.save(name, data)
            hook.after_dataset_saved(name, data, node=None)
    run_id = run.info.run_id
    assert [a.path for a in client.list_artifacts(run_id, "reporting")] == ["reporting/figures", "reporting/report.html"]
    assert [a.path for a in client.list_artifacts(run_id, "reporting/figures")] == ["reporting/figures/fig1_x.png"]
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="reporting/report.html",
                                                dst_path=str(tmp_path / "dl"))
    assert Path(local).read_text() == "<html>first</html>"


def test_a_users_nested_setting_is_kept(local_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_NESTED_RUN", "false")
    hook = MlflowResultsHook()
    with mlflow.start_run():
        hook.before_pipeline_run({}, None, None)
        hook.after_pipeline_run({}, None, None)
    assert os.environ["MLFLOW_NESTED_RUN"] == "false"


def test_conf_base_mlflow_yml_is_a_valid_kedro_mlflow_config(repo_root: Path):
    import yaml
    from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig

    config = KedroMlflowConfig.model_validate(yaml.safe_load((repo_root / "conf/base/mlflow.yml").read_text()))
    assert config.server.mlflow_tracking_uri == "sqlite:///mlflow.db"
    assert config.tracking.params.long_params_strategy != "fail"


# --------------------------------------------------------------------------- the embedded default run


def _versions(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def tracked(default_run: Path):
    client = mlflow.MlflowClient(f"sqlite:///{default_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("polyglot_kedro")
    assert experiment is not None, "no 'polyglot_kedro' experiment in the project's mlflow.db"
    runs = client.search_runs([experiment.experiment_id], "tags.mlflow.runName = '__default__'",
                              order_by=["attributes.start_time ASC"])
    assert runs, "kedro run left no '__default__' MLflow run"
    # one run per kedro run: kedro-mlflow's own plugin hook is replaced, not doubled
    top = [r for r in runs if PARENT_TAG not in r.data.tags]
    assert len(top) == 1, f"{len(top)} top-level '__default__' runs for one kedro run"
    return default_run, client, runs[0]


def test_default_run_is_one_finished_mlflow_run_with_its_parameters(tracked):
    project, client, run = tracked
    assert run.info.status == "FINISHED"
    params = run.data.params
    # Resolved parameters, flattened (conf/base/mlflow.yml): what the nodes read.
    assert params["model"] == "tiny_llama"
    assert params["mixes.multi3.n_languages"] == "3"
    assert "reporting.n_boot" in params
    assert run.data.tags["kedro_command"].startswith("kedro run")


def test_default_run_has_one_metric_per_language_and_a_nested_run_per_mix(tracked):
    project, client, run = tracked
    (csv,) = [v / "aggregates.csv" for v in _versions(project / "data/08_reporting/aggregates.csv")][-1:]
    aggregates = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    chat = aggregates[(aggregates["metric"] == "io_lang_agreement") & aggregates["mean"].notna()]
    assert chat["lang"].nunique() >= 10
    # the embedded grid has two model sizes (Fig. 7): run-level keys then start with the model
    assert chat["model"].nunique() == 2
    for row in chat.itertuples():
        key = f"{row.model}/{row.mix}/chat/io_lang_agreement/{row.lang}"
        assert run.data.metrics[key] == pytest.approx(row.mean), key
    children = client.search_runs([run.info.experiment_id], f"tags.`{PARENT_TAG}` = '{run.info.run_id}'")
    by_cell = {(c.data.tags.get(MODEL_TAG), c.data.tags.get(MIX_TAG)): c for c in children}
    assert set(zip(chat["model"], chat["mix"])) <= set(by_cell)
    some = chat.iloc[0]
    metric = f"chat/io_lang_agreement/{some['lang']}"
    assert by_cell[(some["model"], some["mix"])].data.metrics[metric] == pytest.approx(some["mean"])


def test_default_run_logs_the_report_and_figures_as_artifacts(tracked):
    # The files of this run's versions, not every version in data/08_reporting.
    project, client, run = tracked
    names = {a.path for a in client.list_artifacts(run.info.run_id, "reporting")}
    assert "reporting/report.html" in names
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "reporting/figures")}
    assert any(Path(f).name.startswith("fig1_io_lang_agreement") for f in figures), figures
