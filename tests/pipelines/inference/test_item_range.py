"""Prompts chosen by position (``tasks.<task>.items``): the demo's exploration (1-10) and confirmation (11-50) sets."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from pydantic import ValidationError

from polyglot_kedro.param_check import ParameterError, validate_parameters
from polyglot_kedro.pipelines.inference.nodes import InferenceParams, TaskRun
from polyglot_kedro.settings import CONFIG_LOADER_ARGS
from polyglot_kedro.tasks import build_chat_prompts

CONF = Path(__file__).resolve().parents[3] / "conf"

SAMPLING = {"temperature": 0.8, "top_p": 0.9, "top_k": 50, "frequency_penalty": 0.2, "max_new_tokens": 8}


def _chat(n_en: int = 6, n_de: int = 6) -> pd.DataFrame:
    rows = [(f"e{i}", "en", f"English prompt {i}") for i in range(1, n_en + 1)]
    rows += [(f"d{i}", "de", f"Deutsche Frage {i}") for i in range(1, n_de + 1)]
    return pd.DataFrame(rows, columns=["id", "lang", "instruction"])


def _run(**selection) -> dict:
    return {"languages": ["en"], "prompt_settings": ["native"], "sampling": SAMPLING, **selection}


def test_a_range_keeps_positions_start_to_stop_with_the_prompts_own_ids():
    out = build_chat_prompts(_chat(), ["en", "de"], items=(3, 5))
    assert out[out["lang"] == "en"]["item_id"].tolist() == ["e3", "e4", "e5"]
    assert out[out["lang"] == "de"]["item_id"].tolist() == ["d3", "d4", "d5"]
    assert out[out["item_id"] == "e4"]["question"].item() == "English prompt 4"


def test_exploration_and_confirmation_sets_partition_the_prompts():
    chat = _chat(n_en=9, n_de=9)
    explore = set(build_chat_prompts(chat, ["en", "de"], items=(1, 4))["item_id"])
    confirm = set(build_chat_prompts(chat, ["en", "de"], items=(5, 9))["item_id"])
    every = set(build_chat_prompts(chat, ["en", "de"])["item_id"])
    assert not explore & confirm and explore | confirm == every
    # limit N is the range 1..N
    assert set(build_chat_prompts(chat, ["en", "de"], limit=4)["item_id"]) == explore


def test_a_language_shorter_than_the_range_keeps_what_it_has_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="polyglot_kedro.tasks.builders"):
        out = build_chat_prompts(_chat(n_en=6, n_de=4), ["en", "de"], items=(3, 6))
    assert out[out["lang"] == "de"]["item_id"].tolist() == ["d3", "d4"]
    assert len(out[out["lang"] == "en"]) == 4
    assert "language 'de' has 4 items; range 3-6 keeps 3-4" in caplog.text


def test_a_range_past_a_language_s_items_is_an_error_naming_it():
    with pytest.raises(ValueError, match="language 'de' has 4 items, the range starts at item 5"):
        build_chat_prompts(_chat(n_en=6, n_de=4), ["en", "de"], items=(5, 6))


def test_the_builder_refuses_limit_and_items_together_and_empty_ranges():
    with pytest.raises(ValueError, match="either limit or items"):
        build_chat_prompts(_chat(), ["en"], limit=2, items=(1, 2))
    with pytest.raises(ValueError, match="start <= stop"):
        build_chat_prompts(_chat(), ["en"], items=(4, 3))


def test_params_accept_a_range_open_ended_or_not():
    assert TaskRun.model_validate(_run(items={"start": 11, "stop": 50})).item_range == (11, 50)
    assert TaskRun.model_validate(_run(items={"start": 11})).item_range == (11, None)
    assert TaskRun.model_validate(_run(limit=10)).item_range is None


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"items": {"start": 11, "stop": 5}}, "items.stop (5) is before items.start (11)"),
        ({"items": {"start": 0, "stop": 5}}, "greater than or equal to 1"),
        ({"items": {"begin": 1, "stop": 5}}, "Extra inputs"),
        ({"limit": 10, "items": {"start": 11, "stop": 50}}, "either limit or items"),
    ],
)
def test_params_reject_bad_ranges(selection, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        TaskRun.model_validate(_run(**selection))


def test_start_up_check_names_the_bad_range_key():
    """The start-up validation (param_check) names the key of a bad range, before any node runs."""
    base = OmegaConfigLoader(conf_source=str(CONF), env="base", **CONFIG_LOADER_ARGS)["parameters"]
    params = dict(base)
    chat = {**params["inference"]["tasks"]["chat"], "limit": None, "items": {"start": 20, "stop": 10}}
    params["inference"] = {**params["inference"], "tasks": {**params["inference"]["tasks"], "chat": chat}}
    with pytest.raises(ParameterError, match=r"params:inference\.tasks\.chat\.items: .*items\.stop \(10\) is before"):
        validate_parameters(params)
    InferenceParams.model_validate(base["inference"])  # the untouched parameters pass
