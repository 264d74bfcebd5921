"""Child process of the inference kill test: ``generate_outputs`` over a paper-sized partition grid.

    python infer_child.py CONFIG.json

The grid has the paper's partition count per seed (chat 13 languages, XQuAD
7 languages x 2 settings, X-CSQA 7 languages: 34) on a tiny model, so a run
is many small partitions; the parent SIGKILLs it while partitions are being
written.
"""

from __future__ import annotations

import json
import sys

import pandas as pd

from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts, generate_outputs

CHAT_LANGS = ["en", "de", "fr", "sv", "zh", "es", "ru", "ca", "no", "bg", "is", "hi", "el"]
XQUAD_LANGS = ["en", "de", "es", "ru", "zh", "el", "hi"]
XCSQA_LANGS = ["en", "de", "es", "fr", "ru", "zh", "hi"]
REGISTRY = {"tiny_kill": {"source": "tiny", "tiny": {"hidden_size": 64, "num_attention_heads": 2, "num_key_value_heads": 2},
                          "dtype": "float32", "max_model_len": 256}}  # fmt: skip


def grid_inputs(n_items: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Synthetic chat/XQuAD/X-CSQA rows: ``n_items`` per language."""
    chat = pd.DataFrame([{"id": f"c{i}", "lang": lang, "instruction": f"Say {i} in {lang}.", "prompt_source": "native"}
                         for lang in CHAT_LANGS for i in range(n_items)])  # fmt: skip
    xquad = pd.DataFrame([{"id": f"q{i}", "lang": lang, "context": f"The number is {i}.", "question": "Which number?",
                           "answers": {"text": [str(i)], "answer_start": [14]}}
                          for lang in XQUAD_LANGS for i in range(n_items)])  # fmt: skip
    xcsqa = pd.DataFrame([{"id": f"x{i}", "lang": lang, "question": f"Pick {i}?", "options": ["a", "b", "c", "d", "e"],
                           "answer": "A"} for lang in XCSQA_LANGS for i in range(n_items)])  # fmt: skip
    return chat, xquad, xcsqa


def inference_params(work_dir: str, engine: str = "transformers", seeds=(0, 42, 723)) -> dict:
    sampling = {"temperature": 0.8, "top_p": 0.9, "top_k": 50, "frequency_penalty": 0.2, "max_new_tokens": 2}
    return {
        "engine": engine, "batch_size": 2, "seeds": list(seeds), "work_dir": work_dir,
        "tasks": {
            "chat": {"languages": CHAT_LANGS, "prompt_settings": ["native"], "sampling": sampling},
            "xquad": {"languages": XQUAD_LANGS, "prompt_settings": ["en:xx", "xx:xx"], "sampling": sampling},
            "xcsqa": {"languages": XCSQA_LANGS, "prompt_settings": ["xx:xx"], "sampling": sampling},
        },
        "xnli": {"enabled": False, "languages": ["en"]},
    }  # fmt: skip


def main(config_path: str) -> None:
    config = json.loads(open(config_path).read())
    params = inference_params(config["work_dir"], config.get("engine", "transformers"), config.get("seeds", (0, 42, 723)))
    prompts = build_eval_prompts(*grid_inputs(), params)
    generate_outputs(config["model"], prompts, params, "tiny_kill", REGISTRY, mix_name="m")


if __name__ == "__main__":
    main(sys.argv[1])
