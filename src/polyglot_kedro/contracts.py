"""The data contracts between stages: one definition of each table's columns.

Every stage imports its column lists from here; a stage that needs only some
of a table's columns checks the ``*_REQUIRED`` list of that table. Adding a
column is a change here (and in docs/ARCHITECTURE.md), never a second list.
"""

from __future__ import annotations

#: One evaluated item under one seed: the key every per-item table shares.
ITEM_KEYS = ["model", "mix", "task", "lang", "prompt_setting", "seed", "item_id"]

#: What the prompt builder knows of each item, carried from
#: ``eval_prompts`` into ``{mix}.generations`` unchanged (never rebuilt
#: from the prompt text): ``question`` (chat: the user's instruction; XQuAD,
#: X-CSQA: the question as in the source data), ``options`` (X-CSQA: JSON list
#: of the option texts in letter order; other tasks: JSON ``null``) and
#: ``reference`` (the gold answer as JSON: XQuAD a list of answer texts,
#: X-CSQA the letter, chat ``null``).
ITEM_FIELDS = ["question", "options", "reference"]

#: ``eval_prompts`` (built once, shared by all mixes); ``template`` is ``<task>@v<version>``.
PROMPT_COLUMNS = ["task", "lang", "prompt_setting", "item_id", "prompt", *ITEM_FIELDS]
EVAL_PROMPT_COLUMNS = [*PROMPT_COLUMNS, "template"]

#: ``{mix}.generations`` as the inference stage writes it (``prompt_truncated``:
#: the prompt was cut from the left to leave ``max_new_tokens``; ``n_prompt_tokens``
#: counts what the model saw; ``prompt_format``: ``guanaco`` or ``chat_template``,
#: how ``prompt`` was rendered, from the model's registry entry).
GENERATION_COLUMNS = [
    *ITEM_KEYS, "prompt", "output",
    "finish_reason", "engine", "batch_size", "sampling", "n_output_tokens", "gen_seconds",
    "n_prompt_tokens", "prompt_truncated", "prompt_format", *ITEM_FIELDS,
]  # fmt: skip
#: What judging and task scoring read from ``{mix}.generations`` (``options``
#: is carried for readers of the table; no scorer needs it).
GENERATION_REQUIRED = [*ITEM_KEYS, "output", "question", "reference"]

#: What ``tasks.xnli.run_xnli_loglik`` returns: one row per XNLI item (labels as names).
XNLI_ITEM_COLUMNS = ["lang", "item_id", "pred", "gold", "correct"]
#: ``{mix}.xnli_loglik``: one row per XNLI item and seed (lm-eval log-likelihood choice).
XNLI_LOGLIK_COLUMNS = [*ITEM_KEYS, "pred", "gold", "correct", "engine"]
#: What scoring reads from ``{mix}.xnli_loglik``.
XNLI_LOGLIK_REQUIRED = ["lang", "item_id", "seed", "pred", "gold"]

#: ``{mix}.chat_languages``: fastText language of every chat prompt and response, and the
#: response's language confusion (``language_confusion``: ``tgt_lang_match`` against the
#: item's ``lang``; LID labels of the lines of 5+ tokens and English words found, space-joined).
CHAT_LANGUAGE_COLUMNS = [
    *ITEM_KEYS, "instruction", "prompt_lang", "response_lang", "lang_match",
    "tgt_lang_match", "lcb_line_langs", "lcb_english_words",
]  # fmt: skip

#: ``{mix}.chat_judgments``: one row per judged chat response (invalid ones included).
JUDGMENT_COLUMNS = [
    *ITEM_KEYS, "instruction", "response", "judge_mode", "judged_instruction", "judged_response",
    "prompt_lang", "response_lang", "lang_match", "judge", "judge_raw", "judge_parse", "reasoning",
    "raw_score", "score", "valid", "invalid_reason", "cached", "attempts",
]  # fmt: skip
#: ``{mix}.judge_noise``: the second verdict of each rejudged response (the judgment
#: columns, ``judge`` the second judge), beside the first verdict (``first_*``) and the
#: response's length in characters (``judging.chat.judge_noise``).
JUDGE_NOISE_COLUMNS = [
    *JUDGMENT_COLUMNS, "first_judge", "first_raw_score", "first_score", "first_valid", "response_chars",
]  # fmt: skip

#: ``{mix}.scores``: one row per (item, seed, metric), tidy (``prompt_format``: from the
#: row's generation; ``none`` for XNLI, scored by log-likelihood on lm-eval's own prompts).
SCORE_COLUMNS = [
    *ITEM_KEYS, "metric", "score", "valid", "invalid_reason",
    "raw_score", "prompt_lang", "response_lang", "lang_match", "judge", "judge_mode", "judge_raw",
    "em", "f1", "pred", "gold", "engine", "prompt_truncated", "prompt_format",
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


#: Raw JSON-lines sources read with ``on_bad_line: reject`` (HubOrLocalDataset):
#: the 1-based line of every row, and what is wrong with a line that is not a JSON object.
SOURCE_LINE = "source_line"
SOURCE_ERROR = "source_error"
