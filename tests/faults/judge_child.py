"""Child process of the kill test: one judging run (the judging stage's nodes), no pytest.

    python judge_child.py CONFIG.json

CONFIG holds ``generations`` (parquet path), ``endpoints`` (params:llm_endpoints)
and ``out`` (parquet path for chat_judgments).
"""

from __future__ import annotations

import json
import sys

import pandas as pd


def run_judging(config: dict) -> pd.DataFrame:
    """detect_chat_languages + judge_chat, as the pipeline wires them; writes ``config['out']``."""
    from polyglot_kedro.pipelines.judging.nodes import detect_chat_languages, judge_chat

    generations = pd.read_parquet(config["generations"])
    judging = {"chat": {"mode": "direct", "n_items": None}}
    languages = detect_chat_languages(generations, judging)
    judgments, _ = judge_chat(generations, languages, None, judging, config["endpoints"], mix_name="mono")
    judgments.to_parquet(config["out"])
    return judgments


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        run_judging(json.load(fh))
