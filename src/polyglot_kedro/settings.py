"""Project settings (https://docs.kedro.org/en/stable/kedro_project_setup/settings.html)."""

from kedro.config import OmegaConfigLoader

from polyglot_kedro.hooks import (LLMCredentialsHook, MixNameParamsHook, NodeTimesHook, RunInfoHook,
                                  ValidateParamsHook)
from polyglot_kedro.tracking import BatchedParamsMlflowHook, MlflowResultsHook

# kedro-mlflow's hook (one MLflow run per kedro run) is registered here, as a subclass that
# logs the parameters once in batches instead of per node (tracking.py), in place of the
# instance the plugin registers itself; MlflowResultsHook mirrors the results into that run.
# Kedro matches the distribution name as its metadata spells it (kedro_mlflow 2.x: underscore).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")
_MLFLOW = (BatchedParamsMlflowHook(),) if BatchedParamsMlflowHook is not None else ()
# Last: pluggy calls the last registered first, so the MLflow run is open before the
# project's hooks (as with the plugin's own registration).
HOOKS = (ValidateParamsHook(), MixNameParamsHook(), RunInfoHook(), LLMCredentialsHook(), MlflowResultsHook(),
         NodeTimesHook(), *_MLFLOW)

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
