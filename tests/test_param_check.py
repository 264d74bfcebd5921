"""Every stage's parameters are validated at start-up, in every environment of conf/."""

from __future__ import annotations

import os
import shutil

import pytest

from polyglot_kedro.param_check import ParameterError, known_top_level_keys, validate_parameters
from polyglot_kedro.project_config import conf_envs, load_parameters

from .test_hooks import _run_session_script


@pytest.mark.parametrize("env", ["local", *conf_envs(os.path.join(os.path.dirname(__file__), "..", "conf"))])
def test_every_environment_validates_every_stage(repo_root, env):
    params = load_parameters(repo_root / "conf", env)
    built = validate_parameters(params, conf_source=repo_root / "conf", env=env)
    assert set(built) == set(params)  # every top-level key has its typed object
    assert {"data_mixing", "finetuning", "inference", "judging", "reporting", "translation"} <= set(built)


@pytest.fixture
def conf_with(tmp_path, repo_root):
    """A copy of conf/ plus an environment ``typo`` whose parameters.yml is the given text."""

    def make(text: str):
        conf = tmp_path / "conf"
        shutil.copytree(repo_root / "conf", conf, ignore=shutil.ignore_patterns("credentials.yml"))
        (conf / "typo").mkdir()
        (conf / "typo" / "parameters.yml").write_text(text)
        return conf

    return make


def test_misspelt_top_level_key_names_key_file_and_valid_keys(conf_with):
    conf = conf_with("llm_endpoint:\n  judge: {backend: openai, model: gpt-3.5-turbo-0613}\n")
    with pytest.raises(ParameterError) as info:
        validate_parameters(load_parameters(conf, "typo"), conf_source=conf, env="typo")
    message = str(info.value)
    assert "params:llm_endpoint: unknown top-level key" in message
    assert "conf/typo/parameters.yml" in message
    assert "'llm_endpoints'" in message and "'reporting'" in message  # the valid keys are listed
    assert set(known_top_level_keys()) >= {"model", "models", "mixes", "language_groups", "llm_endpoints"}


def test_nested_typos_and_bad_values_are_all_reported(conf_with):
    conf = conf_with(
        "reporting:\n  plateua: {delta: {default: 0.1}}\n"
        "llm_endpoints:\n  judge: {temprature: 0.2}\n"
        "finetuning:\n  lora: {r: many}\n"
    )
    with pytest.raises(ParameterError) as info:
        validate_parameters(load_parameters(conf, "typo"), conf_source=conf, env="typo")
    message = str(info.value)
    assert "params:reporting.plateua: unknown key (in conf/typo/parameters.yml)" in message
    assert "'plateau'" in message  # among the valid keys under reporting
    assert "params:llm_endpoints.judge.temprature: unknown key" in message and "'temperature'" in message
    assert "params:finetuning.lora.r:" in message and "many" not in message  # the field, not its value
    assert "3 parameter problem(s)" in message


def test_an_endpoint_name_that_does_not_exist_is_an_error(conf_with):
    conf = conf_with("translation:\n  endpoint: translater\n")
    with pytest.raises(ParameterError, match=r"params:translation.endpoint: 'translater' is not an endpoint"):
        validate_parameters(load_parameters(conf, "typo"), conf_source=conf, env="typo")


def test_a_planted_typo_fails_at_start_up_before_any_node(project_copy):
    (project_copy / "conf" / "typo").mkdir()
    (project_copy / "conf" / "typo" / "parameters.yml").write_text("reporting:\n  n_bot: 10\n")
    script = (
        "from polyglot_kedro.param_check import ParameterError\n"
        "try:\n"
        "    with KedroSession.create(os.getcwd(), env='typo') as s:\n"
        "        s.load_context()\n"
        "    print('NO_ERROR')\n"
        "except ParameterError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    env = {**os.environ, "KEDRO_ENV": "typo"}  # the registry is built for the same env: only the typo is wrong
    result = _run_session_script(project_copy, script, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERROR" in result.stdout and "NO_ERROR" not in result.stdout, result.stdout[-2000:]
    assert "params:reporting.n_bot: unknown key (in conf/typo/parameters.yml)" in result.stdout
    assert "'n_boot'" in result.stdout
