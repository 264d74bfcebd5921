"""The ``demo`` environment (CPU-scale replication, docs/REPLICATION.md) resolves and its sources fit.

Fast checks only: configuration, typed parameters, and that the real Guanaco
rows supply every mix the demo builds. The run itself (``make demo``, about
half an hour on 2 cores) is not a test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader

from polyglot_kedro.config import mix_specs, resolve_model
from polyglot_kedro.grid import load_mixes
from polyglot_kedro.pipelines.data_mixing.mixes import build_mixes
from polyglot_kedro.pipelines.data_mixing.nodes import (
    identify_languages,
    parse_guanaco_rows,
)
from polyglot_kedro.pipelines.data_mixing.params import DataMixingParams
from polyglot_kedro.pipelines.finetuning.params import FinetuningParams
from polyglot_kedro.pipelines.inference.nodes import InferenceParams
from polyglot_kedro.pipelines.judging.nodes import JudgingParams
from polyglot_kedro.pipelines.reporting.params import ReportingParams
from polyglot_kedro.pipelines.translation.nodes import TranslationParams
from polyglot_kedro.settings import CONFIG_LOADER_ARGS

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_config() -> OmegaConfigLoader:
    return OmegaConfigLoader(conf_source=str(REPO_ROOT / "conf"), env="demo", **CONFIG_LOADER_ARGS)


@pytest.fixture(scope="module")
def params(demo_config) -> dict:
    return demo_config["parameters"]


def _source(demo_config, name: str) -> Path:
    """A local source of the demo env, resolved from the repo root (where kedro runs)."""
    return (REPO_ROOT / demo_config["globals"]["sources"][name]).resolve()


def test_demo_model_is_the_real_smollm2(params):
    spec = resolve_model(params["models"], params["model"])
    assert spec.name == "smollm2_135m"
    assert spec.source == "gguf_wheel"


def test_demo_mixes_include_untuned_base_and_mono_multi2_multi3(params):
    specs = mix_specs(params["mixes"])
    assert specs["base"].kind == "untuned"
    assert specs["mono"].kind == "mono"
    assert (specs["multi2"].kind, specs["multi2"].n_languages) == ("multi", 2)
    assert (specs["multi3"].kind, specs["multi3"].n_languages) == ("multi", 3)
    # The registry builds exactly the namespaces the nodes will see.
    assert set(load_mixes(REPO_ROOT, env="demo")) == set(specs)


def test_demo_stage_parameters_validate(params):
    DataMixingParams.model_validate(params["data_mixing"])
    FinetuningParams.model_validate(params["finetuning"])
    judging = JudgingParams.model_validate(params["judging"])
    ReportingParams.model_validate(params["reporting"])
    inference = InferenceParams.model_validate(params["inference"])
    translation = TranslationParams.model_validate(params["translation"])
    # Only generated seeds can be judged.
    assert set(judging.chat.seeds) <= set(inference.seeds)
    # Chat only; every chat language is an evaluation language with native prompts.
    assert inference.tasks.chat.enabled and not inference.tasks.xquad.enabled and not inference.tasks.xcsqa.enabled
    assert set(inference.tasks.chat.languages) == set(translation.eval_languages)
    assert translation.prompt_languages == []
    for lang in ("en", "es", "ru", "de", "fr", "bg", "no", "hi"):
        assert lang in inference.tasks.chat.languages
    # The confirmation set, fixed in advance (docs/REPLICATION.md): prompts 11-50.
    assert inference.tasks.chat.item_range == (11, 50) and inference.tasks.chat.limit is None


def test_demo_judge_endpoint_enforces_the_verdict_schema(params):
    """The demo's judge: in-process transformers, fp32, the schema enforced by xgrammar, seed 0, a fixed sample."""
    from polyglot_kedro.llm.client import LLMEndpointConfig

    judging = JudgingParams.model_validate(params["judging"])
    assert judging.chat.enabled and judging.chat.seeds == [0]
    # A fixed sample of the confirmation prompts per language (time budget: conf/demo/parameters_judging.yml).
    chat = InferenceParams.model_validate(params["inference"]).tasks.chat
    start, stop = chat.item_range
    assert judging.chat.n_items is not None and judging.chat.n_items < stop - start + 1
    assert not judging.chat.judge_mismatched
    endpoint = {**params["llm_endpoints"][judging.chat.endpoint],
                **{k: v for k, v in judging.chat.request.model_dump().items() if v is not None}}  # fmt: skip
    cfg = LLMEndpointConfig.model_validate(endpoint)  # refuses a schema the backend cannot enforce
    assert (cfg.backend, cfg.inprocess_engine, cfg.inprocess_dtype) == ("inprocess", "transformers", "float32")
    schema = cfg.json_schema
    assert schema["required"] == ["reasoning", "score"]
    assert schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5, 6]
    # room for the longest reasoning (one token per character) plus the JSON around it
    assert cfg.max_tokens >= schema["properties"]["reasoning"]["maxLength"] + 20


