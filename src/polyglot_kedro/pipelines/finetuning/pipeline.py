"""Wiring of the finetuning stage."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from polyglot_kedro.config import MixSpec
from polyglot_kedro.pipelines import per_mix
from polyglot_kedro.pipelines.finetuning.merge import merge_adapter
from polyglot_kedro.pipelines.finetuning.nodes import train_lora

_GLOBAL_PARAMS = ["params:model", "params:models", "params:finetuning"]


def create_base_pipeline() -> Pipeline:
    """The one-mix pipeline: train the adapter, then merge and verify it."""
    return Pipeline(
        [
            node(
                train_lora,
                inputs=["train_mix", "base_model", *_GLOBAL_PARAMS, "params:mix_name"],
                outputs=["adapter", "training_metrics"],
                name="train_adapter",
            ),
            node(
                merge_adapter,
                inputs=["adapter", "base_model", *_GLOBAL_PARAMS, "params:mix_name"],
                outputs="merged_model",
                name="merge_adapter",
            ),
        ]
    )


def create_pipeline(mixes: dict[str, MixSpec] | None = None, **kwargs: Any) -> Pipeline:
    """Finetuning for every trained mix: ``{mix}.adapter``, ``{mix}.training_metrics``, ``{mix}.merged_model``.

    Mixes of kind ``untuned`` get no node (inference uses ``base_model``).
    The base-model node is not included: the registry adds
    :mod:`polyglot_kedro.pipelines.base_model` where it is needed. Run one mix with
    ``kedro run --pipeline finetuning --namespaces <mix>``.

    Args:
        mixes: validated mix specs (``grid.load_mixes()``).

    Returns:
        The namespaced pipelines, one per trained mix.
    """
    trained = [name for name, spec in (mixes or {}).items() if spec.kind != "untuned"]
    return per_mix(create_base_pipeline(), trained, shared_inputs=["base_model"])
