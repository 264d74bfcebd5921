"""One way to read the config: ``kedro run`` and ``scripts/train_accelerate.py`` resolve the same parameters."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from polyglot_kedro.project_config import conf_envs, env_from_cli, resolve_env

from .conftest import copy_project

_SESSION = """
import json, os, sys
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
bootstrap_project(os.getcwd())
out = {}
for env, runtime in json.loads(sys.argv[1]):
    with KedroSession.create(os.getcwd(), env=env, runtime_params=runtime or None) as session:
        out[f"{env}|{json.dumps(runtime)}"] = session.load_context().config_loader["parameters"]["finetuning"]
print("JSON" + json.dumps(out))
"""


def _train_accelerate(repo_root):
    spec = importlib.util.spec_from_file_location("train_accelerate", repo_root / "scripts" / "train_accelerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_env_of_conf_is_found(repo_root):
    envs = conf_envs(repo_root / "conf")
    assert {"base", "paper", "demo"} <= set(envs)
    assert not {"accelerate", "skypilot"} & set(envs)  # launcher configs, not Kedro environments


def test_kedro_run_and_train_accelerate_resolve_identical_finetuning_parameters(repo_root, tmp_path):
    envs = conf_envs(repo_root / "conf")
    cases = [(env, {}) for env in envs] + [("paper", {"finetuning": {"max_steps": 7}})]
    session = {}
    # One interpreter per env (the pipeline registry is built once per process, for KEDRO_ENV), all started at
    # once: each spends its seconds importing and bootstrapping, so they share the cores instead of queueing.
    # Each on its own copy of the project (conf/ as in the repo): sessions side by side on one folder would
    # race to create its MLflow store (kedro-mlflow's sqlite:///mlflow.db).
    procs = {}
    for env in envs:
        mine = [c for c in cases if c[0] == env]
        (tmp_path / env).mkdir()
        project = copy_project(tmp_path / env)
        procs[env] = subprocess.Popen([sys.executable, "-c", _SESSION, json.dumps(mine)], cwd=project,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "KEDRO_ENV": env})  # fmt: skip
    try:
        for env, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, (env, stderr[-3000:])
            session.update(json.loads(stdout.split("JSON", 1)[1]))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    script = _train_accelerate(repo_root)
    for env, runtime in cases:
        overrides = [f"finetuning.{k}={v}" for k, v in runtime.get("finetuning", {}).items()]
        ours = script.load_parameters(str(repo_root / "conf"), env, overrides)["finetuning"]
        assert ours == session[f"{env}|{json.dumps(runtime)}"], env
    assert session[f"paper|{json.dumps(cases[-1][1])}"]["max_steps"] == 7


def test_env_precedence_is_kedros(monkeypatch):
    """An explicit --env wins over KEDRO_ENV (KedroSession.create: ``env or os.getenv("KEDRO_ENV")``)."""
    monkeypatch.setenv("KEDRO_ENV", "demo")
    assert resolve_env("paper") == "paper"
    assert resolve_env(argv=["kedro", "run", "--env", "paper"]) == "paper"
    assert resolve_env(argv=["kedro", "run"]) == "demo"
    monkeypatch.delenv("KEDRO_ENV")
    assert resolve_env(argv=["kedro", "run"]) == "local"
    assert env_from_cli(["kedro", "run", "-e", "demo"]) == "demo"
    assert env_from_cli(["kedro", "run", "--env=paper"]) == "paper"


@pytest.mark.parametrize("argv", [["kedro", "run", "--env", "paper"], ["kedro", "run", "--env=paper"]])
def test_grid_builds_the_mixes_of_the_cli_env_even_with_kedro_env_set(repo_root, monkeypatch, argv):
    from polyglot_kedro.grid import load_mixes

    monkeypatch.setenv("KEDRO_ENV", "demo")
    monkeypatch.setattr(sys, "argv", argv)
    assert set(load_mixes(repo_root)) == set(load_mixes(repo_root, env="paper"))
    assert set(load_mixes(repo_root)) != set(load_mixes(repo_root, env="demo"))