def test_demo_inference_keeps_its_own_partitions(params):
    inference = InferenceParams.model_validate(params["inference"])
    base = OmegaConfigLoader(conf_source=str(REPO_ROOT / "conf"), env="base", **CONFIG_LOADER_ARGS)["parameters"]
    assert inference.work_dir != base["inference"]["work_dir"]
    assert FinetuningParams.model_validate(params["finetuning"]).resume is False


def test_real_guanaco_supplies_every_demo_mix(demo_config, params):
    path = _source(demo_config, "guanaco")
    if not path.is_file():
        pytest.skip(f"real Guanaco rows not found at {path}")
    raw = pd.read_json(path, lines=True)
    parsed, _ = parse_guanaco_rows(raw, params["data_mixing"])
    lid = identify_languages(parsed, params["data_mixing"])
    mixes = build_mixes(lid, params["data_mixing"], params["mixes"])
    total = params["data_mixing"]["mixing"]["total_size"]
    per_language = params["data_mixing"]["mixing"]["per_language"]
    assert len(mixes["mono"]) == total and set(mixes["mono"]["lang"]) == {"en"}
    assert mixes["multi2"]["lang"].value_counts().to_dict() == {"en": total - per_language, "es": per_language}
    assert mixes["multi3"]["lang"].value_counts().to_dict() == {
        "en": total - 2 * per_language, "es": per_language, "ru": per_language,
    }  # fmt: skip
    assert "base" not in mixes  # untuned: no training data


def test_demo_chat_prompts_cover_every_chat_language(demo_config, params, shared_data):
    from kedro.io import DataCatalog

    # A fresh loader: Kedro's ${globals:} resolver is process-wide, and the last
    # loader created (by any test) would otherwise answer for this env.
    loader = OmegaConfigLoader(conf_source=str(REPO_ROOT / "conf"), env="demo", **CONFIG_LOADER_ARGS)
    entry = loader["catalog"]["chat_prompts_raw"]
    cwd = Path.cwd()
    try:  # relative sources resolve from the repo root, where kedro runs
        import os

        os.chdir(REPO_ROOT)
        prompts = DataCatalog.from_config({"chat_prompts_raw": entry}).load("chat_prompts_raw")
    finally:
        os.chdir(cwd)
    assert {"id", "lang", "instruction"} <= set(prompts.columns)
    # Only lines the loader rejected (hi's line 50) lack an instruction; assemble_chat_prompts drops them.
    good = prompts[prompts["source_error"].isna()] if "source_error" in prompts.columns else prompts
    assert good["instruction"].notna().all()
    assert prompts.loc[prompts["instruction"].isna(), "lang"].tolist() == ["hi"]
    chat = InferenceParams.model_validate(params["inference"]).tasks.chat
    counts = good["lang"].value_counts()
    for lang in chat.languages:
        assert counts.get(lang, 0) >= chat.item_range[0], f"{lang}: {counts.get(lang, 0)} prompts"
    assert not good.duplicated(["lang", "id"]).any()


def test_demo_evaluates_the_confirmation_prompts_and_skips_hindi_s_bad_line(params, shared_data, caplog):
    """Prompts 11-50 of every language (hi: 11-49, its line 50 is malformed upstream), never prompts 1-10."""
    import logging

    from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset
    from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts
    from polyglot_kedro.pipelines.translation.nodes import assemble_chat_prompts

    loader = OmegaConfigLoader(conf_source=str(REPO_ROOT / "conf"), env="demo", **CONFIG_LOADER_ARGS)
    sources = {lang: {**spec, "source": str(REPO_ROOT / spec["source"])} if isinstance(spec, dict)
               else str(REPO_ROOT / spec) for lang, spec in loader["globals"]["sources"]["chat_prompts"].items()}  # fmt: skip
    raw = HubOrLocalDataset(source=sources, rename={"prompt": "instruction"}).load()
    with caplog.at_level(logging.WARNING):
        chat_prompts = assemble_chat_prompts(raw, {}, params["translation"])
    assert "test_hi.jsonl, line 50: invalid JSON" in caplog.text
    prompts = build_eval_prompts(chat_prompts, pd.DataFrame(), pd.DataFrame(), params["inference"])
    counts = prompts.groupby("lang").size().to_dict()
    assert counts == {**{lang: 40 for lang in ("en", "es", "ru", "de", "fr", "bg", "no")}, "hi": 39}
    # German = AlpacaEval lines 11-50 (ids number the lines from 00000).
    assert prompts[prompts["lang"] == "de"]["item_id"].tolist() == [f"{i:05d}" for i in range(10, 50)]
    # The OASST files are parallel: the same 40 prompt ids in every language, none of the first ten.
    oasst = pd.read_json(shared_data / "hplt_oasst_test" / "test_en.jsonl", lines=True)["id"].tolist()
    for lang in ("en", "es", "ru", "fr", "bg", "no"):
        assert prompts[prompts["lang"] == lang]["item_id"].tolist() == oasst[10:50]
    assert prompts[prompts["lang"] == "hi"]["item_id"].tolist() == oasst[10:49]
