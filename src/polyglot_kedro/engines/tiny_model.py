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
        hidden_size: model width (2 heads of ``hidden_size // 2``; keep >= 64).
        vocab_size: BPE vocabulary size.
        seed: torch seed for the random weights.

    Returns:
        The folder.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
