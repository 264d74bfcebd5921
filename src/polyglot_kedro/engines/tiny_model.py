"""A tiny random-weight Llama folder for engine tests and the generation benchmark.

Byte-level BPE (any text encodes), explicit bos/eos/pad/unk tokens (batched
padding needs them) and head_dim 32 (vLLM's CPU attention rejects 16).
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "### Human: Answer the question from the given passage.### Assistant: Based on the passage, the answer is",
    "Die Verteidigung der Panthers gab nur 308 Punkte ab. Frage: Wie viele Punkte?",
    "La defensa de los Panthers concedió solo 308 puntos. ¿Cuántos puntos?",
    "Защита «Пантер» пропустила всего 308 очков. Сколько очков?",
    "黑豹队的防守只丢了308分。多少分？ Η άμυνα των Πάνθηρων. पैंथर्स की रक्षा ने केवल 308 अंक दिए।",
    "You will be presented with a question that has multiple possible answers. A: town B: hospital",
]


def build_tiny_llama(folder: str | Path, *, hidden_size: int = 64, vocab_size: int = 512, seed: int = 0) -> Path:
    """Write a tiny LlamaForCausalLM and its tokenizer to ``folder``.

    Args:
        folder: output folder (created).
        hidden_size: model width (heads of 32 dims: vLLM's CPU backend needs >= 32).
        vocab_size: BPE vocabulary size.
        seed: torch seed for the random weights.

    Returns:
        The folder.
    """
    from polyglot_kedro.config import TinyModelConfig
    from polyglot_kedro.modeling import build_tiny_model

    cfg = TinyModelConfig(
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=hidden_size // 32,
        num_key_value_heads=hidden_size // 32,
        max_position_embeddings=1024,
        vocab_size=vocab_size,
        tokenizer_min_frequency=0,
        seed=seed,
    )
    return build_tiny_model(cfg, _CORPUS * 4, folder)
