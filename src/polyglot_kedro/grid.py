"""The experiment grid as pipeline_registry sees it.

Kedro builds pipelines before the run's parameters exist, so the registry
reads the mix names straight from the parameter files of ``conf/base`` and
the run's environment, with Kedro's precedence (``--env`` on the kedro
command line, else ``KEDRO_ENV``, else ``local``: ``project_config.resolve_env``). The files are read with plain OmegaConf -- no Kedro config loader --
because a loader registers process-wide resolvers (``${globals:...}``) that
would then resolve the run's catalog against the wrong environment. Mixes
merge like the run's parameters do (soft merge, see ``settings``).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.project_config import env_from_cli as _env_from_cli  # noqa: F401 - kept for callers
from polyglot_kedro.project_config import resolve_env

_PATTERNS = ("parameters*.yml", "parameters*.yaml", "parameters*/**/*.yml", "parameters*/**/*.yaml")


def load_mixes(project_path: str | Path | None = None, env: str | None = None) -> dict[str, MixSpec]:
    """Read and validate ``params:mixes`` for ``env`` (default: ``--env``, else ``KEDRO_ENV``, else ``local``)."""
    project_path = Path(project_path or os.environ.get("POLYGLOT_PROJECT_PATH", Path.cwd()))
    env = resolve_env(env)
    merged = OmegaConf.create({})
    for folder in dict.fromkeys(("base", env)):
        conf = project_path / "conf" / folder
        files = sorted({f for pattern in _PATTERNS for f in conf.glob(pattern)}) if conf.is_dir() else []
        for path in files:
            data = OmegaConf.load(path)
            if isinstance(data, dict) or OmegaConf.is_dict(data):
                if "mixes" in data:
                    merged = OmegaConf.merge(merged, {"mixes": data["mixes"]})
    mixes = OmegaConf.to_container(merged, resolve=False).get("mixes", {})
    return mix_specs(mixes)
