"""Task scoring: XQuAD, X-CSQA and XNLI items, deterministic (no LLM judge).

The scorers are ``polyglot_kedro.scoring``'s; this node applies them to one
mix's rows and writes tidy ``contracts.SCORE_COLUMNS`` rows:

* XQuAD: the paper's post-processing, then the metrics that
  ``params:task_scoring`` (``xquad.metrics``) selects: ``xquad_match``, the
  paper's 0/1 "matches the ground truth after minimal postprocessing" under
  ``xquad.match`` (``exact_match`` or ``gold_contained``; the rule is written
  into ``judge_mode``), and SQuAD v1.1 ``xquad_em`` / ``xquad_f1`` (the
  official normalisation for English, its multilingual extension for the
  others: ``polyglot_kedro.scoring``), the maximum over the gold answers.
  Every XQuAD row carries ``em`` and ``f1`` whichever metrics are emitted.
  The question (stripped when the model repeats it) and the gold answers
  come from the prompt builder through the ``question`` and ``reference``
  columns of ``{mix}.generations``, never from the prompt text.
* X-CSQA (``xcsqa_acc``): the first option letter of the answer against the
  gold letter (``reference``); an answer without a letter counts as wrong and
  says so in ``invalid_reason``, but stays valid.
* XNLI (``xnli_acc``): lm-eval's log-likelihood choice against the gold label
  (``{mix}.xnli_loglik``); an item without a prediction is invalid.

A row that cannot be scored (missing column, unknown task, unreadable gold)
is an error naming the row: a gold answer is data, not a judgment.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from polyglot_kedro.config import StrictModel
from polyglot_kedro.contracts import (
    GENERATION_REQUIRED,
    ITEM_KEYS,
    SCORE_COLUMNS,
    XNLI_LOGLIK_REQUIRED,
    require_columns,
)
from polyglot_kedro.scoring import (
    MatchRule,
    extract_xcsqa_letter,
    score_xquad,
    xnli_correct,
)

from .scores import fill_engines, row_label, tidy_frame

SCORED_TASKS = ("xquad", "xcsqa")
XquadMetric = Literal["xquad_match", "xquad_em", "xquad_f1"]


class XquadScoringParams(StrictModel):
    """``task_scoring.xquad``."""

    # Emitted metrics, in this order; at least one.
    metrics: list[XquadMetric] = Field(default_factory=lambda: ["xquad_em", "xquad_f1"], min_length=1)
    # The paper's 0/1 rule (xquad_match): the released files do not settle it.
    match: MatchRule = "exact_match"


class TaskScoringParams(StrictModel):
    """``params:task_scoring`` (conf/base/parameters_judging.yml)."""

    xquad: XquadScoringParams = XquadScoringParams()


def _reference(value: Any, where: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{where}: field 'reference' is empty")
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: field 'reference' is not JSON ({exc}): {value!r}") from exc


def _xquad_rows(r: dict, p: XquadScoringParams) -> list[dict]:
    where = row_label(r)
    golds = _reference(r["reference"], where)
    golds = [golds] if isinstance(golds, str) else [str(g) for g in golds]
    if not golds:
        raise ValueError(f"{where}: field 'reference' has no gold answer")
    if not isinstance(r["question"], str):
        raise ValueError(f"{where}: field 'question' is not a text: {r['question']!r}")
    s = score_xquad("" if r["output"] is None else r["output"], golds, r["question"], r["lang"], p.match)
    base = {**{k: r[k] for k in ITEM_KEYS}, "valid": True, "invalid_reason": None, "em": s["em"], "f1": s["f1"],
            "pred": s["pred"], "gold": json.dumps(golds, ensure_ascii=False)}  # fmt: skip
    value = {"xquad_match": s["match"], "xquad_em": s["em"], "xquad_f1": s["f1"]}
    mode = {"xquad_match": p.match}
    return [{**base, "metric": m, "score": value[m], "judge_mode": mode.get(m)} for m in p.metrics]


def _xcsqa_row(r: dict) -> dict:
    gold = _reference(r["reference"], row_label(r))
    gold = gold[0] if isinstance(gold, list) and gold else gold
    if not isinstance(gold, str) or not re.fullmatch(r"[A-E]", gold.strip().upper()):
        raise ValueError(f"{row_label(r)}: field 'reference' is not a letter A-E: {r['reference']!r}")
    letter = extract_xcsqa_letter(r["output"])
    return {**{k: r[k] for k in ITEM_KEYS}, "metric": "xcsqa_acc", "score": float(letter == gold.strip().upper()),
            "valid": True, "invalid_reason": None if letter else "no answer letter A-E (counted as wrong)",
            "pred": letter, "gold": gold.strip().upper()}  # fmt: skip


def _xnli_row(r: dict, model: str | None, mix_name: str) -> dict:
    pred_missing = r["pred"] is None or (isinstance(r["pred"], float) and math.isnan(r["pred"]))
    try:
        score = math.nan if pred_missing else xnli_correct(r["pred"], r["gold"])
    except ValueError as exc:
        raise ValueError(f"{row_label({**r, 'task': 'xnli'}, 'xnli_loglik')}: {exc}") from exc
    return {"model": r.get("model", model), "mix": r.get("mix", mix_name), "task": "xnli", "lang": r["lang"],
            "prompt_setting": r.get("prompt_setting", f"{r['lang']}:{r['lang']}"), "seed": r["seed"],
            "item_id": str(r["item_id"]), "metric": "xnli_acc", "score": score, "valid": not pred_missing,
            "invalid_reason": "no prediction" if pred_missing else None,
            "pred": None if pred_missing else str(r["pred"]), "gold": str(r["gold"]),
            "engine": r.get("engine", "lm-eval")}  # fmt: skip


def score_tasks(
    generations: pd.DataFrame, xnli_loglik: pd.DataFrame | None, mix_name: str, task_scoring: dict | None = None
) -> pd.DataFrame:
    """Score one mix's XQuAD, X-CSQA and XNLI items.

    Args:
        generations: ``{mix}.generations`` (its XQuAD and X-CSQA rows are
            scored; chat rows belong to the chat judge).
        xnli_loglik: ``{mix}.xnli_loglik`` (``contracts.XNLI_LOGLIK_REQUIRED``);
            ``None`` or a frame without columns: no XNLI rows.
        mix_name: ``params:mix_name``; the ``mix`` of XNLI rows that lack one.
        task_scoring: ``params:task_scoring`` (``TaskScoringParams``; None:
            its defaults, SQuAD ``xquad_em`` and ``xquad_f1``).

    Returns:
        ``contracts.SCORE_COLUMNS`` rows, metrics ``task_scoring.xquad.metrics``,
        ``xcsqa_acc``, ``xnli_acc``.

    Raises:
        ValueError: a missing column, an unknown task, or an unreadable
            ``reference`` / ``question`` (the message names the row).
    """
    p = TaskScoringParams.model_validate(task_scoring or {})
    require_columns(generations, GENERATION_REQUIRED, "generations")
    unknown = sorted(set(generations["task"]) - {"chat", *SCORED_TASKS})
    if unknown:
        raise ValueError(f"generations: unknown task(s) {unknown}; expected chat, xquad, xcsqa")
    rows: list[dict] = []
    for r in generations[generations["task"] == "xquad"].to_dict("records"):
        rows += _xquad_rows(r, p.xquad)
    for r in generations[generations["task"] == "xcsqa"].to_dict("records"):
        rows.append(_xcsqa_row(r))
    if xnli_loglik is not None and len(xnli_loglik.columns):
        require_columns(xnli_loglik, XNLI_LOGLIK_REQUIRED, "xnli_loglik")
        model = generations["model"].iloc[0] if len(generations) else None
        rows += [_xnli_row(r, model, mix_name) for r in xnli_loglik.to_dict("records")]
    return tidy_frame(fill_engines(rows, generations), SCORE_COLUMNS)
