"""translation.constrain_roles: Guanaco translations decoded under their source's role-token regex."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from llm_server import make_tiny_causal_lm

from polyglot_kedro.llm import ChatRequest, build_client
from polyglot_kedro.param_check import ParameterError, validate_parameters
from polyglot_kedro.pipelines.translation.nodes import (
    RoleTokenError,
    mask_roles,
    restore_roles,
    role_token_regex,
    translate_guanaco,
)

SOURCE = "### Human: Why is the sky blue?### Assistant: Rayleigh <b>scattering</b>.### Human: And at dusk?"


def test_the_regex_accepts_the_sources_token_sequence_only():
    masked = mask_roles(SOURCE)
    rx = role_token_regex(masked)
    assert re.fullmatch(rx, "<S1> Warum ist der Himmel blau?<S2>Rayleigh <b>Streuung</b>.<S1>Und abends?")
    for broken in ("<S1>Warum?<S2>Rayleigh.",  # a token missing
                   "<S1>Warum?<S2>Rayleigh.<S2>Und?",  # reordered
                   "<S1>Warum?<S2>Rayleigh.<S1>Und?<S2>Noch?",  # duplicated
                   "Also: <S1>Warum?<S2>Rayleigh.<S1>Und?",  # text before the first token
                   "<S1>Warum?<S2> <S1>Und?"):  # an empty turn
        assert not re.fullmatch(rx, broken), broken
        with pytest.raises(RoleTokenError):
            restore_roles(masked, broken)
    capped = role_token_regex(masked, max_turn_chars=3)
    assert re.fullmatch(capped, "<S1>abc<S2>de<S1>f") and not re.fullmatch(capped, "<S1>abcd<S2>de<S1>f")
    with pytest.raises(ValueError, match="no <S1>/<S2> role token"):
        role_token_regex("plain text")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))


def _endpoints(tmp_path, **extra) -> dict:
    return {"translator": {"backend": "inprocess", "model": "tiny-translator", "max_tokens": 48, "temperature": 0.0,
                           "cache_dir": str(tmp_path / "cache"), **extra}}  # fmt: skip


def _sources(n: int) -> pd.DataFrame:
    rows = [{"id": f"g{i}", "text": f"### Human: Question {i} {'why ' * i}### Assistant: Answer {i}.", "target_lang": "es"}
            for i in range(n)]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_random_translator_keeps_every_role_token_under_the_constraint(tiny, tmp_path):
    """The tiny random model breaks the role tokens unconstrained (all rejected) and keeps them constrained."""
    params = {"prompt_languages": [], "eval_languages": ["en", "es"], "max_invalid_retries": 0}
    free_parts, free_rejected, _ = translate_guanaco(_sources(4), tiny, params, _endpoints(tmp_path / "free"))
    assert not free_parts and len(free_rejected) == 4
    constrained = {**params, "constrain_roles": True, "max_turn_chars": 6}
    parts, rejected, usage = translate_guanaco(_sources(4), tiny, constrained, _endpoints(tmp_path / "on"))
    assert rejected.empty, rejected.to_dict("records")
    es = parts["es"]
    assert es["id"].tolist() == [f"g{i}-es" for i in range(4)] and (es["status"] == "ok").all()
    assert all(t.startswith("### Human: ") and t.count("### Assistant: ") == 1 for t in es["text"])
    # the constraint is part of the cache key: the rerun is all cached, the unconstrained answers are not reused
    again_parts, _, again = translate_guanaco(_sources(4), tiny, constrained, _endpoints(tmp_path / "on"))
    assert again.iloc[0][["sent", "cached"]].tolist() == [0, 4]
    assert again_parts["es"]["text"].tolist() == es["text"].tolist()
    assert usage.iloc[0]["sent"] == 4


def test_an_endpoint_that_cannot_enforce_a_regex_refuses_the_request(tmp_path):
    client = build_client(_endpoints(tmp_path, json_mode=True)["translator"], stage="t", inprocess_model_path="unused")
    with pytest.raises(ValueError, match="regex constraint, which only backend 'inprocess'"):
        client.run([ChatRequest("k", [{"role": "user", "content": "x"}], regex="a+")])


def test_constrain_roles_with_an_api_translator_fails_at_start_up():
    params = {
        "translation": {"prompt_languages": [], "eval_languages": [], "constrain_roles": True},
        "llm_endpoints": {"translator": {"backend": "openai", "model": "gpt-3.5-turbo"}},
    }
    with pytest.raises(ParameterError, match="translation.constrain_roles: endpoint 'translator' cannot enforce a regex"):
        validate_parameters(params)
