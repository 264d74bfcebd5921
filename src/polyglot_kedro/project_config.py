"""The one way to read this project's configuration outside a Kedro session.

``kedro run`` builds its config loader from ``settings.py``
(``CONFIG_LOADER_CLASS`` with ``CONFIG_LOADER_ARGS``: parameters merge
softly, so ``conf/paper`` holds only what differs), with the run's
environment and ``--params`` as runtime parameters. Scripts that run outside
a session (``scripts/train_accelerate.py`` under ``accelerate launch``), the
pipeline registry's grid and the start-up checks call this module, so they
read the same files with the same merge, the same environment precedence and
the same override mechanism.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# What makes a folder of conf/ a Kedro environment (the loader's default patterns).
_ENV_PATTERNS = ("parameters*.yml", "parameters*.yaml", "catalog*.yml", "catalog*.yaml", "globals*.yml",
                 "globals*.yaml", "parameters*/**/*.yml", "catalog*/**/*.yml")  # fmt: skip


def env_from_cli(argv: list[str] | None = None) -> str | None:
    """``--env``/``-e`` of a ``kedro`` command line, if any.

    ``kedro run --env paper`` hands the env to the session, but the pipeline
    registry is built before the session exists: it reads the env from argv.
    """
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        if arg in ("--env", "-e") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
    return None


def default_run_env() -> str:
    """``settings.CONFIG_LOADER_ARGS['default_run_env']`` (``local``)."""
    from polyglot_kedro.settings import CONFIG_LOADER_ARGS

    return CONFIG_LOADER_ARGS.get("default_run_env", "local")


def resolve_env(env: str | None = None, argv: list[str] | None = None) -> str:
    """The run's environment, with Kedro's precedence.

    Kedro's ``KedroSession.create`` takes ``env or os.getenv("KEDRO_ENV")``:
    an explicit environment (``--env``) wins over ``KEDRO_ENV``. Then the
    loader's ``default_run_env``.

    Args:
        env: an explicit environment (a script's ``--env``), if any.
        argv: the command line to read ``--env`` from (default ``sys.argv``).
    """
    return env or env_from_cli(argv) or os.environ.get("KEDRO_ENV") or default_run_env()


def conf_envs(conf_source: str | Path) -> list[str]:
    """The Kedro environments in ``conf_source``: folders holding parameters, catalog or globals files.

    Launcher configs beside them (``conf/accelerate``, ``conf/skypilot``) are
    not environments; ``local`` without such files is ``base`` alone.
    """
    root = Path(conf_source)
    return sorted(
        d.name for d in root.iterdir() if d.is_dir() and any(next(d.glob(p), None) for p in _ENV_PATTERNS)
    )


def config_loader(conf_source: str | Path, env: str | None = None, runtime_params: dict[str, Any] | None = None):
    """The config loader ``kedro run --env <env> --params ...`` builds (``KedroSession._get_config_loader``).

    Args:
        conf_source: the ``conf`` folder.
        env: the environment (None: the loader's ``default_run_env``, as in a session without one).
        runtime_params: nested overrides, as ``kedro run --params`` passes them.
    """
    from polyglot_kedro import settings

    return settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf_source), env=env, runtime_params=runtime_params or None, **settings.CONFIG_LOADER_ARGS
    )


def dotlist_params(overrides: list[str] | None) -> dict[str, Any]:
    """``["finetuning.max_steps=100", "model=llama2_7b"]`` as nested runtime parameters (YAML-typed values)."""
    if not overrides:
        return {}
    return OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)), resolve=False)


def load_parameters(conf_source: str | Path, env: str | None = None, overrides: list[str] | None = None) -> dict:
    """The resolved parameters of ``kedro run --env <env>`` with dot-list overrides as ``--params``."""
    return dict(config_loader(conf_source, env, dotlist_params(overrides))["parameters"])
