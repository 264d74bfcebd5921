"""Fixtures for the data_mixing tests: params, a hand-made LID table, a tiny tokenizer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

GUANACO_EVAL = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "guanaco" / "openassistant_best_replies_eval.jsonl"
)


@pytest.fixture
def guanaco_eval_path() -> Path:
    """The real 518-row Guanaco eval split beside the repo (skip where absent)."""
    if not GUANACO_EVAL.is_file():
        pytest.skip(f"real Guanaco file not found at {GUANACO_EVAL}")
    return GUANACO_EVAL


def make_params(**mixing) -> dict:
    base = {
        "total_size": 20,
        "per_language": 3,
        "language_order": ["es", "ru", "de", "zh", "fr"],
        "base_language": "en",
        "seed": 42,
        "on_short_supply": "error",
    }
    base.update(mixing)
    return {"lid": {"model_path": None, "min_confidence": 0.8}, "mixing": base}


@pytest.fixture
def params() -> dict:
    return make_params()


MIXES = {
    "mono": {"kind": "mono"},
    "multi2": {"kind": "multi", "n_languages": 2},
    "multi3": {"kind": "multi", "n_languages": 3},
    "multi4": {"kind": "multi", "n_languages": 4},
    "multi5": {"kind": "multi", "n_languages": 5},
    "multi6": {"kind": "multi", "n_languages": 6},
    "guanaco": {"kind": "full"},
    "base": {"kind": "untuned"},
}


@pytest.fixture
def mixes() -> dict:
    return dict(MIXES)


def make_lid(counts: dict[str, int], dropped: int = 0) -> pd.DataFrame:
    """A hand-made ``guanaco_lid``: ``counts`` kept rows per language, plus
    ``dropped`` low-confidence English rows; ids interleave languages."""
    rows = []
    langs = [lang for lang, n in counts.items() for _ in range(n)] + ["en"] * dropped
    for row, lang in enumerate(langs):
        keep = row < len(langs) - dropped
        rows.append(
            {
                "id": f"g{row:05d}",
                "text": f"### Human: question {row} in {lang}### Assistant: answer {row}",
                "turns": "[]",
                "n_turns": 2,
                "lang": lang,
                "lid_label": f"__label__{lang}",
                "lid_confidence": 0.95 if keep else 0.5,
                "keep": keep,
            }
        )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=7).reset_index(drop=True)


@pytest.fixture
def lid_frame() -> pd.DataFrame:
    return make_lid({"en": 30, "es": 5, "ru": 5, "de": 5, "zh": 5, "fr": 5, "it": 2}, dropped=4)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> str:
    """A tiny byte-level BPE tokenizer folder loadable with AutoTokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    sentences = ["### Human: question in en### Assistant: answer", "Hola, ¿cómo estás?", "Привет, как дела?"] * 5
    tok.train_from_iterator(sentences, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    path = tmp_path_factory.mktemp("tiny_tokenizer")
    fast.save_pretrained(path)
    return str(path)
