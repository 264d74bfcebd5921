"""Project settings (https://docs.kedro.org/en/stable/kedro_project_setup/settings.html)."""

from kedro.config import OmegaConfigLoader

from polyglot_kedro.hooks import (LLMCredentialsHook, MixNameParamsHook, NodeTimesHook, RunInfoHook,
                                  ValidateParamsHook)
from polyglot_kedro.tracking import MlflowResultsHook

# kedro-mlflow registers its own hook as a plugin (one MLflow run per kedro run);
# MlflowResultsHook mirrors the results into that run (tracking.py).
HOOKS = (ValidateParamsHook(), MixNameParamsHook(), RunInfoHook(), LLMCredentialsHook(), MlflowResultsHook(),
         NodeTimesHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/paper and conf/local then hold only the keys that differ.
    "merge_strategy": {"parameters": "soft"},
}

# One save version for every job of a grid run: the session id is
# $POLYGLOT_GRID_RUN_ID when set (kedro grid submit; docs/CLUSTER.md).
from polyglot_kedro.cluster.session import GridSession  # noqa: E402

SESSION_CLASS = GridSession
