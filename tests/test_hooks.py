"""Start-up hooks: credentials.yml keys reach the LLM client, never the logs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from polyglot_kedro.hooks import register_llm_keys

from .conftest import SideBySide, copy_project

ENDPOINTS = {
    "judge": {"backend": "openai", "model": "gpt-judge", "api_key_env": "JUDGE_KEY"},
    "translator": {"backend": "openai", "model": "gpt-mt", "base_url": "https://mt.example/v1"},
    "local": {"backend": "inprocess", "model": "base_model-inprocess"},
}


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


_CREDENTIALS_SCRIPT = (
    "import subprocess, sys\n"
    "from polyglot_kedro.llm import LLMEndpointConfig, resolve_api_key\n"
    "tr = {'backend': 'openai', 'model': 'gpt-x', 'base_url': 'https://api.example.com/v1'}\n"
    "rp = {'llm_endpoints': {'translator': tr}, 'translation': {'constrain_roles': False, 'max_turn_chars': None}}\n"
    "with KedroSession.create(os.getcwd(), runtime_params=rp) as s:\n"
    "    ctx = s.load_context()\n"
    "cfg = LLMEndpointConfig.model_validate(ctx.params['llm_endpoints']['translator'])\n"
    "print('KEY_SET' if resolve_api_key(cfg, None) == 'sk-hook-SECRET-7' else 'KEY_MISSING')\n"
    "print('ENV_CLEAN' if 'sk-hook-SECRET-7' not in repr(dict(os.environ)) else 'ENV_HAS_KEY')\n"
    "child = subprocess.run([sys.executable, '-c', 'import os; print(repr(dict(os.environ)))'],\n"
    "                       capture_output=True, text=True).stdout\n"
    "print('CHILD_CLEAN' if 'sk-hook-SECRET-7' not in child else 'CHILD_HAS_KEY')\n"
)
_NO_CREDENTIALS_SCRIPT = (
    "with KedroSession.create(os.getcwd()) as s:\n"
    "    s.load_context()\n"
    "print('CONTEXT_OK')\n"
)
_PAPER_ENV_SCRIPT = (
    "from kedro.framework.project import pipelines\n"
    "with KedroSession.create(os.getcwd(), env='paper') as s:\n"
    "    ctx = s.load_context()\n"
    "    assert 'mt_multi2' in str(list(pipelines['__default__'].nodes))\n"
    "    print('SOURCE', ctx.catalog.get('guanaco_raw')._describe()['source'])\n"
    "    print('MODEL', ctx.params['model'])\n"
)
_OTHER_ENV_SCRIPT = (
    "try:\n"
    "    with KedroSession.create(os.getcwd(), env='paper') as s:\n"
    "        s.load_context()\n"
    "    print('NO_ERROR')\n"
    "except ValueError as exc:\n"
    "    print('ERROR', exc)\n"
)


@pytest.fixture(scope="module")
def session_scripts(request, tmp_path_factory):
    """This module's session scripts, each in a fresh interpreter on its own project copy, started side by side."""

    def spec(name: str, body: str, env: dict | None, setup=None):
        def start() -> dict:
            project = copy_project(tmp_path_factory.mktemp(name))
            if setup:
                setup(project)
            return {"args": [sys.executable, "-c", _BOOTSTRAP + body], "cwd": project, "env": env, "timeout": 300,
                    "extra": {"project": project}}  # fmt: skip

        return start

    def write_credentials(project):
        (project / "conf" / "local" / "credentials.yml").write_text("llm_endpoint:\n  api_key: sk-hook-SECRET-7\n")

    without = lambda *names: {k: v for k, v in os.environ.items() if k not in names}  # noqa: E731
    runs = SideBySide(request, {
        "test_credentials_file_reaches_the_client_not_the_environment_nor_the_logs":
            spec("credentials", _CREDENTIALS_SCRIPT, without("OPENAI_API_KEY", "KEDRO_ENV"), write_credentials),
        "test_no_credentials_file_is_fine": spec("no_credentials", _NO_CREDENTIALS_SCRIPT, None),
        # Programmatic sessions name the env for the registry through KEDRO_ENV (the CLI's --env is read from argv).
        "test_paper_env_resolves_paper_sources_after_the_registry_is_built":
            spec("paper_env", _PAPER_ENV_SCRIPT, {**os.environ, "KEDRO_ENV": "paper"}),
        "test_session_env_that_differs_from_the_registrys_fails_at_start_up":
            spec("other_env", _OTHER_ENV_SCRIPT, without("KEDRO_ENV")),
    })  # fmt: skip
    yield runs
    runs.close()


