"""Inference pipeline: wiring per mix, a full run on the tiny model, resume, bad params."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from pydantic import ValidationError

from polyglot_kedro.config import MixSpec
from polyglot_kedro.contracts import GENERATION_COLUMNS, XNLI_LOGLIK_COLUMNS
from polyglot_kedro.engines import Engine, Generation
from polyglot_kedro.pipelines import mix_name_inputs
from polyglot_kedro.pipelines.inference import create_pipeline, nodes
from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts, generate_outputs

# docs/ARCHITECTURE.md, "generations rows"
CONTRACT = [
    "model", "mix", "task", "lang", "prompt_setting", "seed", "item_id", "prompt", "output", "finish_reason",
    "engine", "batch_size", "sampling", "n_output_tokens", "gen_seconds", "n_prompt_tokens", "prompt_truncated",
    "prompt_format", "question", "options", "reference",
]  # fmt: skip


def test_create_pipeline_maps_untuned_mix_to_base_model():
    pipe = create_pipeline(mixes={"mono": MixSpec(kind="mono"), "base": MixSpec(kind="untuned")})
    assert {"mono.merged_model", "base_model", "chat_prompts", "xquad_raw", "xcsqa_raw", "xnli_raw"} <= pipe.inputs()
    assert "base.merged_model" not in pipe.inputs()
    assert {"mono.generations", "base.generations", "mono.xnli_loglik", "base.xnli_loglik"} <= pipe.outputs()
    names = {n.name for n in pipe.nodes}
    assert {"build_eval_prompts", "mono.generate_outputs", "base.score_xnli_loglik"} <= names
    # each namespace's mix name is a visible parameter input (no bound function)
    assert {"params:mono.mix_name", "params:base.mix_name"} <= pipe.inputs()
    for n in pipe.nodes:
        if n.name != "build_eval_prompts":
            assert f"params:{n.namespace}.mix_name" in n.inputs


def test_pipeline_runs_on_tiny_model(
    tiny_model_dir, chat_prompts, xquad_raw, xcsqa_raw, xnli_raw, inference_params, models, caplog
):
    inference_params["seeds"] = [0]
    pipe = create_pipeline(mixes={"mono": MixSpec(kind="mono")})
    catalog = DataCatalog(
        datasets={
            "mono.merged_model": MemoryDataset(tiny_model_dir),
            "chat_prompts": MemoryDataset(chat_prompts),
            "xquad_raw": MemoryDataset(xquad_raw),
            "xcsqa_raw": MemoryDataset(xcsqa_raw),
            "xnli_raw": MemoryDataset(xnli_raw),
            "params:inference": MemoryDataset(inference_params),
            "params:model": MemoryDataset("tiny_test"),
            "params:models": MemoryDataset(models),
            "eval_prompts": MemoryDataset(),
            "mono.generations": MemoryDataset(),
            "mono.xnli_loglik": MemoryDataset(),
            **{name: MemoryDataset(mix) for name, mix in mix_name_inputs(["mono"]).items()},
        }
    )
    with caplog.at_level("INFO", logger="polyglot_kedro"):
        SequentialRunner().run(pipe, catalog)
    gens = catalog.load("mono.generations")
    assert list(gens.columns) == CONTRACT
    # progress you can see: per generated partition (with tok/s) and per XNLI language
    assert caplog.text.count("tok/s") == 3 + 4 + 2 - 1  # 8 partitions (chat en has 2 items)
    assert "xnli en: 2 items" in caplog.text and "language 2/2" in caplog.text
    # chat 3 + xquad 2 langs x 2 settings + xcsqa 2, one seed
    assert len(gens) == 3 + 4 + 2
    assert set(gens["task"]) == {"chat", "xquad", "xcsqa"}
    assert (gens["mix"] == "mono").all() and (gens["engine"] == "transformers").all()
    assert set(gens["finish_reason"]) <= {"stop", "length"}
    xq = gens[gens["task"] == "xquad"]
    assert set(xq["prompt_setting"]) == {"en:xx", "xx:xx"}
    assert json.loads(xq["reference"].iloc[0]) == ["308"]
    assert json.loads(gens[gens["task"] == "xcsqa"]["sampling"].iloc[0])["max_new_tokens"] == 3
    assert gens[gens["task"] == "chat"]["reference"].map(json.loads).isna().all()
    # the item fields travel from the prompt builder unchanged
    assert xq["question"].tolist() == ["How many points? ", "How many points? ", "Wie viele Punkte?", "Wie viele Punkte?"]
    xc = gens[gens["task"] == "xcsqa"].set_index("lang")
    assert json.loads(xc.loc["de", "options"]) == ["Stadt", "Nest", "Meer", "Auto", "Laden"]
    assert xc.loc["en", "question"] == "Where do eagles live?"
    chat = gens[gens["task"] == "chat"]
    assert chat["question"].tolist() == ["Name a colour.", "Say hi.", "Nenne eine Farbe."]
    assert chat["options"].map(json.loads).isna().all() and xq["options"].map(json.loads).isna().all()
    xnli = catalog.load("mono.xnli_loglik")
    assert list(xnli.columns) == XNLI_LOGLIK_COLUMNS
    assert len(xnli) == 3 and (xnli["engine"] == "lm-eval").all()
    assert (xnli["correct"] == (xnli["pred"] == xnli["gold"])).all()
    assert set(xnli["pred"]) <= {"entailment", "neutral", "contradiction"}


class CountingEngine(Engine):
    """Deterministic fake engine that records every generate call."""

    name = "transformers"
    calls: list[tuple[int, int]] = []

    def _generate_job(self, job, seed):
        CountingEngine.calls.append((seed, len(job.prompts)))
        return [Generation(f"out-{seed}-{len(p)}", "stop", 2, 0.01, len(p), False) for p in job.prompts]


def test_resume_regenerates_only_missing_partition(
    monkeypatch, tmp_path, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models
):
    monkeypatch.setattr(nodes, "make_engine", lambda kind, path, **kw: CountingEngine(path, batch_size=kw["batch_size"]))
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    CountingEngine.calls = []
    first = generate_outputs("unused", prompts, inference_params, "tiny_test", models, mix_name="mono")
    # 2 seeds x (chat en, chat de, xquad 2x2, xcsqa 2) partitions
    assert len(CountingEngine.calls) == 2 * 8
    (root,) = (tmp_path / "partitions" / "mono").iterdir()  # <weights fingerprint>/
    parts = sorted(root.rglob("*.parquet"))
    assert len(parts) == 16
    victim = root / "xquad" / "de__en-xx__s42.parquet"
    victim.unlink()
    CountingEngine.calls = []
    second = generate_outputs("unused", prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert CountingEngine.calls == [(42, 1)]
    assert victim.exists()
    key = ["task", "lang", "prompt_setting", "seed", "item_id"]
    pd.testing.assert_frame_equal(
        first.sort_values(key).reset_index(drop=True), second.sort_values(key).reset_index(drop=True)
    )
    # changed sampling for one task: only that task's partitions are regenerated
    inference_params["tasks"]["xcsqa"]["sampling"]["max_new_tokens"] = 5
    CountingEngine.calls = []
    generate_outputs("unused", prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert sorted(CountingEngine.calls) == [(0, 1), (0, 1), (42, 1), (42, 1)]


def test_new_weights_under_the_same_name_regenerate(
    monkeypatch, tmp_path, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models
):
    """A retrained mix keeps its name but not its weights: nothing stale may be reused."""
    monkeypatch.setattr(nodes, "make_engine", lambda kind, path, **kw: CountingEngine(path, batch_size=kw["batch_size"]))
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights v1")
    generate_outputs(str(folder), prompts, inference_params, "tiny_test", models, mix_name="mono")
    CountingEngine.calls = []
    generate_outputs(str(folder), prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert CountingEngine.calls == []
    (folder / "model.safetensors").write_bytes(b"weights v2")
    generate_outputs(str(folder), prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert len(CountingEngine.calls) == 2 * 8


def test_bad_params_name_the_field(chat_prompts, xquad_raw, xcsqa_raw, inference_params):
    inference_params["tasks"]["chat"]["sampling"]["temprature"] = 0.5
    with pytest.raises(ValidationError, match="temprature"):
        build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)


def test_missing_language_is_an_error(chat_prompts, xquad_raw, xcsqa_raw, inference_params):
    inference_params["tasks"]["chat"]["languages"] = ["en", "fr"]
    with pytest.raises(ValueError, match="chat_prompts: no rows for language 'fr'"):
        build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)


def test_generation_columns_match_contract():
    assert GENERATION_COLUMNS == CONTRACT


def test_partition_without_item_fields_is_reused_with_them(
    monkeypatch, tmp_path, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models
):
    """The item fields belong to the prompt table: a partition written before they existed is still reused."""
    monkeypatch.setattr(nodes, "make_engine", lambda kind, path, **kw: CountingEngine(path, batch_size=kw["batch_size"]))
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    first = generate_outputs("unused", prompts, inference_params, "tiny_test", models, mix_name="mono")
    (root,) = (tmp_path / "partitions" / "mono").iterdir()
    old = root / "xcsqa" / "de__xx-xx__s0.parquet"
    pd.read_parquet(old).drop(columns=["question", "options"]).to_parquet(old, index=False)
    CountingEngine.calls = []
    again = generate_outputs("unused", prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert CountingEngine.calls == []
    pd.testing.assert_frame_equal(first, again)


def test_overlong_prompts_are_marked_truncated_and_counted(
    tiny_model_dir, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models, caplog
):
    """A generation prompt over max_model_len - max_new_tokens is cut from the left, per item on record."""
    chat_prompts.loc[1, "instruction"] = "Say hi. " * 200  # en/c2: far over 128 tokens
    models = {"tiny_test": {**models["tiny_test"], "max_model_len": 128}}
    inference_params["seeds"] = [0]
    for task in ("xquad", "xcsqa"):
        inference_params["tasks"][task]["enabled"] = False
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    with caplog.at_level("INFO", logger="polyglot_kedro"):
        out = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    flagged = out.set_index(["lang", "item_id"])["prompt_truncated"]
    assert flagged.to_dict() == {("en", "c1"): False, ("en", "c2"): True, ("de", "c1"): False}
    cut = out[out["prompt_truncated"]]
    assert (cut["n_prompt_tokens"] == 128 - 6).all()
    assert (out.loc[~out["prompt_truncated"], "n_prompt_tokens"] < 122).all()
    assert "1 of 3 prompt(s) were longer than max_model_len - max_new_tokens" in caplog.text
    assert "mono/chat/en/native/s0: 2 prompts" in caplog.text and "tok/s" in caplog.text
