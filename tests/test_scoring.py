"""XQuAD post-processing and EM/F1, X-CSQA letter extraction, XNLI labels."""

from __future__ import annotations

import pytest

from polyglot_kedro.scoring import (
    answer_tokens,
    exact_match,
    extract_xcsqa_letter,
    max_over_golds,
    normalize_answer,
    postprocess_xquad,
    score_xquad,
    token_f1,
    xnli_correct,
)


@pytest.mark.parametrize(
    "output, question, expected",
    [
        ('308".', None, "308"),
        ('Denver Broncos" (the AFC champions)', None, "Denver Broncos"),
        # repeated question, then the answer on the next line
        ("Wie viele Punkte gab die Verteidigung ab?\n308\"", "Wie viele Punkte gab die Verteidigung ab?", "308"),
        # line break comes first
        ("Kawann Short\nExplanation: he led the team", None, "Kawann Short"),
        # 50 characters come first (no quote, no newline)
        ("x" * 80, None, "x" * 50),
        # typographic closing quote (German/Chinese prompts)
        ("巴黎”。", None, "巴黎"),
        ("  \n308", None, "308"),
        ("", "Q?", ""),
    ],
)
def test_postprocess_xquad(output, question, expected):
    assert postprocess_xquad(output, question) == expected


def test_postprocess_keeps_question_when_not_repeated():
    assert postprocess_xquad('Paris"', "Where?") == "Paris"


def test_normalize_squad_rules_and_unicode_punctuation():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("«Le Monde»") == "le monde"
    assert normalize_answer("ＡＢＣ，") == "abc"  # full width folded, CJK comma removed


@pytest.mark.parametrize(
    "pred, gold, em, f1",
    [
        ("Denver Broncos", "the Denver Broncos", 1.0, 1.0),
        ("Broncos", "Denver Broncos", 0.0, 2 * (1.0 * 0.5) / 1.5),
        ("die Panthers", "Panthers", 0.0, 2 * (0.5 * 1.0) / 1.5),  # German article not an English one
        ("308 Punkte", "308", 0.0, 2 * (0.5 * 1.0) / 1.5),
        ("Москва", "москва", 1.0, 1.0),
        ("nothing", "Москва", 0.0, 0.0),
        ("", "Paris", 0.0, 0.0),
    ],
)
def test_em_f1_spaced_scripts(pred, gold, em, f1):
    assert exact_match(pred, gold) == em
    assert token_f1(pred, gold) == pytest.approx(f1)


def test_chinese_uses_character_tokens():
    assert answer_tokens("北京大学") == ["北", "京", "大", "学"]
    # whitespace F1 would give 0 here (one token each side)
    assert token_f1("北京大学", "北京") == pytest.approx(2 * (2 / 4) * (2 / 2) / (2 / 4 + 2 / 2))
    assert exact_match("北京 大学。", "北京大学") == 1.0
    # mixed script: Latin runs stay words, ideographs split
    assert answer_tokens("2015年 Super Bowl") == ["2015", "年", "super", "bowl"]


def test_max_over_golds_and_score_xquad():
    out = score_xquad('Carolina Panthers" were', ["Panthers", "the Carolina Panthers"])
    assert out == {"pred": "Carolina Panthers", "em": 1.0, "f1": 1.0}
    assert max_over_golds(token_f1, "x b", ["b", "c"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    with pytest.raises(ValueError, match="no gold"):
        max_over_golds(exact_match, "x", [])


@pytest.mark.parametrize(
    "output, letter",
    [
        ('C"', "C"),
        ("C: hospital", "C"),
        ("(B) michigan", "B"),
        ('"E"', "E"),
        ("The answer is D.", "D"),
        ("Die Antwort ist A", "A"),
        ("Because everyone knows", None),  # capitals inside words do not count
        ("F", None),
        ("", None),
    ],
)
def test_extract_xcsqa_letter(output, letter):
    assert extract_xcsqa_letter(output) == letter


def test_xnli_correct():
    assert xnli_correct("entailment", "Entailment ") == 1.0
    assert xnli_correct(0, "0") == 1.0
    assert xnli_correct("neutral", "contradiction") == 0.0
    with pytest.raises(ValueError, match="missing gold"):
        xnli_correct("neutral", None)
