"""The experiment grid as pipeline_registry sees it.

Kedro builds pipelines before the run's parameters exist, so the registry
reads the mix names straight from the parameter files of ``conf/base`` and
the run's environment (``KEDRO_ENV``, or ``--env`` on the kedro command
line). The files are read with plain OmegaConf -- no Kedro config loader --
because a loader registers process-wide resolvers (``${globals:...}``) that
would then resolve the run's catalog against the wrong environment. Mixes
merge like the run's parameters do (soft merge, see ``settings``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

from polyglot_kedro.config import MixSpec, mix_specs

_PATTERNS = ("parameters*.yml", "parameters*.yaml", "parameters*/**/*.yml", "parameters*/**/*.yaml")


def load_mixes(project_path: str | Path | None = None, env: str | None = None) -> dict[str, MixSpec]:
    """Read and validate ``params:mixes`` for ``env`` (default: ``KEDRO_ENV``, ``--env``, else ``local``)."""
    project_path = Path(project_path or os.environ.get("POLYGLOT_PROJECT_PATH", Path.cwd()))
    env = env or os.environ.get("KEDRO_ENV") or _env_from_cli() or "local"
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


def _env_from_cli(argv: list[str] | None = None) -> str | None:
    """``--env``/``-e`` of a ``kedro run`` command line, if any.

    ``kedro run --env paper`` hands the env to the session but not to the
    pipeline registry, which is built first; the mix set may differ per env.
    """
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        if arg in ("--env", "-e") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
    return None
