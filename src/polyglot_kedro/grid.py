"""The experiment grid as pipeline_registry sees it.

Kedro builds pipelines before the run's parameters exist, so the registry
reads the mix names straight from the configuration, as Kedro's docs on
dynamic pipelines do. The environment is ``KEDRO_ENV`` (or ``--env``, which
the CLI exports before pipelines are built; see ``settings``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kedro.config import OmegaConfigLoader

from polyglot_kedro.config import MixSpec, mix_specs


def load_mixes(project_path: str | Path | None = None, env: str | None = None) -> dict[str, MixSpec]:
    """Read and validate ``params:mixes`` for ``env`` (default: ``KEDRO_ENV``)."""
    project_path = Path(project_path or os.environ.get("POLYGLOT_PROJECT_PATH", Path.cwd()))
    env = env or os.environ.get("KEDRO_ENV") or _env_from_cli() or "local"
    # Same loader settings as the run itself (settings.CONFIG_LOADER_ARGS), so
    # the namespaces built here are exactly the mixes the nodes will see.
    from polyglot_kedro.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(project_path / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return mix_specs(loader["parameters"].get("mixes", {}))


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
