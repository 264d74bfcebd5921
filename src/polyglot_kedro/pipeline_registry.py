"""Project pipelines: six stages, each per-mix stage one namespace per mix."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from polyglot_kedro.config import mix_models
from polyglot_kedro.grid import load_mixes
from polyglot_kedro.pipelines import base_model as base_model_stage
from polyglot_kedro.pipelines import data_mixing, finetuning, inference, judging, on_mix_models, reporting, translation


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__``
        chains all six stages.
    """
    mixes = load_mixes()
    models = mix_models(mixes)
    clash = sorted(set(models) & set(mixes))
    if clash:
        raise ValueError(f"mixes {clash} are named like models that mixes run on (both would be namespaces); "
                         "rename the mix")
    # The base model folders (built, converted or downloaded once; reused when
    # unchanged: the run's model and each model a mix names) are needed by
    # several stages: each registered pipeline that reads one includes them
    # all, so it runs on its own from a fresh clone and the cluster's prepare
    # job builds them before the per-mix arrays.
    base_model = base_model_stage.create_pipeline(models=models)
    stages = {
        "data_mixing": data_mixing.create_pipeline(mixes=mixes) + base_model,
        "translation": translation.create_pipeline(mixes=mixes) + base_model,
        # A mix on its own model trains and generates on that model's base folder (judging's
        # base_model is the judge, the same for every mix).
        "finetuning": base_model + on_mix_models(finetuning.create_pipeline(mixes=mixes), mixes),
        "inference": on_mix_models(inference.create_pipeline(mixes=mixes), mixes) + base_model,
        "judging": judging.create_pipeline(mixes=mixes) + base_model,
        "reporting": reporting.create_pipeline(mixes=mixes),
    }
    stages["__default__"] = sum(stages.values(), Pipeline([]))
    return stages
