"""Fixtures for the finetuning tests: a tiny base model and a small fixed mix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from polyglot_kedro import modeling
from polyglot_kedro.config import resolve_model

# Small fixed conversations in the raw Guanaco style (space before ###).
CONVERSATIONS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Name three primary colours.", "Red, yellow and blue are the three primary colours."),
    ("Wie spät ist es?", "Ich habe keine Uhr, aber dein Gerät zeigt die Uhrzeit an."),
    ("¿Cuál es el río más largo?", "El Nilo o el Amazonas, según cómo se mida."),
    ("Translate 'cat' into German.", "The German word for cat is Katze."),
    ("What is 2 + 2?", "2 + 2 equals 4."),
    ("Give me a synonym for happy.", "A synonym for happy is joyful."),
    ("Who wrote Hamlet?", "Hamlet was written by William Shakespeare."),
]
MULTI_TURN = (
    "### Human: Hi there! ### Assistant: Hello! How can I help? "
    "### Human: Tell me a fact about owls. ### Assistant: Owls can rotate their heads about 270 degrees."
)


@pytest.fixture(scope="session")
def models_registry() -> dict:
    """A registry with a smaller tiny model (vocab 512) to keep tests fast."""
    return {
        "tiny_llama": {
            "source": "tiny",
            "tiny": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
                "max_position_embeddings": 512,
                "vocab_size": 512,
                "tokenizer_min_frequency": 1,
            },
            "lora_target_modules": "all-linear",
        }
    }


@pytest.fixture(scope="session")
def train_mix() -> pd.DataFrame:
    texts = [f"### Human: {q} ### Assistant: {a}" for q, a in CONVERSATIONS] + [MULTI_TURN]
    return pd.DataFrame(
        {"id": [f"g{i:05d}" for i in range(len(texts))], "text": texts, "lang": "en", "source": "native"}
    )


@pytest.fixture(scope="session")
def base_model(tmp_path_factory, models_registry, train_mix) -> str:
    spec = resolve_model(models_registry, "tiny_llama")
    corpus = list(train_mix["text"]) * 4
    return str(modeling.prepare_base_model(spec, corpus, tmp_path_factory.mktemp("base") / "tiny_llama"))


@pytest.fixture
def finetuning_params(tmp_path: Path) -> dict:
    """Fast CPU settings; each test gets its own checkpoint root."""
    return {
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "learning_rate": 3e-3,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "max_steps": 6,
        "max_length": 128,
        "effective_batch_size": 4,
        "per_device_batch_size": 2,
        "logging_steps": 1,
        "save_steps": 3,
        "save_total_limit": 3,
        "work_dir": str(tmp_path / "ckpt" / "{model}" / "{mix}"),
        "merge": {"max_abs_logit_diff": 1e-3},
    }
