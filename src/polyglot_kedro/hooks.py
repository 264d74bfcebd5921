"""Start-up hooks: fail before any node runs when the configuration is wrong,
give each mix's namespace its name, record what the run is (``run_info``),
and hand API keys from ``conf/local/credentials.yml`` to the LLM client (never to
``os.environ``, which every child process would inherit)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from polyglot_kedro.config import mix_models, mix_specs, resolve_model
from polyglot_kedro.pipelines import mix_name_inputs, mix_namespaces, model_name_inputs

logger = logging.getLogger(__name__)


def registry_mixes(pipelines: Any) -> set[str]:
    """The mixes the pipeline registry was built for: the mix namespaces of ``__default__``.

    Every namespace of this project is a mix (``pipelines.per_mix``) or, for
    the nodes tagged ``base_model``, a model a mix names
    (``pipelines.mix_namespaces``); the registry is built before the run's
    parameters exist, from ``grid.load_mixes``.
    """
    default = pipelines.get("__default__") if hasattr(pipelines, "get") else None
    if default is None:
        return set()
    return set(mix_namespaces(default))


def check_mix_grid(registry: set[str], mixes: dict[str, Any] | None, env: str | None = None) -> None:
    """The registry's mix set must equal the run's ``params:mixes`` (null mixes dropped).

    Raises:
        ValueError: naming both sets and what is only in each.
    """
    run = {name for name, spec in (mixes or {}).items() if spec is not None}
    if registry == run:
        return
    from polyglot_kedro.project_config import resolve_env

    raise ValueError(
        f"The pipeline registry was built for mixes {sorted(registry)} (environment {resolve_env()!r}: "
        f"--env on the command line, else KEDRO_ENV, else local), but the run's params:mixes "
        f"(environment {env!r}) are {sorted(run)}; only in the registry: {sorted(registry - run)}, only in "
        f"params:mixes: {sorted(run - registry)}. Name the environment once (kedro run --env ENV, or "
        f"KEDRO_ENV=ENV for a programmatic session) and change the grid in conf/<env>/parameters*.yml, "
        f"not with --params."
    )


class ValidateParamsHook:
    """Fails the run before any node when its configuration is wrong.

    Builds every stage's typed parameter object for the run's environment
    (``param_check.validate_parameters``: unknown keys at any level, invalid
    values, endpoint names), checks ``model`` against the registry, the mix
    grid's specs, and that the pipeline registry was built for the run's
    mixes (one environment).
    """

    @hook_impl
    def after_context_created(self, context) -> None:
        from polyglot_kedro.param_check import validate_parameters

        params = context.params
        if "models" in params and "model" in params:
            spec = resolve_model(params["models"], params["model"])
            logger.info("Model %r (%s)", spec.name, spec.hub_id or spec.local_path or spec.gguf_file or "built locally")
        validate_parameters(params, conf_source=getattr(context.config_loader, "conf_source", None), env=context.env)
        if "mixes" in params:
            from kedro.framework.project import pipelines

            check_mix_grid(registry_mixes(pipelines), params["mixes"], env=context.env)


def register_llm_keys(credentials: dict[str, Any], endpoints: dict[str, Any]) -> list[str]:
    """Hand endpoint API keys from Kedro credentials to the LLM client of this process.

    ``credentials.yml`` may hold ``llm_endpoint: {api_key}`` (every endpoint)
    and/or ``llm_endpoints: {<name>: {api_key}}`` (one endpoint). Each key is
    registered for its endpoint (``llm.client.register_api_key``: base URL,
    model, ``api_key_env``), not put into ``os.environ``, so child processes do
    not inherit it. A variable set in the environment still wins (the client
    reads it first). In-process endpoints need no key. Keys are never logged.

    Returns:
        The names of the endpoints that got a key.

    Raises:
        ValueError: two endpoints share a slot but have different keys; the
            message names the endpoints, never a key.
    """
    from polyglot_kedro.llm.client import api_key_slot, register_api_key

    default = (credentials.get("llm_endpoint") or {}).get("api_key")
    per_endpoint = credentials.get("llm_endpoints") or {}
    planned: dict[tuple, tuple[str, str]] = {}
    for name, cfg in sorted((endpoints or {}).items()):
        cfg = cfg or {}
        key = (per_endpoint.get(name) or {}).get("api_key") or default
        if not key or cfg.get("backend", "openai") != "openai":
            continue
        slot = api_key_slot(cfg)
        if slot in planned and planned[slot][1] != str(key):
            raise ValueError(
                f"credentials.yml gives endpoints {planned[slot][0]!r} and {name!r} different API keys, but they "
                f"share base_url, model and api_key_env {slot[2]!r}: give one of them its own api_key_env"
            )
        planned[slot] = (name, str(key))
    registered = []
    for name, cfg in sorted((endpoints or {}).items()):
        slot = api_key_slot(cfg or {}) if (cfg or {}).get("backend", "openai") == "openai" else None
        if slot in planned:
            register_api_key(cfg, planned[slot][1])
            registered.append(name)
    return registered


class LLMCredentialsHook:
    """Reads ``conf/<env>/credentials.yml`` once per run (see ``register_llm_keys``)."""

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            credentials = context.config_loader["credentials"]
        except (KeyError, MissingConfigException):  # no credentials file in any environment
            return
        registered = register_llm_keys(credentials or {}, context.params.get("llm_endpoints", {}))
        if registered:
            logger.info("LLM API key(s) from credentials.yml handed to the client for endpoint(s) %s",
                        ", ".join(repr(n) for n in registered))  # fmt: skip


class MixNameParamsHook:
    """Puts ``params:<mix>.mix_name`` (the mix's label, else its name) into the catalog for every mix of the
    run, and ``params:<model>.model`` (the key itself) for every model a mix names.

    ``per_mix`` namespaces the base pipelines' ``params:mix_name`` input, and
    the base-model pipeline of a model namespace reads ``params:<model>.model``;
    this is where their per-namespace values come from (no YAML lists the
    names twice).
    """

    @hook_impl
    def after_catalog_created(self, catalog, parameters: dict[str, Any]) -> None:
        mixes = mix_specs(run_parameters(parameters).get("mixes") or {})
        for name, value in {**mix_name_inputs(mixes), **model_name_inputs(mix_models(mixes))}.items():
            catalog[name] = value


def run_parameters(feed_dict: dict[str, Any] | None) -> dict[str, Any]:
    """The run's parameters from ``after_catalog_created``'s ``parameters`` argument.

    Kedro hands that hook its feed dict: the whole parameter tree under
    ``"parameters"`` beside one ``"params:<key>"`` entry per key.
    """
    return dict((feed_dict or {}).get("parameters") or {})


def git_state(path: str | Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout at ``path``; ``(None, None)`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                                capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def params_sha256(parameters: dict[str, Any]) -> str:
    """A stable hash of the resolved parameters (key order does not matter)."""
    blob = json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RunInfoHook:
    """Adds the free input dataset ``run_info``: what this run is, for the report's manifest.

    Keys: ``git_commit``, ``git_dirty``, ``env``, ``params_sha256``,
    ``save_version``, ``load_versions``, ``kedro_version``, ``python``. It is
    computed here, once, so reporting nodes stay pure.
    """

    def __init__(self) -> None:
        self._env: str | None = None
        self._project_path: Path | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._env = context.env
        self._project_path = Path(context.project_path)

    @hook_impl
    def after_catalog_created(self, catalog, parameters: dict[str, Any], save_version: str,
                              load_versions: dict[str, str]) -> None:
        import kedro

        commit, dirty = git_state(self._project_path or Path.cwd())
        catalog["run_info"] = {
            "git_commit": commit,
            "git_dirty": dirty,
            "env": self._env,
            "params_sha256": params_sha256(run_parameters(parameters)),
            "save_version": save_version,
            "load_versions": dict(load_versions or {}),
            "kedro_version": kedro.__version__,
            "python": platform.python_version(),
        }


class NodeTimesHook:
    """Writes each node's wall seconds to ``data/08_reporting/node_times.json`` after a run.

    Where a run's time went, slowest first, beside ``run_time.json`` (``make
    run``): the figures a profile of the embedded default starts from.
    ``nodes``: each node's function; ``before_nodes``: the time from the
    previous node's end (or the pipeline's start) to this node's start, i.e.
    saving the previous outputs, loading this node's inputs and the other
    hooks; ``pipeline_s``: first hook to last. Nodes of a failed run are
    written too, up to the failure. A run with ``--namespaces``/``--nodes``
    (a grid job) writes only its own nodes.
    """

    def __init__(self, path: str = "data/08_reporting/node_times.json") -> None:
        self._path = path
        self._project_path: Path | None = None
        self._started: dict[str, float] = {}
        self._times: dict[str, float] = {}
        self._before: dict[str, float] = {}
        self._t0 = self._last = 0.0

    @hook_impl
    def after_context_created(self, context) -> None:
        self._project_path = Path(context.project_path)

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._started, self._times, self._before = {}, {}, {}
        self._t0 = self._last = time.perf_counter()

    @hook_impl
    def before_node_run(self, node) -> None:
        now = time.perf_counter()
        self._started[node.name] = now
        self._before[node.name] = round(now - self._last, 2)

    @hook_impl
    def after_node_run(self, node) -> None:
        self._last = time.perf_counter()
        self._times[node.name] = round(self._last - self._started.pop(node.name, self._last), 2)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._write()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._write()

    def _write(self) -> None:
        if self._project_path is None or not self._times:
            return
        path = self._project_path / self._path
        path.parent.mkdir(parents=True, exist_ok=True)
        nodes = dict(sorted(self._times.items(), key=lambda kv: -kv[1]))
        before = dict(sorted(self._before.items(), key=lambda kv: -kv[1]))
        record = {"pipeline_s": round(time.perf_counter() - self._t0, 1), "total_node_s": round(sum(nodes.values()), 1),
                  "total_before_nodes_s": round(sum(before.values()), 1), "nodes": nodes, "before_nodes": before}  # fmt: skip
        tmp = path.with_name(f".{path.name}.{os.getpid()}")  # grid jobs of one project write it too
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
