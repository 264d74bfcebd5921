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
