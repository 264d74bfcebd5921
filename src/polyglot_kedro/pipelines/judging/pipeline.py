"""Judging wiring: one namespace per mix (see ``nodes`` for the rules)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from polyglot_kedro.config import MixSpec
from polyglot_kedro.pipelines import per_mix

from .nodes import detect_chat_languages, judge_chat, score_tasks


def create_base_pipeline() -> Pipeline:
    """The one-mix pipeline (datasets un-namespaced)."""
    return pipeline(
        [
            node(detect_chat_languages, ["generations", "params:judging"], "chat_languages", name="detect_chat_languages"),
            node(
                judge_chat,
                ["generations", "chat_languages", "base_model", "params:judging", "params:llm_endpoints"],
                ["chat_judgments", "judging_usage"],
                name="judge_chat",
            ),
            node(
                score_tasks,
                ["generations", "xnli_loglik", "chat_languages", "chat_judgments"],
                "scores",
                name="score_tasks",
            ),
        ]
    )


def create_pipeline(mixes: dict[str, MixSpec] | None = None, **kwargs) -> Pipeline:
    """Judging for every mix: ``<mix>.generations`` -> ``<mix>.scores``.

    Args:
        mixes: the experiment grid (``grid.load_mixes``); ``None`` gives an
            empty pipeline.

    Returns:
        The sum of the per-mix namespaces.
    """
    return per_mix(create_base_pipeline(), list(mixes or {}), shared_inputs=["base_model"])
