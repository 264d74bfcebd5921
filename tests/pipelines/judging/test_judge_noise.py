"""judging.chat.judge_noise: a reproducible subset judged again by a second judge, through the same cache."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from polyglot_kedro.config import MixSpec
from polyglot_kedro.contracts import JUDGE_NOISE_COLUMNS, JUDGMENT_COLUMNS
from polyglot_kedro.param_check import ParameterError, validate_parameters
from polyglot_kedro.pipelines.judging import create_pipeline
from polyglot_kedro.pipelines.judging.nodes import (
    JudgingParams,
    collect_judging_usage,
    detect_chat_languages,
    judge_chat,
    judge_noise_subset,
    sample_items,
)

from .conftest import CHAT, make_generations

SEEDS = (0, 1)


def _noise(n_items, **second) -> dict:
    return {"chat": {"mode": "direct", "n_items": None, "sample_seed": 42,
                     "judge_noise": {"enabled": True, "n_items": n_items, "sample_seed": 7, "second": second}}}


def _same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


def _first(generations, judging, endpoints):
    langs = detect_chat_languages(generations, judging)
    return judge_chat(generations, langs, None, judging, endpoints, mix_name="mono")


def test_second_seed_rejudges_exactly_the_drawn_subset_and_a_rerun_is_free(llm_endpoints, judge_server):
    gens = make_generations(seeds=SEEDS)
    judging = _noise(2, seed=43)
    judgments, _ = _first(gens, judging, llm_endpoints)
    first_calls = judge_server.total
    # the responses are the same under both generation seeds: one request per response, the other seed rides on it
    assert first_calls == len(CHAT)

    noise, usage = judge_noise_subset(judgments, None, judging, llm_endpoints, "mono")
    assert list(noise.columns) == JUDGE_NOISE_COLUMNS
    # the subset: 2 prompts per language (both de items; en drawn with the option's own seed), every seed
    en = sorted({c[0] for c in CHAT if c[1] == "en"})
    expected = {("en", i) for i in sample_items(pd.Series(en), 2, 7)} | {("de", "d1"), ("de", "d2")}
    assert set(zip(noise["lang"], noise["item_id"])) == expected
    assert sorted(noise["seed"].unique()) == list(SEEDS) and len(noise) == len(expected) * len(SEEDS)
    # only the subset was sent again, with the second seed and the first judge's other forced settings
    new = judge_server.bodies[first_calls:]
    distinct = len(expected)
    assert judge_server.total - first_calls == distinct
    assert {b["seed"] for b in new} == {43} and {b["temperature"] for b in new} == {0.0}
    assert {b["response_format"]["type"] for b in new} == {"json_object"}
    # the same validity and language rules: the scripted replies give the same verdicts as the first judging
    first = judgments.set_index(["lang", "seed", "item_id"])
    for r in noise.to_dict("records"):
        f = first.loc[(r["lang"], r["seed"], r["item_id"])]
        assert r["valid"] == f["valid"] and _same(r["invalid_reason"], f["invalid_reason"])
        assert _same(r["first_raw_score"], f["raw_score"]) and _same(r["raw_score"], f["raw_score"])
        assert _same(r["score"], f["score"]) and _same(r["first_score"], f["score"])
        assert r["response_chars"] == len(f["response"])
    d1 = noise[noise["item_id"] == "d1"].iloc[0]  # language mismatch: raw 5, final 1, as the first verdict
    assert (d1.raw_score, d1.score) == (5.0, 1.0)
    assert set(noise["judge"]) == {"openai:judge-model [seed 43, temperature 0.0]"}
    assert set(noise["first_judge"]) == {"openai:judge-model [seed 42, temperature 0.0]"}
    u = usage.iloc[0]
    assert (u.stage, u.requests, u.sent, u.mix) == ("judging_noise", len(noise), distinct, "mono")

    # a rerun pays nothing: every second verdict comes from the cache
    again, usage2 = judge_noise_subset(judgments, None, judging, llm_endpoints, "mono")
    assert judge_server.total - first_calls == distinct
    assert again["cached"].all() and usage2.iloc[0].sent == 0
    pd.testing.assert_frame_equal(again.drop(columns=["cached", "attempts"]), noise.drop(columns=["cached", "attempts"]))


def test_second_endpoint_is_another_model(llm_endpoints, judge_server):
    endpoints = {**llm_endpoints, "judge2": {**llm_endpoints["judge"], "model": "judge-two"}}
    gens = make_generations()
    judging = _noise(None, endpoint="judge2")
    judgments, _ = _first(gens, judging, endpoints)
    before = judge_server.total
    noise, usage = judge_noise_subset(judgments, None, judging, endpoints, "mono")
    assert len(noise) == len(CHAT)  # n_items null: every judged response
    assert {b["model"] for b in judge_server.bodies[before:]} == {"judge-two"}
    assert {b["seed"] for b in judge_server.bodies[before:]} == {42}  # the first judge's forced seed
    assert set(noise["judge"]) == {"openai:judge-two [seed 42, temperature 0.0]"}
    assert usage.iloc[0].model == "judge-two"


def test_unasked_responses_are_not_rejudged(llm_endpoints, judge_server):
    gens = make_generations()
    judging = _noise(None, seed=43)
    judging["chat"]["judge_mismatched"] = False  # d1 (English reply to German) is scored 1 without a request
    judgments, _ = _first(gens, judging, llm_endpoints)
    noise, _ = judge_noise_subset(judgments, None, judging, llm_endpoints, "mono")
    assert "d1" not in set(noise["item_id"]) and len(noise) == len(CHAT) - 1
    calls = judge_server.total
    none_asked, usage = judge_noise_subset(judgments[judgments["item_id"] == "d1"], None, judging, llm_endpoints, "mono")
    assert none_asked.empty and usage.empty and judge_server.total == calls


def test_option_off_changes_nothing(generations, judging_params, llm_endpoints, judge_server):
    judgments, usage = _first(generations, judging_params, llm_endpoints)
    calls = judge_server.total
    noise, noise_usage = judge_noise_subset(judgments, None, judging_params, llm_endpoints, "mono")
    assert noise.empty and list(noise.columns) == JUDGE_NOISE_COLUMNS and noise_usage.empty
    assert judge_server.total == calls
    pd.testing.assert_frame_equal(collect_judging_usage(usage, noise_usage), usage)


def test_option_on_leaves_the_first_judging_and_scores_alone(llm_endpoints, judge_server, tmp_path):
    """The whole judging pipeline: chat_judgments and scores equal an option-off run's; the ledger gains a row."""
    mixes = {"mono": MixSpec(kind="mono")}

    def run(judging: dict, cache: str) -> DataCatalog:
        endpoints = {k: {**v, "cache_dir": str(tmp_path / cache)} for k, v in llm_endpoints.items()}
        catalog = DataCatalog({
            "base_model": MemoryDataset(None), "params:judging": MemoryDataset(judging),
            "params:llm_endpoints": MemoryDataset(endpoints), "params:task_scoring": MemoryDataset({}),
            "params:mixes.mono": MemoryDataset(mixes["mono"].model_dump()), "params:mono.mix_name": MemoryDataset("mono"),
            "mono.generations": MemoryDataset(make_generations()), "mono.xnli_loglik": MemoryDataset(None),
            **{f"mono.{n}": ParquetDataset(filepath=str(tmp_path / cache / f"{n}.parquet"))  # kept after the run
               for n in ("chat_judgments", "scores", "judging_usage", "judge_noise")},
        })  # fmt: skip
        SequentialRunner().run(create_pipeline(mixes=mixes), catalog)
        return catalog

    off = run({"chat": {"n_items": None}}, "off")
    on = run(_noise(1, seed=43), "on")
    for name in ("mono.chat_judgments", "mono.scores"):
        pd.testing.assert_frame_equal(on.load(name), off.load(name))
    assert off.load("mono.judge_noise").empty and len(on.load("mono.judge_noise")) == 2  # 1 prompt x (en, de)
    assert off.load("mono.judging_usage")["stage"].tolist() == ["judging"]
    ledger = on.load("mono.judging_usage")
    assert ledger["stage"].tolist() == ["judging", "judging_noise"] and ledger["sent"].tolist() == [len(CHAT), 2]


