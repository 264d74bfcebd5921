"""Project pipelines: six stages, each per-mix stage one namespace per mix."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from polyglot_kedro.grid import load_mixes
from polyglot_kedro.pipelines import base_model as base_model_stage
from polyglot_kedro.pipelines import data_mixing, finetuning, inference, judging, reporting, translation


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__``
        chains all six stages.
    """
    mixes = load_mixes()
    # The base model folder (built, converted or downloaded once; reused when
    # unchanged) is needed by several stages: each registered pipeline that
    # reads it includes the node, so it runs on its own from a fresh clone.
    base_model = base_model_stage.create_pipeline()
    stages = {
        "data_mixing": data_mixing.create_pipeline(mixes=mixes) + base_model,
        "translation": translation.create_pipeline(mixes=mixes) + base_model,
        "finetuning": base_model + finetuning.create_pipeline(mixes=mixes),
        "inference": inference.create_pipeline(mixes=mixes) + base_model,
        "judging": judging.create_pipeline(mixes=mixes) + base_model,
        "reporting": reporting.create_pipeline(mixes=mixes),
    }
    stages["__default__"] = sum(stages.values(), Pipeline([]))
    return stages