@pytest.fixture
def key_registry(monkeypatch):
    """The client's in-process key registry, empty before and after; no key variables in the environment."""
    from polyglot_kedro.llm.client import clear_api_keys

    for var in ("OPENAI_API_KEY", "JUDGE_KEY"):
        monkeypatch.delenv(var, raising=False)
    clear_api_keys()
    yield
    clear_api_keys()


def test_keys_go_to_the_client_never_into_the_environment(key_registry, monkeypatch):
    from polyglot_kedro.llm import LLMEndpointConfig, resolve_api_key

    registered = register_llm_keys(
        {"llm_endpoint": {"api_key": "sk-default"}, "llm_endpoints": {"judge": {"api_key": "sk-judge"}}}, ENDPOINTS
    )
    assert registered == ["judge", "translator"]  # not the in-process endpoint: it needs no key
    assert "OPENAI_API_KEY" not in os.environ and "JUDGE_KEY" not in os.environ
    judge, translator = (LLMEndpointConfig.model_validate(ENDPOINTS[n]) for n in ("judge", "translator"))
    assert resolve_api_key(judge, None) == "sk-judge"
    assert resolve_api_key(translator, None) == "sk-default"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert resolve_api_key(translator, None) == "sk-from-env"  # the environment wins, as before
    assert register_llm_keys({}, ENDPOINTS) == []


def test_two_endpoints_one_slot_two_keys_is_an_error_naming_them_not_the_keys(key_registry):
    endpoints = {"a": {"backend": "openai", "model": "gpt-x"}, "b": {"backend": "openai", "model": "gpt-x"}}
    credentials = {"llm_endpoints": {"a": {"api_key": "sk-a-SECRET"}, "b": {"api_key": "sk-b-SECRET"}}}
    with pytest.raises(ValueError) as info:
        register_llm_keys(credentials, endpoints)
    assert "'a'" in str(info.value) and "'b'" in str(info.value) and "api_key_env" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_credentials_file_reaches_the_client_not_the_environment_nor_the_logs(session_scripts):
    result = session_scripts.result("test_credentials_file_reaches_the_client_not_the_environment_nor_the_logs")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "KEY_SET" in result.stdout and "ENV_CLEAN" in result.stdout and "CHILD_CLEAN" in result.stdout, result.stdout
    assert "sk-hook-SECRET-7" not in result.stdout + result.stderr
    assert "'translator'" in result.stdout + result.stderr  # the endpoint's name is logged, not the key


def test_no_credentials_file_is_fine(session_scripts):
    project = session_scripts.extra("test_no_credentials_file_is_fine")["project"]
    assert not list((project / "conf").rglob("credentials*.yml"))
    result = session_scripts.result("test_no_credentials_file_is_fine")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CONTEXT_OK" in result.stdout


def test_paper_env_resolves_paper_sources_after_the_registry_is_built(session_scripts):
    """Building the pipelines must not pin ${globals:...} to another environment."""
    result = session_scripts.result("test_paper_env_resolves_paper_sources_after_the_registry_is_built")
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


def test_session_env_that_differs_from_the_registrys_fails_at_start_up(session_scripts):
    """KedroSession(env='paper') while the registry was built for the default env: an error, not a mixed run."""
    result = session_scripts.result("test_session_env_that_differs_from_the_registrys_fails_at_start_up")
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


def test_node_times_are_written_slowest_first_and_on_failure(tmp_path):
    import json
    import time
    from types import SimpleNamespace

    from polyglot_kedro.hooks import NodeTimesHook

    hook = NodeTimesHook("out/node_times.json")
    hook.after_context_created(SimpleNamespace(project_path=str(tmp_path)))
    hook.before_pipeline_run()
    for name, seconds in (("quick", 0.0), ("slow", 0.05)):
        node = SimpleNamespace(name=name)
        hook.before_node_run(node)
        time.sleep(seconds)
        hook.after_node_run(node)
    hook.after_pipeline_run()
    written = json.loads((tmp_path / "out" / "node_times.json").read_text())
    assert list(written["nodes"]) == ["slow", "quick"] and written["nodes"]["slow"] >= 0.05
    assert written["total_node_s"] == round(sum(written["nodes"].values()), 1)
    assert set(written["before_nodes"]) == {"slow", "quick"} and written["pipeline_s"] >= written["total_node_s"]

    hook.before_pipeline_run()  # the next run starts afresh; a failed run keeps what finished
    hook.before_node_run(SimpleNamespace(name="done"))
    hook.after_node_run(SimpleNamespace(name="done"))
    hook.before_node_run(SimpleNamespace(name="fails"))
    hook.on_pipeline_error()
    assert list(json.loads((tmp_path / "out" / "node_times.json").read_text())["nodes"]) == ["done"]
