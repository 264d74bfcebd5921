"""The data contracts between stages: one definition of each table's columns.

Every stage imports its column lists from here; a stage that needs only some
of a table's columns checks the ``*_REQUIRED`` list of that table. Adding a
column is a change here (and in docs/ARCHITECTURE.md), never a second list.
"""

from __future__ import annotations

#: One evaluated item under one seed: the key every per-item table shares.
ITEM_KEYS = ["model", "mix", "task", "lang", "prompt_setting", "seed", "item_id"]

#: ``eval_prompts`` (built once, shared by all mixes).
PROMPT_COLUMNS = ["task", "lang", "prompt_setting", "item_id", "prompt", "reference"]

#: ``{mix}.generations`` as the inference stage writes it.
GENERATION_COLUMNS = [
    *ITEM_KEYS, "prompt", "output",
    "finish_reason", "engine", "batch_size", "sampling", "n_output_tokens", "gen_seconds", "reference",
]  # fmt: skip
#: What judging and scoring read from ``{mix}.generations``.
GENERATION_REQUIRED = [*ITEM_KEYS, "prompt", "output", "reference"]

#: ``{mix}.xnli_loglik``: one row per XNLI item and seed (lm-eval log-likelihood choice).
XNLI_LOGLIK_COLUMNS = [*ITEM_KEYS, "pred", "gold", "correct", "engine"]
#: What scoring reads from ``{mix}.xnli_loglik``.
XNLI_LOGLIK_REQUIRED = ["lang", "item_id", "seed", "pred", "gold"]

#: ``{mix}.scores``: one row per (item, seed, metric), tidy.
SCORE_COLUMNS = [
    *ITEM_KEYS, "metric", "score", "valid", "invalid_reason",
    "raw_score", "prompt_lang", "response_lang", "lang_match", "judge", "judge_mode", "judge_raw",
    "em", "f1", "pred", "gold", "engine",
]  # fmt: skip
#: What reporting reads from ``{mix}.scores``.
SCORE_REQUIRED = [*ITEM_KEYS, "metric", "score", "valid", "invalid_reason"]

#: Cost ledgers (translation, judging): one row per client batch.
USAGE_NUMERIC = ["requests", "sent", "cached", "failed", "prompt_tokens", "completion_tokens", "cost_usd"]


def require_columns(df, columns: list[str], name: str) -> None:
    """Raise ``ValueError`` naming the dataset and its missing columns."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing} (docs/ARCHITECTURE.md); has {list(df.columns)}")
