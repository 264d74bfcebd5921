"""Wiring of the base-model node."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from polyglot_kedro.pipelines.base_model.nodes import prepare_base_model


def create_pipeline(**kwargs: Any) -> Pipeline:
    """One node: ``base_model`` (a folder) from the registry entry ``params:model``."""
    return Pipeline(
        [
            node(
                prepare_base_model,
                inputs=["guanaco_raw", "chat_prompts_raw", "params:model", "params:models", "params:model_preparation"],
                outputs="base_model",
                name="prepare_base_model",
            )
        ]
    )
