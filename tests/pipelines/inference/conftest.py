"""Fixtures for the inference tests: a tiny model folder and three-row inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from polyglot_kedro.engines.tiny_model import build_tiny_llama

TINY_REGISTRY = {
    "tiny_test": {
        "source": "tiny",
        "tiny": {"hidden_size": 64, "num_attention_heads": 2, "num_key_value_heads": 2},
        "dtype": "float32",
        "max_model_len": 512,
    }
}


@pytest.fixture
def models() -> dict:
    return TINY_REGISTRY


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny_llama")))


@pytest.fixture
def chat_prompts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["c1", "c2", "c1"],
            "lang": ["en", "en", "de"],
            "instruction": ["Name a colour.", "Say hi.", "Nenne eine Farbe."],
            "prompt_source": ["native", "native", "mt"],
        }
    )


@pytest.fixture
def xquad_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["q1", "q1"],
            "lang": ["en", "de"],
            "context": [" The Panthers gave up 308 points. ", "Die Panthers gaben 308 Punkte ab."],
            "question": ["How many points? ", "Wie viele Punkte?"],
            "answers": [[{"text": "308", "answer_start": 22}], {"text": ["308"], "answer_start": [19]}],
        }
    )


@pytest.fixture
def xcsqa_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["x1", "x1"],
            "lang": ["en", "de"],
            "question": ["Where do eagles live?", "Wo leben Adler?"],
            "options": [["town", "nest", "sea", "car", "shop"], ["Stadt", "Nest", "Meer", "Auto", "Laden"]],
            "answer": ["B", "B"],
        }
    )


@pytest.fixture
def xnli_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["n1", "n2", "n1"],
            "lang": ["en", "en", "de"],
            "premise": ["He came home.", "It rains.", "Er kam nach Hause."],
            "hypothesis": ["He was away.", "It is dry.", "Er war weg."],
            "label": ["entailment", "contradiction", "neutral"],
        }
    )


def _sampling(max_new_tokens: int, temperature: float = 0.8) -> dict:
    return {"temperature": temperature, "top_p": 0.9, "top_k": 50, "frequency_penalty": 0.2, "max_new_tokens": max_new_tokens}


@pytest.fixture
def inference_params(tmp_path) -> dict:
    return {
        "engine": "transformers",
        "batch_size": 2,
        "seeds": [0, 42],
        "work_dir": str(tmp_path / "partitions"),
        "tasks": {
            "chat": {"languages": ["en", "de"], "prompt_settings": ["native"], "sampling": _sampling(6)},
            "xquad": {"languages": ["en", "de"], "prompt_settings": ["en:xx", "xx:xx"], "sampling": _sampling(4, 0.001)},
            "xcsqa": {"languages": ["en", "de"], "prompt_settings": ["xx:xx"], "sampling": _sampling(3, 0.001)},
        },
        "xnli": {"languages": ["en", "de"], "batch_size": 4},
    }
