"""The Guanaco format shared by every stage."""

import pytest

from polyglot_kedro.prompting import GuanacoParseError, Turn, format_guanaco, guanaco_prompt, parse_guanaco


def test_round_trip_in_the_paper_template():
    turns = parse_guanaco("### Human: Hi there ### Assistant: Hello! ### Human: Why? ### Assistant: Because.")
    assert [t.role for t in turns] == ["human", "assistant", "human", "assistant"]
    assert format_guanaco(turns) == "### Human: Hi there### Assistant: Hello!### Human: Why?### Assistant: Because."
    assert guanaco_prompt("Q") == "### Human: Q### Assistant:"


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty text"), ("just text", "no '### Human:' marker"), ("x ### Human: a### Assistant: b", "text before"),
     ("### Human: a### Assistant: ", "empty assistant turn"), ("### Assistant: a### Human: b", "turn 1 is 'assistant'"),
     ("### Human: a", "ends without an assistant reply")],
)
def test_malformed_rows_say_why(text, reason):
    with pytest.raises(GuanacoParseError, match=reason):
        parse_guanaco(text)


def test_trailing_unanswered_human_turn_only_when_allowed():
    text = "### Human: a ### Assistant: b ### Human: c"
    with pytest.raises(GuanacoParseError, match="ends without"):
        parse_guanaco(text)
    assert parse_guanaco(text, allow_trailing_human=True)[-1] == Turn("human", "c")
    with pytest.raises(GuanacoParseError):  # a lone question is still no conversation
        parse_guanaco("### Human: c", allow_trailing_human=True)
