"""The judging pipeline end to end with SequentialRunner on tiny in-memory data."""

from __future__ import annotations

import pandas as pd
import pytest
from .conftest import CHAT, make_generations, make_xnli
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset
from llm_server import make_tiny_causal_lm

from polyglot_kedro.config import MixSpec
from polyglot_kedro.contracts import SCORE_COLUMNS
from polyglot_kedro.pipelines import mix_name_inputs
from polyglot_kedro.pipelines.judging import create_pipeline

MIXES = {"mono": MixSpec(kind="mono"), "multi2": MixSpec(kind="multi", n_languages=2)}


def _catalog(judging: dict, endpoints: dict, base_model: str | None, tmp_path) -> DataCatalog:
    data = {
        "base_model": MemoryDataset(base_model),
        "params:judging": MemoryDataset(judging),
        "params:llm_endpoints": MemoryDataset(endpoints),
        "params:task_scoring": MemoryDataset({"xquad": {"metrics": ["xquad_em", "xquad_f1"]}}),
        **{name: MemoryDataset(mix) for name, mix in mix_name_inputs(MIXES).items()},
    }
    for mix in MIXES:
        data[f"params:mixes.{mix}"] = MemoryDataset(MIXES[mix].model_dump())
        data[f"{mix}.generations"] = MemoryDataset(make_generations(mix))
        data[f"{mix}.xnli_loglik"] = MemoryDataset(make_xnli())
        # the real output type: parquet round trip of the tidy table
        data[f"{mix}.scores"] = ParquetDataset(filepath=str(tmp_path / "scores" / f"{mix}.parquet"))
        data[f"{mix}.chat_judgments"] = ParquetDataset(filepath=str(tmp_path / "judgments" / f"{mix}.parquet"))
        data[f"{mix}.judging_usage"] = ParquetDataset(filepath=str(tmp_path / "usage" / f"{mix}.parquet"))
    return DataCatalog(data)


def test_pipeline_shape():
    pipe = create_pipeline(mixes=MIXES)
    assert {n.name for n in pipe.nodes} == {
        f"{m}.{n}" for m in MIXES
        for n in ("detect_chat_languages", "judge_chat", "judge_noise_subset", "collect_judging_usage", "score_chat",
                  "score_tasks", "collect_scores")
    }
    assert "base_model" in pipe.inputs() and "mono.generations" in pipe.inputs()
    # the mix reaches its nodes as a visible parameter input, one per namespace
    assert {"params:mono.mix_name", "params:multi2.mix_name"} <= pipe.inputs()
    assert {"mono.scores", "multi2.scores", "mono.judging_usage"} <= pipe.outputs()
    assert len(create_pipeline(mixes=None).nodes) == 0


def test_sequential_run_http_judge(judging_params, llm_endpoints, judge_server, tmp_path):
    catalog = _catalog(judging_params, llm_endpoints, None, tmp_path)
    SequentialRunner().run(create_pipeline(mixes=MIXES), catalog)
    for mix in MIXES:
        scores = catalog.load(f"{mix}.scores")
        assert list(scores.columns) == SCORE_COLUMNS and (scores["mix"] == mix).all()
        help_ = scores[scores["metric"] == "helpfulness"].set_index("item_id")
        assert len(help_) == len(CHAT) and help_.loc["d1", "score"] == 1.0 and help_.loc["d1", "raw_score"] == 5.0
        assert help_["valid"].sum() == len(CHAT) - 2
        assert set(scores["metric"]) == {"helpfulness", "io_lang_agreement", "tgt_lang", "lcb_line_pass",
                                         "xquad_em", "xquad_f1", "xcsqa_acc", "xnli_acc"}
        assert catalog.load(f"{mix}.judging_usage")["mix"].tolist() == [mix]
    # the two mixes hold identical responses: the second is answered from the cache
    assert judge_server.total == len(CHAT)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sequential_run_inprocess_judge_offline(judging_params, tmp_path):
    """The demo path: the judge is the local model through the in-process backend."""
    model_dir = make_tiny_causal_lm(tmp_path / "tiny")
    endpoints = {
        "judge": {"backend": "inprocess", "model": "tiny-judge", "max_tokens": 8, "json_mode": True,
                  "cache_dir": str(tmp_path / "cache")},
        "translator": {"backend": "inprocess", "model": "tiny-mt", "max_tokens": 8, "cache_dir": str(tmp_path / "cache")},
    }
    catalog = _catalog(judging_params, endpoints, model_dir, tmp_path)
    SequentialRunner().run(create_pipeline(mixes={"mono": MIXES["mono"]}), catalog)
    scores = catalog.load("mono.scores")
    help_ = scores[scores["metric"] == "helpfulness"]
    assert len(help_) == len(CHAT) and set(help_["judge"]) == {"inprocess:tiny-judge"}
    # a random model's reply is noise: whatever it is, every row is either a 1-6 score or says why not
    assert (help_["valid"] == help_["score"].between(1, 6)).all()
    assert help_.loc[~help_["valid"], "invalid_reason"].notna().all()
    assert (scores.loc[scores["metric"] == "io_lang_agreement", "score"].isin([0.0, 1.0])).all()
    pd.testing.assert_frame_equal(scores, pd.read_parquet(tmp_path / "scores" / "mono.parquet"))
