"""The job plan and its sbatch scripts, on a small synthetic project (no SLURM, no Kedro session)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node, pipeline

from polyglot_kedro.cluster.config import ClusterConfig, cluster_config
from polyglot_kedro.cluster.plan import array_spec, build_jobs, dependency_graph, job_commands, render_script
from polyglot_kedro.cluster.session import validate_run_id

RUN_ID = "2026-12-01T09.38.23.123Z"


def _f(*args):
    return 0


def _f2(*args):
    return 0, 0


def _pipelines() -> dict[str, Pipeline]:
    """data_mixing (shared) -> finetuning per trained mix -> inference per mix (+ a shared node) -> reporting."""
    mixing = Pipeline([node(_f, "raw", "train_mix_all", name="mix_data"),
                       node(_f, "train_mix_all", "mono.train_mix", name="split_mono"),
                       node(_f, "train_mix_all", "multi2.train_mix", name="split_multi2")])  # fmt: skip
    tune = Pipeline([node(_f2, ["train_mix", "base_model"], ["adapter", "training_metrics"], name="train_adapter")])
    finetuning = sum((pipeline(tune, namespace=m, inputs={"base_model"}) for m in ("mono", "multi2")), Pipeline([]))
    infer = Pipeline([node(_f, ["model", "eval_prompts"], "generations", name="generate")])
    inference = Pipeline([node(_f, "raw", "eval_prompts", name="build_eval_prompts")])
    for m in ("mono", "multi2", "base"):
        src = {"model": "base_model" if m == "base" else f"{m}.adapter", "eval_prompts": "eval_prompts"}
        inference += pipeline(infer, namespace=m, inputs=src)
    reporting = Pipeline([node(_f, [f"{m}.generations" for m in ("mono", "multi2", "base")], "report", name="report")])
    return {"data_mixing": mixing, "finetuning": finetuning, "inference": inference, "reporting": reporting}


def _catalog(tmp_path) -> DataCatalog:
    return DataCatalog.from_config(_catalog_conf(tmp_path), save_version=RUN_ID)


def _catalog_conf(tmp_path) -> dict:
    return {
        "{mix}.train_mix": {"type": "pandas.CSVDataset", "filepath": f"{tmp_path}/train/{{mix}}.csv", "versioned": True},
        "{mix}.adapter": {"type": "pandas.CSVDataset", "filepath": f"{tmp_path}/adapters/{{mix}}.csv", "versioned": True},
        "{mix}.generations": {"type": "pandas.CSVDataset", "filepath": f"{tmp_path}/gen/{{mix}}.csv", "versioned": True},
        "eval_prompts": {"type": "pandas.CSVDataset", "filepath": f"{tmp_path}/eval.csv"},  # not versioned
        "report": {"type": "pandas.CSVDataset", "filepath": f"{tmp_path}/report.csv", "versioned": True},
    }  # fmt: skip


def _cfg(**jobs) -> ClusterConfig:
    return cluster_config({"cluster": {"prepare": ["data_mixing"], "per_mix": ["finetuning", "inference"],
                                       "final": ["reporting"], "jobs": jobs}})  # fmt: skip


def test_jobs_and_dependencies_follow_the_registry(tmp_path):
    jobs = {j.key: j for j in build_jobs(_cfg(), _pipelines(), _catalog(tmp_path), RUN_ID)}
    assert list(jobs) == ["prepare", "finetuning", "inference", "inference-after-prepare", "final"]
    # mixes are the namespaces; one index per mix across arrays (sorted: base, mono, multi2)
    assert jobs["finetuning"].mixes == ["mono", "multi2"] and jobs["finetuning"].indices == [1, 2]
    assert jobs["inference"].mixes == ["mono", "multi2"] and jobs["inference"].indices == [1, 2]
    assert [(d.kind, d.job) for d in jobs["inference"].depends] == [("aftercorr", "finetuning")]
    # the untuned mix has no finetuning task: its inference waits on prepare only
    assert jobs["inference-after-prepare"].mixes == ["base"]
    assert [(d.kind, d.job) for d in jobs["inference-after-prepare"].depends] == [("afterok", "prepare")]
    assert {(d.kind, d.job) for d in jobs["final"].depends} == {
        ("afterok", k) for k in ("prepare", "finetuning", "inference", "inference-after-prepare")}
    # the shared node of a per-mix stage runs once, in prepare
    assert jobs["prepare"].steps == [{"pipelines": ["data_mixing"], "nodes": []},
                                     {"pipelines": ["inference"], "nodes": ["build_eval_prompts"]}]  # fmt: skip


def test_versions_are_pinned_to_the_run_id(tmp_path):
    jobs = {j.key: j for j in build_jobs(_cfg(), _pipelines(), _catalog(tmp_path), RUN_ID)}
    # reads and writes of versioned datasets the grid produces; never unversioned ones or raw inputs
    assert jobs["finetuning"].load_versions["mono"] == ["mono.adapter", "mono.train_mix"]
    assert jobs["inference"].load_versions["multi2"] == ["multi2.adapter", "multi2.generations"]
    assert "eval_prompts" not in jobs["inference"].load_versions["multi2"]
    assert jobs["finetuning"].outputs["mono"] == [f"{tmp_path}/adapters/mono.csv/{RUN_ID}"]
    cmd = job_commands(jobs["inference"], "mono", env="demo", run_id=RUN_ID, kedro="kedro")
    assert cmd == [f"kedro run --env demo --pipelines inference --namespaces mono "
                   f"--load-versions mono.adapter:{RUN_ID},mono.generations:{RUN_ID}"]  # fmt: skip
    with pytest.raises(ValueError, match="not a task of job 'finetuning'"):
        job_commands(jobs["finetuning"], "base", env="demo", run_id=RUN_ID, kedro="kedro")


def test_scripts_carry_resources_requeue_and_are_valid_bash(tmp_path):
    cfg = _cfg(finetuning={"requeue": True, "signal_before_s": 90, "gpus": 4, "gpu_type": "a100", "time": "08:00:00",
                           "extra_sbatch": ["--constraint=a100"], "setup": ["module load cuda"], "max_parallel": 2})  # fmt: skip
    jobs = build_jobs(cfg, _pipelines(), _catalog(tmp_path), RUN_ID)
    scripts = {j.key: render_script(j, cfg, env="paper", run_id=RUN_ID, project_path=tmp_path, kedro="/venv/bin/kedro",
                                     log_dir=tmp_path / "logs") for j in jobs}  # fmt: skip
    ft = scripts["finetuning"]
    for line in ("#SBATCH --array=1-2%2", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@90", "#SBATCH --gpus=a100:4",
                 "#SBATCH --time=08:00:00", "#SBATCH --constraint=a100", "module load cuda",
                 f"export POLYGLOT_GRID_RUN_ID={RUN_ID}", "trap on_usr1 USR1", 'scontrol requeue "$SLURM_JOB_ID"'):  # fmt: skip
        assert line in ft, line
    assert "#SBATCH --no-requeue" in scripts["inference"] and "--requeue\n" not in scripts["inference"]
    assert '--namespaces "$MIX"' in ft and "--namespaces" not in scripts["final"]
    if shutil.which("bash"):
        for key, text in scripts.items():
            (tmp_path / f"{key}.sh").write_text(text)
            proc = subprocess.run(["bash", "-n", str(tmp_path / f"{key}.sh")], capture_output=True, text=True)
            assert proc.returncode == 0, (key, proc.stderr)
    assert [array_spec(x) for x in ([0, 1, 2, 5], [3], [0, 2, 3, 4, 7, 8])] == ["0-2,5", "3", "0,2-4,7-8"]
    graph = dependency_graph(jobs)
    assert "[1] mono" in graph and "after finetuning[1]" in graph


def test_bad_cluster_config_names_the_key():
    with pytest.raises(ValueError, match="cluster.jobs.finetuning"):
        _cfg(finetuning={"launcher": "accelerate"})  # no accelerate_config
    with pytest.raises(ValueError, match="unknown job"):
        _cfg(finetunign={"gpus": 1})
    with pytest.raises(ValueError, match="both cluster.prepare and cluster.final"):
        cluster_config({"cluster": {"prepare": ["reporting"], "per_mix": ["finetuning"], "final": ["reporting"]}})
    with pytest.raises(ValueError, match="not a registered pipeline"):
        cfg = cluster_config({"cluster": {"prepare": ["nope"], "per_mix": ["finetuning"], "final": []}})
        build_jobs(cfg, _pipelines(), DataCatalog(), RUN_ID)
    with pytest.raises(ValueError, match="not a Kedro version string"):
        validate_run_id("2026-12-01 09:38")


def test_accelerate_launcher_trains_on_the_pinned_train_mix_first(tmp_path):
    cfg = _cfg(finetuning={"launcher": "accelerate", "accelerate_config": "conf/accelerate/ddp.yaml", "gpus": 4})
    catalog = _catalog(tmp_path)
    catalog["base_model"] = str(tmp_path / "base")  # a plain path: not a file dataset
    with pytest.raises(ValueError, match="has no file path for the accelerate launcher"):
        build_jobs(cfg, _pipelines(), catalog, RUN_ID)
    catalog = DataCatalog.from_config({**_catalog_conf(tmp_path),
                                       "base_model": {"type": "pandas.CSVDataset", "filepath": f"{tmp_path}/base.csv"}},
                                      save_version=RUN_ID)  # fmt: skip
    jobs = {j.key: j for j in build_jobs(cfg, _pipelines(), catalog, RUN_ID)}
    text = render_script(jobs["finetuning"], cfg, env="paper", run_id=RUN_ID, project_path=tmp_path,
                         kedro="/venv/bin/kedro", log_dir=tmp_path / "logs")  # fmt: skip
    launch = text.index("/venv/bin/accelerate launch --config_file conf/accelerate/ddp.yaml scripts/train_accelerate.py")
    assert launch < text.index("/venv/bin/kedro run --env paper --pipelines finetuning")
    assert f"[1]={tmp_path}/train/mono.csv/{RUN_ID}/mono.csv" in text
    cmds = job_commands(jobs["finetuning"], "mono", env="paper", run_id=RUN_ID, kedro="kedro",
                        accelerate_config="conf/accelerate/ddp.yaml")  # fmt: skip
    assert cmds[0].startswith("accelerate launch") and cmds[1].startswith("kedro run")
