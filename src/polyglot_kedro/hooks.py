"""Start-up checks: fail before any node runs when the configuration is wrong."""

from __future__ import annotations

import logging

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
