"""Judge prompt (the released llm_judge.py's, byte for byte) and verdict parsing."""

from __future__ import annotations

import pytest

from polyglot_kedro.judge import (
    HELPFULNESS_FILE,
    Verdict,
    parse_verdict,
    render_judge_messages,
    render_translation_messages,
)
from polyglot_kedro.prompting import read_prompt_file


def test_render_keeps_the_paper_prompt():
    msgs = render_judge_messages("Wie spät ist es?", "Es ist {zwölf} Uhr.")
    assert msgs[0] == {"role": "system", "content": "You are an expert language evaluator."}
    user = msgs[1]["content"]
    assert user.startswith(
        "You are evaluating a response that has been submitted for a particular task, "
        "using a specific set of standards. Below is the data: \n\n[BEGIN DATA]\n***\n[Task]: Wie spät ist es? \n"
    )
    assert "[Submission]: Es ist {zwölf} Uhr.\n***\n[Criterion]: helpfulness: \n" in user
    assert user.count('"Not helpful - ') == 1 and '"6": "Highly helpful - ' in user
    assert user.endswith(
        "Provide your response as a RFC8259 compliant JSON following this schema:\n\n"
        '{"reasoning": str, "score": int}\n\n'
    )
    # six rubric levels, each on its own line
    assert [line[:4] for line in user.splitlines() if line[:1] == '"'] == [f'"{i}":' for i in range(1, 7)]


def test_template_file_is_a_format_string():
    raw = read_prompt_file(HELPFULNESS_FILE)
    assert "{prompt}" in raw and "{response}" in raw and '{{"reasoning": str, "score": int}}' in raw
    with pytest.raises(FileNotFoundError, match="no prompt file 'judge_nothing.txt'"):
        read_prompt_file("judge_nothing.txt")


def test_translation_messages():
    msgs = render_translation_messages("Hallo")
    assert msgs[0]["role"] == "user" and msgs[0]["content"].endswith("\n\nHallo")


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"reasoning": "ok", "score": 4}', Verdict(4, "ok", True, None, "json")),
        ('Here is my verdict:\n```json\n{"reasoning": "fine", "score": 5}\n```\nThanks.',
         Verdict(5, "fine", True, None, "embedded_json")),
        ('{"reasoning": "The response is cut', Verdict(None, None, False, "no JSON object and no score found", None)),
        ('{"reasoning": "good but trunc", "score": 3', Verdict(3, None, True, None, "fallback")),
        ('{"score": 2, "reasoning": "The answer is cut', Verdict(2, None, True, None, "fallback")),
        ('{"reasoning": "x", "score": 7}', Verdict(None, "x", False, "score 7 outside 1-6", "json")),
        ('{"reasoning": "x", "score": 0}', Verdict(None, "x", False, "score 0 outside 1-6", "json")),
        ('{"reasoning": "x", "score": "5"}', Verdict(5, "x", True, None, "json")),
        ('{"reasoning": "x", "score": 5.0}', Verdict(5, "x", True, None, "json")),
        ('{"reasoning": "x", "score": 4.5}', Verdict(None, "x", False, "score is not an integer (4.5)", "json")),
        ('{"reasoning": "x", "score": "five"}', Verdict(None, "x", False, "score is not an integer ('five')", "json")),
        ('{"reasoning": "x", "score": true}', Verdict(None, "x", False, "score is a boolean (True)", "json")),
        ('{"reasoning": "no score here"}', Verdict(None, "no score here", False, "JSON has no 'score' field", "json")),
        ("I would rate this a 5 out of 6.", Verdict(None, None, False, "no JSON object and no score found", None)),
        ('"score": 4 ... "score": 5', Verdict(None, None, False, "ambiguous: several scores ['4', '5'] in broken JSON", "fallback")),
        ('{"score": 56', Verdict(None, None, False, "score 56 outside 1-6", "fallback")),
        ("[1, 2]", Verdict(None, None, False, "JSON is a list, not an object", "json")),
        ("", Verdict(None, None, False, "empty reply", None)),
        (None, Verdict(None, None, False, "empty reply", None)),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


def test_judge_prompt_is_byte_identical_to_the_released_llm_judge():
    """The released llm_judge.py (ZurichNLP/multilingual-instruction-tuning @ 5000b2c5), its
    ``system_message`` and ``user_message`` literals: the user template by its SHA-256 (computed
    from the released file's string), the one-line system message as text."""
    import hashlib

    from polyglot_kedro.prompting import read_prompt_file

    user = read_prompt_file("judge_helpfulness.txt")
    assert hashlib.sha256(user.encode("utf-8")).hexdigest() == (
        "c21ee5560fc30b55d2ae57d57daf913001aa60a2242be4613198672751c9aeda"
    )
    assert read_prompt_file("judge_system.txt") == "You are an expert language evaluator."
