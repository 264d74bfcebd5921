"""Evaluation tasks: prompt builders (chat, XQuAD, X-CSQA) and XNLI via lm-eval.

Templates are versioned data in ``polyglot_kedro/prompts/tasks/`` (XQuAD and
X-CSQA: the paper's own templates, byte-identical, and the project's own
translations); the prompt table's columns are ``contracts.PROMPT_COLUMNS``.
"""

from polyglot_kedro.tasks.builders import (
    build_chat_prompts,
    build_xcsqa_prompts,
    build_xquad_prompts,
    gold_answers,
    prompt_language,
    xcsqa_prompt,
    xquad_prompt,
)
from polyglot_kedro.tasks.templates import (
    TEMPLATE_SOURCES,
    load_task_template,
    task_template,
    template_languages,
    template_set,
    template_version,
)

__all__ = [
    "TEMPLATE_SOURCES",
    "build_chat_prompts",
    "build_xcsqa_prompts",
    "build_xquad_prompts",
    "gold_answers",
    "load_task_template",
    "prompt_language",
    "task_template",
    "template_languages",
    "template_set",
    "template_version",
    "xcsqa_prompt",
    "xquad_prompt",
]
