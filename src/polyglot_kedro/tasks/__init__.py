"""Evaluation tasks: prompt builders (chat, XQuAD, X-CSQA) and XNLI via lm-eval.

Templates are versioned data in ``polyglot_kedro/prompts/tasks/*.yml``; the
prompt table's columns are ``contracts.PROMPT_COLUMNS``.
"""

from polyglot_kedro.tasks.builders import (
    build_chat_prompts,
    build_xcsqa_prompts,
    build_xquad_prompts,
    gold_answers,
    prompt_language,
    xcsqa_prompt,
    xquad_answer_close,
    xquad_prompt,
)
from polyglot_kedro.tasks.templates import load_task_template, template_version

__all__ = [
    "build_chat_prompts",
    "build_xcsqa_prompts",
    "build_xquad_prompts",
    "gold_answers",
    "load_task_template",
    "prompt_language",
    "template_version",
    "xcsqa_prompt",
    "xquad_answer_close",
    "xquad_prompt",
]
