"""The finetuning pipeline end to end on an in-test catalog (tiny model, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from polyglot_kedro.config import mix_specs
from polyglot_kedro.datasets.model_folder import ModelFolderDataset
from polyglot_kedro.pipelines import mix_name_inputs
from polyglot_kedro.pipelines.base_model import create_pipeline as create_model_pipeline
from polyglot_kedro.pipelines.finetuning import create_pipeline


def test_untuned_mixes_get_no_nodes():
    pipe = create_pipeline(mixes=mix_specs({"mono": {"kind": "mono"}, "base": {"kind": "untuned"}}))
    assert sorted(n.name for n in pipe.nodes) == ["mono.merge_adapter", "mono.train_adapter"]
    assert pipe.inputs() == {"mono.train_mix", "base_model", "params:model", "params:models", "params:finetuning",
                             "params:mono.mix_name"}
    assert create_model_pipeline().outputs() == {"base_model"}


def test_pipeline_trains_saves_and_merges(train_mix, base_model, models_registry, finetuning_params, tmp_path):
    pipe = create_pipeline(mixes=mix_specs({"mono": {"kind": "mono"}}))
    catalog = DataCatalog(
        {
            "mono.train_mix": MemoryDataset(train_mix),
            "base_model": MemoryDataset(base_model, copy_mode="assign"),
            "params:model": MemoryDataset("tiny_llama"),
            "params:models": MemoryDataset(models_registry),
            "params:finetuning": MemoryDataset(finetuning_params),
            "mono.adapter": ModelFolderDataset(path=str(tmp_path / "adapters" / "mono"), version=None),
            "mono.merged_model": ModelFolderDataset(path=str(tmp_path / "merged" / "mono"), move=True),
            "mono.training_metrics": MemoryDataset(copy_mode="assign"),
            **{name: MemoryDataset(value) for name, value in mix_name_inputs(["mono"]).items()},
        }
    )
    SequentialRunner().run(pipe, catalog)
    adapter = catalog["mono.adapter"].load()
    merged = catalog["mono.merged_model"].load()
    metrics = catalog["mono.training_metrics"].load()
    assert (Path(adapter) / "adapter_config.json").is_file()
    assert metrics["global_step"] == finetuning_params["max_steps"] and metrics["mix"] == "mono"
    check = json.loads((Path(merged) / "polyglot_merge_check.json").read_text())
    assert check["max_abs_logit_diff"] <= 1e-3

    # Independent check: base+adapter (PEFT) and the merged folder give the same logits,
    # and the adapter really changed the model.
    tok = AutoTokenizer.from_pretrained(merged)
    ids = tok(["### Human: Who wrote Hamlet?### Assistant:"], return_tensors="pt")
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32).eval()
        base_logits = base(**ids).logits
        peft_logits = PeftModel.from_pretrained(base, adapter).eval()(**ids).logits
        merged_logits = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()(**ids).logits
    assert torch.allclose(peft_logits, merged_logits, atol=1e-4)
    assert not torch.allclose(base_logits, merged_logits, atol=1e-4)


def test_merge_check_fails_above_tolerance(train_mix, base_model, models_registry, finetuning_params):
    from polyglot_kedro.pipelines.finetuning.merge import merge_adapter
    from polyglot_kedro.pipelines.finetuning.nodes import train_lora

    adapter, _ = train_lora(train_mix, base_model, "tiny_llama", models_registry,
                            {**finetuning_params, "max_steps": 2}, mix_name="x")
    # W x + B A x and (W + B A) x round differently in fp32 (~1e-7): a 1e-12
    # tolerance must trip the check.
    params = {**finetuning_params, "merge": {"max_abs_logit_diff": 1e-12}}
    with pytest.raises(ValueError, match="mix x: merged model logits differ"):
        merge_adapter(adapter, base_model, "tiny_llama", models_registry, params, "x")