@pytest.mark.parametrize("second, message", [
    ({"seed": 42}, "is the first judge again"),
    ({}, "is the first judge again"),
    ({"seed": 43, "tempreature": 1.0}, "tempreature"),
])
def test_bad_second_judge_fails_at_validation(second, message):
    with pytest.raises(ValueError, match=message):
        JudgingParams.model_validate(_noise(2, **second))


def test_startup_check_names_an_unknown_second_endpoint(llm_endpoints):
    params = {"judging": _noise(2, endpoint="judge3"), "llm_endpoints": llm_endpoints}
    with pytest.raises(ParameterError, match=r"judging\.chat\.judge_noise\.second\.endpoint: 'judge3' is not an endpoint"):
        validate_parameters(params)
    validate_parameters({"judging": _noise(2, seed=43), "llm_endpoints": llm_endpoints})


def test_missing_column_names_the_dataset(llm_endpoints):
    bad = pd.DataFrame(columns=[c for c in JUDGMENT_COLUMNS if c != "judged_response"], data=[[None] * (len(JUDGMENT_COLUMNS) - 1)])
    with pytest.raises(ValueError, match=r"chat_judgments: missing columns \['judged_response'\]"):
        judge_noise_subset(bad, None, _noise(2, seed=43), llm_endpoints, "mono")


def test_mixes_option_measures_the_named_mixes_only_and_names_an_unknown_one(llm_endpoints, judge_server):
    judging = _noise(2, seed=43)
    judging["chat"]["judge_noise"]["mixes"] = ["multi3"]
    judgments, _ = _first(make_generations(seeds=SEEDS), judging, llm_endpoints)
    sent = judge_server.total
    noise, usage = judge_noise_subset(judgments, None, judging, llm_endpoints, "mono")
    assert noise.empty and list(noise.columns) == JUDGE_NOISE_COLUMNS and usage.empty
    assert judge_server.total == sent  # nothing asked for a mix that is not named
    rejudged, _ = judge_noise_subset(judgments, None, judging, llm_endpoints, "multi3")
    assert not rejudged.empty and judge_server.total > sent

    params = {"judging": judging, "llm_endpoints": llm_endpoints, "mixes": {"mono": {"kind": "mono"}}}
    with pytest.raises(ParameterError, match=r"judge_noise\.mixes: \['multi3'\] are not mixes of params:mixes"):
        validate_parameters(params)
