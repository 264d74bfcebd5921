"""Judging wiring: one namespace per mix.

Chat judging (``nodes``) and deterministic task scoring (``task_scoring``)
run side by side (``judge_noise_subset`` judges a subset twice when
``judging.chat.judge_noise`` is on, into the same ledger); ``scores.collect_scores`` joins their rows into
``<mix>.scores``. ``params:mix_name`` is each namespace's mix (``per_mix``).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from polyglot_kedro.config import MixSpec
from polyglot_kedro.pipelines import per_mix

from .nodes import collect_judging_usage, detect_chat_languages, judge_chat, judge_noise_subset, score_chat
from .scores import collect_scores
from .task_scoring import score_tasks


def create_base_pipeline() -> Pipeline:
    """The one-mix pipeline (datasets un-namespaced)."""
    return pipeline(
        [
            node(detect_chat_languages, ["generations", "params:judging"], "chat_languages", name="detect_chat_languages"),
            node(
                judge_chat,
                ["generations", "chat_languages", "base_model", "params:judging", "params:llm_endpoints", "params:mix_name"],
                ["chat_judgments", "chat_judging_usage"],
                name="judge_chat",
            ),
            # judging.chat.judge_noise: a subset judged again (nothing when off); the scores keep the first verdict
            node(
                judge_noise_subset,
                ["chat_judgments", "base_model", "params:judging", "params:llm_endpoints", "params:mix_name"],
                ["judge_noise", "judge_noise_usage"],
                name="judge_noise_subset",
            ),
            node(collect_judging_usage, ["chat_judging_usage", "judge_noise_usage"], "judging_usage",
                 name="collect_judging_usage"),
            node(score_chat, ["generations", "chat_languages", "chat_judgments"], "chat_scores", name="score_chat"),
            node(
                score_tasks,
                ["generations", "xnli_loglik", "params:mix_name", "params:task_scoring"],
                "task_scores",
                name="score_tasks",
            ),
            node(collect_scores, ["chat_scores", "task_scores", "params:mix_name"], "scores", name="collect_scores"),
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
