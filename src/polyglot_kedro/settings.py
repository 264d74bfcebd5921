"""Project settings (https://docs.kedro.org/en/stable/kedro_project_setup/settings.html)."""

from kedro.config import OmegaConfigLoader

from polyglot_kedro.hooks import LLMCredentialsHook, ValidateParamsHook

HOOKS = (ValidateParamsHook(), LLMCredentialsHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/paper and conf/local then hold only the keys that differ.
    "merge_strategy": {"parameters": "soft"},
}
