"""Versioned task templates (``polyglot_kedro/prompts/tasks/``).

``chat.yml`` and ``xnli.yml`` hold ``version``, a ``base`` section and
per-language parts under ``languages``. ``xquad.yml`` and ``xcsqa.yml`` hold
``version`` and ``sources``: two sets of whole per-language prompt templates,

* ``paper``: the paper's own templates, byte-identical copies of the
  ``language_prompts`` of its notebooks (``prompts/tasks/paper/*.json``);
* ``project``: the project's own translations (``prompts/tasks/own/*.json``),
  which are not the paper's.

A run picks one set; a language the chosen set lacks takes the other set's
template, and ``task_template`` says whose it is.
"""

from __future__ import annotations

import functools
import json
import string
from typing import Any, Literal

import yaml

from polyglot_kedro.prompting import read_prompt_file

TASKS = ("chat", "xquad", "xcsqa", "xnli")
WHOLE_TEMPLATE_TASKS = ("xquad", "xcsqa")
TemplateSource = Literal["paper", "project"]
TEMPLATE_SOURCES: tuple[str, ...] = ("paper", "project")


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
        The parsed YAML (``version`` and ``base``/``languages``, or
        ``sources``/``placeholders`` for XQuAD and X-CSQA).

    Raises:
        ValueError: unknown task or a file without its top-level keys.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    name = f"tasks/{task}.yml"
    data = yaml.safe_load(read_prompt_file(name))
    keys = ("version", "sources", "placeholders") if task in WHOLE_TEMPLATE_TASKS else ("version", "base", "languages")
    for key in keys:
        if key not in (data or {}):
            raise ValueError(f"prompts/{name}: missing top-level key {key!r}")
    return data


@functools.cache
def template_set(task: str, source: str) -> dict[str, str]:
    """The ``{lang: template}`` of one template set of ``task``, checked.

    Args:
        task: ``xquad`` or ``xcsqa``.
        source: ``paper`` or ``project``.

    Raises:
        ValueError: unknown task or source, a file not in the
            ``{"source", "templates"}`` layout, or a template whose
            placeholders are not exactly the task's (the message names the
            file and the language).
    """
    if task not in WHOLE_TEMPLATE_TASKS:
        raise ValueError(f"task {task!r} has no template sets; expected one of {WHOLE_TEMPLATE_TASKS}")
    if source not in TEMPLATE_SOURCES:
        raise ValueError(f"unknown template source {source!r}; expected one of {TEMPLATE_SOURCES}")
    spec = load_task_template(task)
    name = f"tasks/{spec['sources'][source]}"
    data = json.loads(read_prompt_file(name))
    templates = data.get("templates") if isinstance(data, dict) else None
    if not isinstance(templates, dict) or not templates:
        raise ValueError(f"prompts/{name}: expected {{'source': ..., 'templates': {{lang: template}}}}")
    want = set(spec["placeholders"])
    for lang, text in templates.items():
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None} if isinstance(text, str) else None
        if fields != want:
            raise ValueError(f"prompts/{name}: template {lang!r} has placeholders {fields}, expected {sorted(want)}")
    return dict(templates)


def task_template(task: str, lang: str, templates: str = "paper") -> tuple[str, str]:
    """The whole prompt template of ``task`` in ``lang`` and whose it is.

    Args:
        task: ``xquad`` or ``xcsqa``.
        lang: language of the instruction.
        templates: the preferred set, ``paper`` or ``project``; a language it
            lacks takes the other set's template.

    Returns:
        ``(template, source)`` with ``source`` ``paper`` or ``project``.

    Raises:
        UnknownLanguageError: neither set has ``lang`` (the message lists both sets' languages).
    """
    order = (templates, *(s for s in TEMPLATE_SOURCES if s != templates))
    for source in order:
        found = template_set(task, source)
        if lang in found:
            return found[lang], source
    have = {s: sorted(template_set(task, s)) for s in TEMPLATE_SOURCES}
    raise UnknownLanguageError(f"task {task!r} has no prompt template for language {lang!r} (templates: {have})")


def template_languages(task: str) -> list[str]:
    """Every language ``task`` has a template for (either set)."""
    if task in WHOLE_TEMPLATE_TASKS:
        return sorted({lang for s in TEMPLATE_SOURCES for lang in template_set(task, s)})
    return sorted(load_task_template(task)["languages"])


def template_version(task: str, templates: str | None = None) -> str:
    """``<task>@v<version>`` (``+<templates>`` for XQuAD/X-CSQA when given), recorded with the outputs."""
    version = f"{task}@v{load_task_template(task)['version']}"
    return f"{version}+{templates}" if templates and task in WHOLE_TEMPLATE_TASKS else version

