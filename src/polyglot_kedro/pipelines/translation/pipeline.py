"""Translation wiring: prompts always; Guanaco examples only when a mix uses MT data."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.pipelines.translation.nodes import assemble_chat_prompts, translate_guanaco, translate_prompts


def _needs_mt(mixes: dict[str, Any] | None) -> bool:
    if not mixes:
        return False
    specs = {k: v for k, v in mixes.items() if isinstance(v, MixSpec)}
    specs.update(mix_specs({k: v for k, v in mixes.items() if not isinstance(v, MixSpec)}))
    return any(spec.source == "mt" for spec in specs.values())


def create_pipeline(mixes: dict[str, MixSpec] | None = None, **kwargs: Any) -> Pipeline:
    """The translation stage (not namespaced).

    Args:
        mixes: the experiment grid; ``translate_guanaco`` is wired only when some
            mix has ``source: mt``.

    Returns:
        The pipeline.
    """
    nodes = [
        node(
            translate_prompts,
            inputs=["chat_prompts_raw", "base_model", "params:translation", "params:llm_endpoints"],
            outputs=["prompt_translations", "translation_usage"],
            name="translate_prompts",
        ),
        node(
            assemble_chat_prompts,
            inputs=["chat_prompts_raw", "prompt_translations", "params:translation"],
            outputs="chat_prompts",
            name="assemble_chat_prompts",
        ),
    ]
    if _needs_mt(mixes):
        nodes.append(
            node(
                translate_guanaco,
                inputs=["mt_source_examples", "base_model", "params:translation", "params:llm_endpoints"],
                outputs=["guanaco_translations", "translation_rejected", "guanaco_translation_usage"],
                name="translate_guanaco",
            )
        )
    return Pipeline(nodes)
