"""Prompts: the Guanaco conversation format and the package's versioned prompt files.

The paper formats every turn as ``### Human: {instruction}### Assistant:
{response}`` -- no space before the second ``###`` (its template, kept
exactly). Raw Guanaco rows have a space there; parsing accepts both.
Generated text is cut at the first stop string (``cut_at_stop``), the same
rule for the generation engines and the in-process LLM backends.

The experiment's prompt files (judge, translation, task templates) live in
``polyglot_kedro/prompts/`` and are read with ``read_prompt_file`` only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

HUMAN = "### Human:"
ASSISTANT = "### Assistant:"
STOP_STRINGS = (HUMAN, ASSISTANT)

#: A role marker as written in raw Guanaco rows (``### Human:``, ``###Assistant :``...).
ROLE_MARKER = re.compile(r"###\s*(Human|Assistant)\s*:")
PROMPTS_DIR = "prompts"


@functools.cache
def read_prompt_file(name: str) -> str:
    """The text of a versioned prompt file shipped in the package, unchanged.

    Args:
        name: path under ``polyglot_kedro/prompts/``, e.g. ``judge_system.txt``
            or ``tasks/xquad.yml``.

    Raises:
        FileNotFoundError: no such prompt file (the message names it).
    """
    path = resources.files("polyglot_kedro").joinpath(PROMPTS_DIR, *name.split("/"))
    if not path.is_file():
        raise FileNotFoundError(f"no prompt file {name!r} in polyglot_kedro/{PROMPTS_DIR}/")
    return path.read_text(encoding="utf-8")


def cut_at_stop(text: str, stop: Iterable[str] = STOP_STRINGS) -> tuple[str, bool]:
    """Cut ``text`` at the earliest occurrence of any stop string (vLLM's rule: the stop string is dropped).

    Args:
        text: decoded completion.
        stop: stop strings (empty ones are ignored).

    Returns:
        ``(text before the first stop string, whether one was found)``.
    """
    positions = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True


class GuanacoParseError(ValueError):
    """A row that is not a well-formed Guanaco conversation; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Turn:
    role: str  # "human" or "assistant"
    content: str


def parse_guanaco(text: str, *, allow_trailing_human: bool = False) -> list[Turn]:
    """Split a Guanaco ``text`` into turns.

    Args:
        text: ``### Human: ... ### Assistant: ...`` (one or more exchanges).
        allow_trailing_human: accept a conversation whose last turn is an
            unanswered human turn after at least one full exchange (about a
            quarter of real Guanaco rows end so).

    Returns:
        Turns in order, alternating human/assistant, starting with human.

    Raises:
        GuanacoParseError: empty text, no Human turn, text before the first
            marker, empty turn, roles that do not alternate, or (unless
            allowed) no assistant reply at the end.
    """
    if not isinstance(text, str) or not text.strip():
        raise GuanacoParseError("empty text")
    matches = list(ROLE_MARKER.finditer(text))
    if not matches:
        raise GuanacoParseError("no '### Human:' marker")
    if text[: matches[0].start()].strip():
        raise GuanacoParseError("text before the first role marker")
    turns: list[Turn] = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        role = m.group(1).lower()
        content = text[m.end() : end].strip()
        if not content:
            raise GuanacoParseError(f"empty {role} turn (turn {i + 1})")
        expected = "human" if i % 2 == 0 else "assistant"
        if role != expected:
            raise GuanacoParseError(f"turn {i + 1} is {role!r}, expected {expected!r}")
        turns.append(Turn(role, content))
    if turns[-1].role != "assistant" and not (allow_trailing_human and len(turns) >= 3):
        raise GuanacoParseError("conversation ends without an assistant reply")
    return turns


def format_guanaco(turns: list[Turn] | list[dict]) -> str:
    """Render turns in the paper's training format (whole conversation)."""
    parts = []
    for t in turns:
        role, content = (t.role, t.content) if isinstance(t, Turn) else (t["role"], t["content"])
        parts.append(f"{HUMAN} {content}" if role == "human" else f"{ASSISTANT} {content}")
    return "".join(parts)


def guanaco_prompt(instruction: str, history: list[Turn] | None = None) -> str:
    """The inference prompt: optional history, then ``### Human: {instruction}### Assistant:``."""
    return format_guanaco(list(history or [])) + f"{HUMAN} {instruction}{ASSISTANT}"


def plain_text(turns: list[Turn]) -> str:
    """Turn contents joined on one line, markers removed (input for fastText LID)."""
    return " ".join(" ".join(t.content.split()) for t in turns)


# --------------------------------------------------------------------------- prompt formats

#: How a model is prompted and trained (``ModelSpec.prompt_format``): ``guanaco``
#: (the paper's ``### Human: ...### Assistant:``, the default) or
#: ``chat_template`` (the tokenizer's own chat template, for current chat models).
PROMPT_FORMATS = ("guanaco", "chat_template")


def turns_to_messages(turns: list[Turn]) -> list[dict[str, str]]:
    """Guanaco turns as chat messages (``human`` -> ``user``)."""
    return [{"role": "user" if t.role == "human" else "assistant", "content": t.content} for t in turns]


def guanaco_to_messages(prompt: str) -> tuple[list[dict[str, str]], str]:
    """An inference prompt in the paper's format as chat messages and the reply's forced start.

    The eval prompt table is written once in the Guanaco format (shared by
    every mix); a model prompted with its chat template gets the same turns.
    XQuAD and X-CSQA templates open the Assistant turn with an answer prefix
    (``Answer:``); that prefix is returned apart, to follow the generation
    prompt, so the model is forced into it under either format.

    Args:
        prompt: ``### Human: ...### Assistant:`` (with history, optionally an answer prefix).

    Returns:
        ``(messages ending with a user message, answer prefix or "")``.

    Raises:
        GuanacoParseError: no role marker, text before it, roles that do not
            alternate, or no Assistant marker at the end.
    """
    matches = list(ROLE_MARKER.finditer(prompt or ""))
    if not matches or matches[-1].group(1) != "Assistant":
        raise GuanacoParseError("an inference prompt must end with '### Assistant:' (optionally an answer prefix)")
    last = matches[-1]
    prefix = prompt[last.end() :].lstrip()
    turns = parse_guanaco(prompt[: last.start()] + f"{ASSISTANT} x", allow_trailing_human=False)[:-1]
    return turns_to_messages(turns), prefix


def _drop_bos_the_tokenizer_adds(tokenizer, text: str) -> str:
    # Chat templates write the BOS token (Llama 3's <|begin_of_text|>) and the
    # engines tokenize with add_special_tokens=True, which adds it again when
    # the tokenizer does so by default: drop it from the text in that case only.
    bos = tokenizer.bos_token
    if bos and text.startswith(bos):
        ids = tokenizer("", add_special_tokens=True)["input_ids"]
        if ids[:1] == [tokenizer.bos_token_id]:
            return text[len(bos) :]
    return text


def chat_template_prompt(tokenizer, prompt: str) -> str:
    """``prompt`` (Guanaco format) rendered by the tokenizer's own chat template, ready to generate.

    ``apply_chat_template(messages, add_generation_prompt=True)`` plus the
    answer prefix; tokenized with ``add_special_tokens=True`` (as the engines
    do) it gives the ids ``apply_chat_template(..., tokenize=True)`` gives.

    Raises:
        GuanacoParseError: ``prompt`` is not an inference prompt (see :func:`guanaco_to_messages`).
        ValueError: the tokenizer has no chat template.
    """
    messages, prefix = guanaco_to_messages(prompt)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return _drop_bos_the_tokenizer_adds(tokenizer, text) + prefix


def render_prompts(prompts: list[str], prompt_format: str, tokenizer=None) -> list[str]:
    """The inference prompts as the model is prompted: unchanged (``guanaco``) or by its chat template.

    Raises:
        ValueError: an unknown ``prompt_format``, or ``chat_template`` without a tokenizer.
    """
    if prompt_format == "guanaco":
        return list(prompts)
    if prompt_format != "chat_template":
        raise ValueError(f"unknown prompt_format {prompt_format!r}; valid: {list(PROMPT_FORMATS)}")
    if tokenizer is None:
        raise ValueError("prompt_format chat_template needs the model's tokenizer")
    return [chat_template_prompt(tokenizer, p) for p in prompts]


def check_prompt_format(tokenizer, prompt_format: str, model: str) -> None:
    """Fail early when ``model`` cannot be prompted as its registry entry says.

    Raises:
        ValueError: an unknown ``prompt_format``, or ``chat_template`` for a
            tokenizer without one (the message names the model).
    """
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"model {model!r}: unknown prompt_format {prompt_format!r}; valid: {list(PROMPT_FORMATS)}")
    if prompt_format == "chat_template" and not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"model {model!r}: prompt_format chat_template, but its tokenizer has no chat template "
            "(tokenizer_config.json / chat_template.jinja); use prompt_format: guanaco or a chat model's tokenizer"
        )
