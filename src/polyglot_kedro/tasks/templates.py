"""Versioned task templates (``polyglot_kedro/prompts/tasks/<task>.yml``).

Each file holds ``version``, a ``base`` section and per-language parts under
``languages`` (see the files' headers).
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

from polyglot_kedro.prompting import read_prompt_file

TASKS = ("chat", "xquad", "xcsqa", "xnli")


class UnknownLanguageError(KeyError):
    """A task template has no parts for the requested language."""

    def __str__(self) -> str:
        return str(self.args[0])


@functools.cache
def load_task_template(task: str) -> dict[str, Any]:
    """Read and check the template file of ``task``.

    Args:
        task: one of ``chat``, ``xquad``, ``xcsqa``, ``xnli``.

    Returns:
        The parsed YAML (``version``, ``base``, ``languages``).

    Raises:
        ValueError: unknown task or a file without ``version``/``base``/``languages``.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    name = f"tasks/{task}.yml"
    data = yaml.safe_load(read_prompt_file(name))
    for key in ("version", "base", "languages"):
        if key not in (data or {}):
            raise ValueError(f"prompts/{name}: missing top-level key {key!r}")
    return data


def template_version(task: str) -> str:
    """``<task>@v<version>``, recorded with the outputs."""
    return f"{task}@v{load_task_template(task)['version']}"


def language_parts(task: str, lang: str) -> dict[str, str]:
    """The per-language parts of ``task`` for ``lang``.

    Raises:
        UnknownLanguageError: no parts for ``lang``; the message lists the available ones.
    """
    langs = load_task_template(task)["languages"]
    if lang not in langs:
        raise UnknownLanguageError(
            f"task {task!r} has no prompt template for language {lang!r} "
            f"(prompts/tasks/{task}.yml has: {', '.join(sorted(langs))})"
        )
    return langs[lang]
