"""The grid's model dimension: a mix on its own registry model (``MixSpec.model``, ``label``).

The config rule, the wiring (one base model per model, the mix's nodes on it,
the judge unchanged), the per-namespace names the start-up hook provides, and
reporting pairing the same label across models.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from polyglot_kedro.config import check_mix_models, mix_models, mix_specs, mixes_by_label
from polyglot_kedro.hooks import MixNameParamsHook, check_mix_grid, registry_mixes
from polyglot_kedro.param_check import ParameterError, validate_parameters
from polyglot_kedro.pipelines import base_model as base_model_stage
from polyglot_kedro.pipelines import finetuning, inference, judging, mix_namespaces, on_mix_models
from polyglot_kedro.pipelines.reporting.inputs import combine_scores
from polyglot_kedro.project_config import load_parameters

REGISTRY = {"tiny_llama": {}, "tiny_llama_small": {}}
GRID = {"mono": {"kind": "mono"}, "multi2": {"kind": "multi", "n_languages": 2},
        "mono_s": {"kind": "mono", "model": "tiny_llama_small", "label": "mono"}}


def test_the_grid_with_a_second_model_is_valid():
    specs = mix_specs(GRID)
    assert check_mix_models(specs, REGISTRY, "tiny_llama") == []
    assert mix_models(specs) == ["tiny_llama_small"]
    # reporting sees one recipe per label: mono on both models is one mix
    assert list(mixes_by_label(GRID)) == ["mono", "multi2"]
    assert mixes_by_label(GRID)["mono"] == mix_specs({"m": {"kind": "mono"}})["m"]


def test_an_unknown_model_is_named_with_the_valid_ones():
    (problem,) = check_mix_models(mix_specs({**GRID, "mono_s": {**GRID["mono_s"], "model": "tiny_lama"}}),
                                  REGISTRY, "tiny_llama")
    assert "'mono_s'" in problem and "Unknown model 'tiny_lama'" in problem and "tiny_llama_small" in problem


@pytest.mark.parametrize("model", [None, "tiny_llama"])
def test_two_mixes_may_not_write_the_same_rows(model):
    # no model means params:model: then mono_s runs as mix 'mono' on the model mono already uses
    grid = {**GRID, "mono_s": {"kind": "mono", "label": "mono", **({"model": model} if model else {})}}
    (problem,) = check_mix_models(mix_specs(grid), REGISTRY, "tiny_llama")
    assert "'mono' and 'mono_s'" in problem and "on model 'tiny_llama'" in problem


def test_a_label_names_one_recipe():
    grid = {**GRID, "multi2_s": {"kind": "multi", "n_languages": 3, "model": "tiny_llama_small", "label": "multi2"}}
    (problem,) = check_mix_models(mix_specs(grid), REGISTRY, "tiny_llama")
    assert "'multi2' and 'multi2_s' share the label 'multi2'" in problem
    with pytest.raises(ValueError, match="share the label"):
        mixes_by_label(grid)


def test_start_up_validation_names_the_mix_and_the_unknown_model(repo_root):
    params = load_parameters(repo_root / "conf", "local")
    assert params["mixes"]["mono_s"]["model"] in params["models"]  # the shipped grid is valid
    params["mixes"]["mono_s"] = {**params["mixes"]["mono_s"], "model": "tiny_llama_medium"}
    with pytest.raises(ParameterError) as info:
        validate_parameters(params, conf_source=repo_root / "conf", env="local")
    assert "params:mixes: mix 'mono_s': Unknown model 'tiny_llama_medium'" in str(info.value)


def test_a_mix_on_its_own_model_trains_on_that_base_model_and_the_judge_stays():
    specs = mix_specs(GRID)
    tuned = on_mix_models(finetuning.create_pipeline(mixes=specs), specs)
    nodes = {n.name: n for n in tuned.nodes}
    small = nodes["mono_s.train_adapter"]
    assert {"tiny_llama_small.base_model", "params:mixes.mono_s.model"} <= set(small.inputs)
    assert not {"base_model", "params:model"} & set(small.inputs)
    assert {"base_model", "params:model"} <= set(nodes["mono.train_adapter"].inputs)
    # judging is not re-wired: every mix is judged by the run's model
    judged = judging.create_pipeline(mixes=specs)
    assert "base_model" in next(n for n in judged.nodes if n.name == "mono_s.judge_chat").inputs

    models = base_model_stage.create_pipeline(models=mix_models(specs))
    assert sorted(models.outputs()) == ["base_model", "tiny_llama_small.base_model"]
    assert "params:tiny_llama_small.model" in models.inputs()
    # the model namespace is not a mix (registry check, cluster arrays)
    assert mix_namespaces(models + tuned) == ["mono", "mono_s", "multi2"]


def test_an_untuned_mix_on_its_own_model_generates_with_that_base_model():
    specs = mix_specs({"base": {"kind": "untuned"},
                       "base_s": {"kind": "untuned", "model": "tiny_llama_small", "label": "base"}})
    infer = on_mix_models(inference.create_pipeline(mixes=specs), specs)
    nodes = {n.name: n for n in infer.nodes}
    assert {"tiny_llama_small.base_model", "params:mixes.base_s.model"} <= set(nodes["base_s.generate_outputs"].inputs)
    assert "base_model" in nodes["base.generate_outputs"].inputs
    assert "build_eval_prompts" in nodes  # the shared node is kept once


def test_the_hook_names_each_namespace_and_the_registry_check_ignores_model_namespaces():
    catalog: dict = {}
    MixNameParamsHook().after_catalog_created(catalog, {"parameters": {"mixes": {**GRID, "dropped": None}}})
    assert catalog == {"params:mono.mix_name": "mono", "params:multi2.mix_name": "multi2",
                       "params:mono_s.mix_name": "mono", "params:tiny_llama_small.model": "tiny_llama_small"}
    specs = mix_specs(GRID)
    pipe = base_model_stage.create_pipeline(models=mix_models(specs)) + finetuning.create_pipeline(mixes=specs)
    check_mix_grid(registry_mixes({"__default__": pipe}), GRID)


def test_a_model_key_with_a_dot_cannot_be_a_namespace():
    with pytest.raises(ValueError, match="cannot be a Kedro namespace"):
        base_model_stage.create_pipeline(models=["tiny.llama"])


def test_the_namespaced_base_model_node_prepares_its_own_model(tmp_path):
    small = {"source": "tiny", "dtype": "float32",
             "tiny": {"hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "num_key_value_heads": 2, "max_position_embeddings": 128, "vocab_size": 300}}
    texts = ["### Human: hello there### Assistant: hi, how are you?", "### Human: hola### Assistant: hola amigo"] * 20
    pipe = base_model_stage.create_pipeline(models=["small"]).only_nodes_with_namespaces(["small"])
    catalog = DataCatalog({
        "guanaco_raw": MemoryDataset(pd.DataFrame({"text": texts})),
        "chat_prompts_raw": MemoryDataset(pd.DataFrame({"instruction": ["hello", "hola"]})),
        "params:models": MemoryDataset({"small": small}),
        "params:model_preparation": MemoryDataset({"work_dir": str(tmp_path / "prepared")}),
        "params:small.model": MemoryDataset("small"),  # what MixNameParamsHook adds
        "small.base_model": MemoryDataset(),
    })
    SequentialRunner().run(pipe, catalog)
    folder = catalog.load("small.base_model")
    assert folder == str(tmp_path / "prepared" / "small")
    config = json.loads((tmp_path / "prepared" / "small" / "config.json").read_text())
    assert config["hidden_size"] == 64 and config["num_hidden_layers"] == 1


def _scores(mix: str, model: str) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "mix": mix, "task": "chat", "lang": ["de", "es"], "prompt_setting": "native",
                         "seed": 0, "item_id": ["1", "2"], "metric": "io_lang_agreement", "score": [1.0, 0.0],
                         "valid": True, "invalid_reason": None, "engine": "transformers"})


def test_rows_of_a_labelled_mix_carry_its_label():
    out = combine_scores(mixes=GRID, mono=_scores("mono", "tiny_llama"), mono_s=_scores("mono", "tiny_llama_small"))
    assert out.groupby("model")["mix"].unique().map(list).to_dict() == {"tiny_llama": ["mono"],
                                                                         "tiny_llama_small": ["mono"]}
    with pytest.raises(ValueError, match="mono_s.scores' holds rows of other mixes \\['mono_s'\\]"):
        combine_scores(mixes=GRID, mono_s=_scores("mono_s", "tiny_llama_small"))
