"""Start-up hooks: credentials.yml keys reach the LLM client, never the logs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from polyglot_kedro.hooks import export_llm_keys

ENDPOINTS = {"judge": {"api_key_env": "JUDGE_KEY"}, "translator": {}}


_BOOTSTRAP = (
    "import os\n"
    "from kedro.framework.session import KedroSession\n"
    "from kedro.framework.startup import bootstrap_project\n"
    "bootstrap_project(os.getcwd())\n"
)


def _run_session_script(project, body: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``body`` after bootstrapping ``project``, in a fresh interpreter (hooks and resolvers are global)."""
    return subprocess.run([sys.executable, "-c", _BOOTSTRAP + body], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_default_and_per_endpoint_keys():
    env: dict[str, str] = {}
    exported = export_llm_keys(
        {"llm_endpoint": {"api_key": "sk-default"}, "llm_endpoints": {"judge": {"api_key": "sk-judge"}}}, ENDPOINTS, env
    )
    assert env == {"JUDGE_KEY": "sk-judge", "OPENAI_API_KEY": "sk-default"}
    assert sorted(exported) == ["JUDGE_KEY", "OPENAI_API_KEY"]


def test_environment_wins_and_missing_keys_are_skipped():
    env = {"OPENAI_API_KEY": "sk-from-env"}
    assert export_llm_keys({"llm_endpoint": {"api_key": "sk-file"}}, ENDPOINTS, env) == ["JUDGE_KEY"]
    assert env["OPENAI_API_KEY"] == "sk-from-env"
    assert export_llm_keys({}, ENDPOINTS, {}) == []


def test_credentials_file_reaches_the_run_without_being_logged(project_copy):
    (project_copy / "conf" / "local" / "credentials.yml").write_text("llm_endpoint:\n  api_key: sk-hook-SECRET-7\n")
    script = (
        "with KedroSession.create(os.getcwd()) as s:\n"
        "    s.load_context()\n"
        "print('KEY_SET' if os.environ.get('OPENAI_API_KEY') == 'sk-hook-SECRET-7' else 'KEY_MISSING')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = _run_session_script(project_copy, script, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "KEY_SET" in result.stdout
    assert "sk-hook-SECRET-7" not in result.stdout.replace("KEY_SET", "") + result.stderr
    assert "OPENAI_API_KEY" in result.stdout + result.stderr  # the variable name is logged, not its value


def test_no_credentials_file_is_fine(project_copy):
    assert not list((project_copy / "conf").rglob("credentials*.yml"))
    script = (
        "with KedroSession.create(os.getcwd()) as s:\n"
        "    s.load_context()\n"
        "print('CONTEXT_OK')\n"
    )
    result = _run_session_script(project_copy, script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CONTEXT_OK" in result.stdout


def test_paper_env_resolves_paper_sources_after_the_registry_is_built(project_copy):
    """Building the pipelines must not pin ${globals:...} to another environment."""
    script = (
        "from kedro.framework.project import pipelines\n"
        "with KedroSession.create(os.getcwd(), env='paper') as s:\n"
        "    ctx = s.load_context()\n"
        "    assert 'mt_multi2' in str(list(pipelines['__default__'].nodes))\n"
        "    print('SOURCE', ctx.catalog.get('guanaco_raw')._describe()['source'])\n"
        "    print('MODEL', ctx.params['model'])\n"
    )
    # Programmatic sessions name the env for the registry through KEDRO_ENV (the CLI's --env is read from argv).
    env = {**os.environ, "KEDRO_ENV": "paper"}
    result = _run_session_script(project_copy, script, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SOURCE timdettmers/openassistant-guanaco" in result.stdout
    assert "MODEL llama2_7b" in result.stdout


# -- one environment: the registry's mixes are the run's mixes (issue 15) -------------------


def test_mix_grid_check_names_both_sets():
    from kedro.pipeline import Pipeline, node, pipeline

    from polyglot_kedro.hooks import check_mix_grid, registry_mixes

    def ident(x):
        return x

    base = Pipeline([node(ident, "a", "b", name="copy")])
    registry = {"__default__": pipeline(base, namespace="mono") + pipeline(base, namespace="multi2")
                + Pipeline([node(ident, "b_all", "c", name="shared")])}  # fmt: skip
    assert registry_mixes(registry) == {"mono", "multi2"}
    check_mix_grid(registry_mixes(registry), {"mono": {"kind": "mono"}, "multi2": {}, "multi6": None})  # null = dropped
    with pytest.raises(ValueError) as info:
        check_mix_grid({"mono", "multi2"}, {"mono": {}, "multi2": {}, "mt_multi2": {}}, env="paper")
    message = str(info.value)
    assert "['mono', 'multi2']" in message and "['mono', 'mt_multi2', 'multi2']" in message
    assert "mt_multi2" in message and "'paper'" in message


def test_session_env_that_differs_from_the_registrys_fails_at_start_up(project_copy):
    """KedroSession(env='paper') while the registry was built for the default env: an error, not a mixed run."""
    script = (
        "try:\n"
        "    with KedroSession.create(os.getcwd(), env='paper') as s:\n"
        "        s.load_context()\n"
        "    print('NO_ERROR')\n"
        "except ValueError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_ENV"}
    result = _run_session_script(project_copy, script, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERROR" in result.stdout and "NO_ERROR" not in result.stdout, result.stdout[-2000:]
    assert "mt_multi2" in result.stdout and "params:mixes" in result.stdout


def test_mix_name_params_come_from_kedros_feed_dict_shape():
    """after_catalog_created gets Kedro's feed dict: the parameter tree under "parameters"."""
    from kedro.io import DataCatalog

    from polyglot_kedro.hooks import MixNameParamsHook, RunInfoHook

    params = {"mixes": {"mono": {"kind": "mono"}, "dropped": None, "multi2": {"kind": "multi", "n_languages": 2}}}
    feed = {"parameters": params, "params:mixes": params["mixes"]}
    catalog = DataCatalog()
    MixNameParamsHook().after_catalog_created(catalog=catalog, parameters=feed)
    assert catalog.load("params:mono.mix_name") == "mono"
    assert catalog.load("params:multi2.mix_name") == "multi2"
    assert "params:dropped.mix_name" not in catalog
    RunInfoHook().after_catalog_created(catalog=catalog, parameters=feed, save_version="v1", load_versions={})
    info = catalog.load("run_info")
    assert info["save_version"] == "v1" and len(info["params_sha256"]) == 64
    other = {"parameters": {"mixes": {"mono": {"kind": "mono"}}}}
    RunInfoHook().after_catalog_created(catalog=catalog, parameters=other, save_version="v1", load_versions={})
    assert catalog.load("run_info")["params_sha256"] != info["params_sha256"]
