"""The LLM-as-judge for chat helpfulness: prompt rendering and verdict parsing.

The prompt is the released code's (``llm_judge.py`` of
ZurichNLP/multilingual-instruction-tuning), kept byte for byte in
``prompts/judge_system.txt`` and ``prompts/judge_helpfulness.txt`` (read with
``prompting.read_prompt_file``). The user template is a Python ``str.format``
string, as in the paper's code: ``{prompt}`` and ``{response}`` are filled in,
``{{`` / ``}}`` are literal braces (the JSON schema line). Its trailing spaces are part of the original and are kept.

Parsing never hides a failure. A reply is tried, in order:

1. as one JSON object (the whole reply);
2. as a JSON object embedded in prose or a Markdown code fence (the first
   object that has a ``score`` key);
3. a strict fallback for broken JSON (typically truncated by ``max_tokens``):
   exactly one ``"score": <int>`` fragment, the key in double quotes as JSON
   writes it. Several different fragments are ambiguous and invalid.

Anything else is invalid with a reason; the raw text is always kept by the
caller. A score must be an integer in 1..6: ``7``, ``0``, ``4.5`` or ``true``
are invalid. A string holding an integer (``"5"``) is accepted as that integer
-- some judges quote every JSON value, and the number is unambiguous; an
integral float (``5.0``) is accepted for the same reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from polyglot_kedro.prompting import read_prompt_file

SCORE_MIN, SCORE_MAX = 1, 6

SYSTEM_FILE = "judge_system.txt"
HELPFULNESS_FILE = "judge_helpfulness.txt"
TRANSLATE_FILE = "judge_translate.txt"

# ``"score": 5`` or ``"score": "5"``; the number must end there (not 5.5, not 56...).
_SCORE_FRAGMENT = re.compile(r'"score"\s*:\s*(")?\s*(-?\d+)\s*(?(1)")(?![\d.])')


def render_judge_messages(prompt: str, response: str) -> list[dict]:
    """The paper's judge request for one (prompt, response) pair.

    Args:
        prompt: the user's instruction (no Guanaco markers).
        response: the model's answer.

    Returns:
        OpenAI chat messages: the system message, then the filled-in rubric.
    """
    user = read_prompt_file(HELPFULNESS_FILE).format(prompt=prompt, response=response)
    return [
        {"role": "system", "content": read_prompt_file(SYSTEM_FILE)},
        {"role": "user", "content": user},
    ]


def render_translation_messages(text: str) -> list[dict]:
    """A request translating ``text`` into English (translated judging, paper App. C)."""
    return [{"role": "user", "content": read_prompt_file(TRANSLATE_FILE).format(text=text)}]


@dataclass(frozen=True)
class Verdict:
    """A parsed judge reply.

    ``raw_score`` is the judge's score when ``valid``, else ``None`` (an
    invalid reply never becomes a score); ``invalid_reason`` says why not.
    ``parse_method``: ``json``, ``embedded_json``, ``fallback`` or ``None``.
    """

    raw_score: int | None
    reasoning: str | None
    valid: bool
    invalid_reason: str | None
    parse_method: str | None


def _invalid(reason: str, method: str | None = None, reasoning: str | None = None) -> Verdict:
    return Verdict(None, reasoning, False, reason, method)


def _coerce_score(value: object) -> tuple[int | None, str | None]:
    """(score, None) or (None, reason)."""
    if isinstance(value, bool):
        return None, f"score is a boolean ({value!r})"
    if isinstance(value, int):
        score = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None, f"score is not an integer ({value!r})"
        score = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        score = int(value)
    else:
        return None, f"score is not an integer ({value!r})"
    if not SCORE_MIN <= score <= SCORE_MAX:
        return None, f"score {score} outside {SCORE_MIN}-{SCORE_MAX}"
    return score, None


def _from_object(obj: dict, method: str) -> Verdict:
    reasoning = obj.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) else (None if reasoning is None else str(reasoning))
    if "score" not in obj:
        return _invalid("JSON has no 'score' field", method, reasoning)
    score, reason = _coerce_score(obj["score"])
    if reason:
        return _invalid(reason, method, reasoning)
    return Verdict(score, reasoning, True, None, method)


def _embedded_objects(text: str):
    """JSON objects found anywhere in ``text`` (prose, code fences), in order."""
    decoder = json.JSONDecoder()
    pos = text.find("{")
    while pos != -1:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            yield obj
        pos = text.find("{", end)


def parse_verdict(text: str | None) -> Verdict:
    """Parse one judge reply (see the module docstring for the rules).

    Args:
        text: the judge's reply; ``None`` or blank is invalid.

    Returns:
        The verdict; never raises on malformed input.
    """
    if text is None or not str(text).strip():
        return _invalid("empty reply")
    text = str(text)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        return _from_object(obj, "json")
    if obj is not None:
        return _invalid(f"JSON is a {type(obj).__name__}, not an object", "json")

    objects = list(_embedded_objects(text))
    with_score = [o for o in objects if "score" in o]
    if with_score:
        return _from_object(with_score[0], "embedded_json")

    fragments = {(m.group(2)) for m in _SCORE_FRAGMENT.finditer(text)}
    if len(fragments) == 1:
        score, reason = _coerce_score(int(fragments.pop()))
        if reason:
            return _invalid(reason, "fallback")
        return Verdict(score, None, True, None, "fallback")
    if len(fragments) > 1:
        return _invalid(f"ambiguous: several scores {sorted(fragments)} in broken JSON", "fallback")
    if objects:
        return _invalid("JSON has no 'score' field", "embedded_json")
    return _invalid("no JSON object and no score found")
