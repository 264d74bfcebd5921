"""The judging stage's tables: one dtype per column, and the tidy ``scores`` table.

``{mix}.scores`` (``contracts.SCORE_COLUMNS``) is the union of the chat rows
(``nodes.score_chat``: helpfulness, IO language agreement) and the task rows
(``task_scoring.score_tasks``: XQuAD, X-CSQA, XNLI); ``collect_scores`` joins
them. Every judging table goes through ``tidy_frame``, so a column has one
dtype whether or not a mix has rows of that task.
"""

from __future__ import annotations

import pandas as pd

from polyglot_kedro.contracts import ITEM_KEYS, SCORE_COLUMNS

_FLOAT = ["score", "raw_score", "em", "f1"]
_TEXT = ["model", "mix", "task", "lang", "prompt_setting", "item_id", "metric", "invalid_reason", "prompt_lang",
         "response_lang", "judge", "judge_mode", "judge_raw", "pred", "gold", "instruction", "response",
         "judged_instruction", "judged_response", "judge_parse", "reasoning", "engine"]  # fmt: skip


def tidy_frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """``rows`` as a frame of ``columns`` with the judging tables' dtypes.

    Floats are float64, text columns ``str`` (missing stays missing), ``valid``
    bool, ``lang_match`` nullable boolean, ``seed`` int64.
    """
    df = pd.DataFrame(rows, columns=columns)
    for col in _FLOAT:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
    for col in _TEXT:
        if col in df.columns:
            # one dtype whether or not a mix has rows of that task (missing stays NaN)
            df[col] = df[col].astype("str")
    if "valid" in df.columns:
        df["valid"] = df["valid"].astype(bool)
    if "prompt_truncated" in df.columns:
        df["prompt_truncated"] = df["prompt_truncated"].fillna(False).astype(bool)
    if "lang_match" in df.columns:
        df["lang_match"] = df["lang_match"].astype("boolean")
    if "seed" in df.columns:
        df["seed"] = df["seed"].astype("int64")
    return df


def row_label(row: dict, name: str = "generations") -> str:
    """``<name> row (task=..., lang=..., seed=..., item_id=...)`` for error messages."""
    return f"{name} row (task={row.get('task')}, lang={row.get('lang')}, seed={row.get('seed')}, item_id={row.get('item_id')})"


def fill_engines(rows: list[dict], generations: pd.DataFrame) -> list[dict]:
    """Carry each score row's generation facts over from its generation row.

    ``engine`` (where the row has none): the report states which engine
    produced each scored output; XNLI rows carry their own (``lm-eval``).
    ``prompt_truncated``: the prompt was cut to fit the context (inference's
    ``fit_prompt``), so the report can count scores of truncated prompts;
    False for rows without a generation (XNLI) or from generations written
    before the column existed.
    ``prompt_format``: how the generation's prompt was rendered (``guanaco``,
    ``chat_template``); ``guanaco`` for generations written before the column
    existed, ``none`` for rows without a generation (XNLI: lm-eval's prompts).
    """
    cols = [c for c in ("engine", "prompt_truncated", "prompt_format") if c in generations.columns]
    facts = {tuple(str(v) for v in rec[:len(ITEM_KEYS)]): dict(zip(cols, rec[len(ITEM_KEYS):]))
             for rec in generations[[*ITEM_KEYS, *cols]].itertuples(index=False)} if cols else {}
    for row in rows:
        fact = facts.get(tuple(str(row[k]) for k in ITEM_KEYS), {})
        if row.get("engine") is None:
            row["engine"] = fact.get("engine")
        truncated = fact.get("prompt_truncated", row.get("prompt_truncated"))
        row["prompt_truncated"] = bool(truncated) if truncated is not None and not pd.isna(truncated) else False
        row["prompt_format"] = fact.get("prompt_format", "guanaco") if fact else row.get("prompt_format", "none")
    return rows


def collect_scores(chat_scores: pd.DataFrame, task_scores: pd.DataFrame, mix_name: str) -> pd.DataFrame:
    """The tidy score table of one mix (docs/ARCHITECTURE.md, ``scores``).

    Args:
        chat_scores: ``nodes.score_chat`` output (``helpfulness``, ``io_lang_agreement``).
        task_scores: ``task_scoring.score_tasks`` output (``xquad_em``,
            ``xquad_f1``, ``xcsqa_acc``, ``xnli_acc``).
        mix_name: ``params:mix_name``; fills ``mix`` where an input lacks it.

    Returns:
        ``contracts.SCORE_COLUMNS`` rows: the chat rows, then the task rows.
    """
    frames = [df[SCORE_COLUMNS] for df in (chat_scores, task_scores) if len(df)]
    rows = pd.concat(frames, ignore_index=True).to_dict("records") if frames else []
    scores = tidy_frame(rows, SCORE_COLUMNS)
    scores["mix"] = scores["mix"].fillna(mix_name)
    return scores
