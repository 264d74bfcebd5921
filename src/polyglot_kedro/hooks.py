"""Start-up hooks: fail before any node runs when the configuration is wrong,
and hand API keys from ``conf/local/credentials.yml`` to the LLM client."""

from __future__ import annotations

import logging
import os
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from polyglot_kedro.config import mix_specs, resolve_model

logger = logging.getLogger(__name__)


class ValidateParamsHook:
    """Validates ``model`` against the registry and the mix grid, once per run."""

    @hook_impl
    def after_context_created(self, context) -> None:
        params = context.params
        if "models" in params and "model" in params:
            spec = resolve_model(params["models"], params["model"])
            logger.info("Model %r (%s)", spec.name, spec.hub_id or spec.local_path or spec.gguf_file or "built locally")
        if "mixes" in params:
            mix_specs(params["mixes"])


def export_llm_keys(credentials: dict[str, Any], endpoints: dict[str, Any], environ=os.environ) -> list[str]:
    """Put endpoint API keys from Kedro credentials where the client reads them.

    ``credentials.yml`` may hold ``llm_endpoint: {api_key}`` (every endpoint)
    and/or ``llm_endpoints: {<name>: {api_key}}`` (one endpoint). Each key goes
    into the environment variable named by that endpoint's ``api_key_env``
    (default ``OPENAI_API_KEY``) -- the variable the openai SDK and our client
    read -- unless the variable is already set (the environment wins). The key
    itself is never logged.

    Returns:
        The names of the variables that were set.
    """
    default = (credentials.get("llm_endpoint") or {}).get("api_key")
    per_endpoint = credentials.get("llm_endpoints") or {}
    exported = []
    for name, cfg in (endpoints or {}).items():
        key = (per_endpoint.get(name) or {}).get("api_key") or default
        var = (cfg or {}).get("api_key_env", "OPENAI_API_KEY")
        if key and not environ.get(var):
            environ[var] = str(key)
            exported.append(var)
    return exported


class LLMCredentialsHook:
    """Reads ``conf/<env>/credentials.yml`` once per run (see ``export_llm_keys``)."""

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            credentials = context.config_loader["credentials"]
        except (KeyError, MissingConfigException):  # no credentials file in any environment
            return
        exported = export_llm_keys(credentials or {}, context.params.get("llm_endpoints", {}))
        if exported:
            logger.info("LLM API key(s) from credentials.yml exported to %s", ", ".join(sorted(set(exported))))
