"""The translation pipeline on Kedro's SequentialRunner with a tiny in-process model."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.partitions import PartitionedDataset
from llm_server import make_tiny_causal_lm

from polyglot_kedro.pipelines.translation import create_pipeline


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny_model"))


def test_wiring_depends_on_mt_mixes():
    assert {n.name for n in create_pipeline().nodes} == {"translate_prompts", "assemble_chat_prompts"}
    mixes = {"mono": {"kind": "mono"}, "mt2": {"kind": "multi", "n_languages": 2, "source": "mt"}}
    assert "translate_guanaco" in {n.name for n in create_pipeline(mixes=mixes).nodes}


def test_pipeline_inprocess_with_parquet_partitions(tiny_model, tmp_path, chat_prompts_raw):
    endpoints = {"translator": {"backend": "inprocess", "model": "tiny", "max_tokens": 8,
                                "cache_dir": str(tmp_path / "cache")}}  # fmt: skip
    params = {"prompt_languages": ["de", "zh"], "eval_languages": ["en", "de", "zh"]}
    catalog = DataCatalog(
        {
            "chat_prompts_raw": MemoryDataset(chat_prompts_raw),
            "base_model": MemoryDataset(tiny_model),
            "params:translation": MemoryDataset(params),
            "params:llm_endpoints": MemoryDataset(endpoints),
            "prompt_translations": PartitionedDataset(
                path=str(tmp_path / "prompt_translations"), dataset="pandas.ParquetDataset", filename_suffix=".parquet"
            ),
            "chat_prompts": MemoryDataset(),
            "translation_usage": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    assert sorted(p.name for p in (tmp_path / "prompt_translations").iterdir()) == ["de.parquet", "zh.parquet"]
    chat = catalog.load("chat_prompts")
    assert chat.groupby("lang")["prompt_source"].first().to_dict() == {"de": "mt", "en": "native", "zh": "mt"}
    assert chat["instruction"].map(lambda s: isinstance(s, str)).all()
    usage = catalog.load("translation_usage").iloc[0]
    assert (usage.backend, usage.sent, usage.failed) == ("inprocess", 6, 0) and usage.completion_tokens > 0
    zh = pd.read_parquet(tmp_path / "prompt_translations" / "zh.parquet")
    assert set(zh["status"]) == {"ok"} and set(zh["model"]) == {"tiny"}
