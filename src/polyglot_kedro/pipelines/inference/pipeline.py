"""Inference wiring: shared task prompts, then one namespace per mix.

Trained mixes read ``<mix>.merged_model``; ``untuned`` mixes read the shared
``base_model`` instead (the namespaced ``merged_model`` input is mapped to it).
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node, pipeline

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.grid import load_mixes
from polyglot_kedro.pipelines import per_mix
from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts, generate_outputs, score_xnli_loglik

_PARAMS = ["params:inference", "params:model", "params:models", "params:mix_name"]


def create_pipeline(mixes: dict[str, MixSpec] | None = None, **kwargs: Any) -> Pipeline:
    """Build the inference pipeline.

    Args:
        mixes: mix name -> spec (default: read from the configuration).

    Returns:
        ``build_eval_prompts`` (shared) plus ``generate_outputs`` and
        ``score_xnli_loglik`` in each mix's namespace.
    """
    mixes = load_mixes() if mixes is None else mix_specs({k: (v.model_dump() if isinstance(v, MixSpec) else v) for k, v in mixes.items()})
    shared = Pipeline(
        [
            node(
                build_eval_prompts,
                ["chat_prompts", "xquad_raw", "xcsqa_raw", "params:inference"],
                "eval_prompts",
                name="build_eval_prompts",
            )
        ]
    )
    base = Pipeline(
        [
            node(generate_outputs, ["merged_model", "eval_prompts", *_PARAMS], "generations", name="generate_outputs"),
            node(score_xnli_loglik, ["merged_model", "xnli_raw", *_PARAMS], "xnli_loglik", name="score_xnli_loglik"),
        ]
    )
    trained = [m for m, s in mixes.items() if s.kind != "untuned"]
    untuned = [m for m, s in mixes.items() if s.kind == "untuned"]
    out = shared + per_mix(base, trained, shared_inputs=["eval_prompts", "xnli_raw"])
    if untuned:
        on_base = pipeline(base, inputs={"merged_model": "base_model"})
        out += per_mix(on_base, untuned, shared_inputs=["eval_prompts", "xnli_raw", "base_model"])
    return out
