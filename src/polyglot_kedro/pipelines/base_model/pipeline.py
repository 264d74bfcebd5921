"""Wiring of the base-model node: the run's model, plus one namespace per model a mix names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kedro.pipeline import Pipeline, node, pipeline

from polyglot_kedro.pipelines import BASE_MODEL_TAG
from polyglot_kedro.pipelines.base_model.nodes import prepare_base_model

_INPUTS = ["guanaco_raw", "chat_prompts_raw", "params:model", "params:models", "params:model_preparation"]


def create_pipeline(models: Iterable[str] = (), **kwargs: Any) -> Pipeline:
    """``base_model`` (a folder) from the registry entry ``params:model``, and ``<m>.base_model`` for each of ``models``.

    A model of ``models`` (``config.mix_models``: the registry keys mixes name)
    is the Kedro namespace ``<m>``: its node reads ``params:<m>.model``, whose
    value is ``<m>`` (put into the catalog by ``hooks.MixNameParamsHook``), and
    writes ``<m>.base_model`` (the ``"{model}.base_model"`` factory). The raw
    data and the registry stay shared. Every node is tagged ``base_model``, so
    ``mix_namespaces`` does not take a model for a mix.

    Raises:
        ValueError: a model key cannot be a namespace (it holds a dot).
    """
    base = Pipeline([node(prepare_base_model, inputs=_INPUTS, outputs="base_model", name="prepare_base_model",
                          tags=[BASE_MODEL_TAG])])
    out = base
    for m in sorted(set(models)):
        if not m or "." in m:
            raise ValueError(f"model key {m!r} named by a mix cannot be a Kedro namespace (no dots, not empty)")
        out += pipeline(base, namespace=m, inputs={"guanaco_raw", "chat_prompts_raw"},
                        parameters={"params:models", "params:model_preparation"})
    return out
