"""Judging: chat helpfulness by an LLM judge, IO language agreement, task scores.

Everything ends in one tidy table per mix, ``{mix}.scores`` (docs/ARCHITECTURE.md):
one row per (task, lang, prompt_setting, seed, item, metric). An item that
could not be scored stays as a row with ``valid = False``, ``score = NaN``
and the reason; nothing is dropped.

Chat rules (the paper):

* the judge sees the user's instruction and the response, the paper's
  Figure 16 prompt (``polyglot_kedro.judge``), temperature 0, seed 42, JSON
  mode; a fixed random sample of ``n_items`` prompts per language (pandas
  ``sample(random_state=sample_seed)`` over the sorted item ids, as the
  paper's ``data.sample(300, random_state=42)``), the same items for every mix
  and seed;
* the language of prompt and response is identified with fastText
  (``polyglot_kedro.lid``); a response in another language than its prompt
  gets the final score 1, whatever the judge said (``raw_score`` keeps the
  judge's score, ``lang_match`` the check). An invalid judgment stays
  invalid (score NaN), mismatch or not: the judge failure is what is counted.
  With ``judge_mismatched: false`` a mismatched response is not sent to the
  judge at all (the rule decides its score, so the request would buy nothing):
  score 1, ``raw_score`` NaN, ``judge_parse = "not judged: language mismatch"``;
* ``seeds`` limits judging to some generation seeds (default: all);
* ``request.json_schema`` makes the judge's endpoint enforce the verdict's
  JSON schema (structured outputs); the paper used JSON mode only;
* an empty response has no language (``response_lang = ""``) and never
  matches;
* ``io_lang_agreement`` (paper Figure 1) is 1/0 per chat generation, for
  every generation, judged or not;
* ``mode: translated`` (paper Appendix C): the instruction and the response
  of every non-English item are translated into English by the translator
  endpoint, and the judge sees the English texts. A failed translation makes
  the judgment invalid (``translation failed: ...``). Language checks always
  use the original texts.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from polyglot_kedro.config import StrictModel
from polyglot_kedro.judge import parse_verdict, render_judge_messages, render_translation_messages
from polyglot_kedro.lid import LanguageIdentifier
from polyglot_kedro.prompting import ASSISTANT, HUMAN
from polyglot_kedro.scoring import extract_xcsqa_letter, score_xquad, xnli_correct

logger = logging.getLogger(__name__)

KEYS = ["model", "mix", "task", "lang", "prompt_setting", "seed", "item_id"]
GENERATION_COLUMNS = [*KEYS, "prompt", "output", "reference"]
XNLI_COLUMNS = ["lang", "item_id", "seed", "pred", "gold"]

LANGUAGE_COLUMNS = [*KEYS, "instruction", "prompt_lang", "response_lang", "lang_match"]
JUDGMENT_COLUMNS = [
    *KEYS, "instruction", "response", "judge_mode", "judged_instruction", "judged_response",
    "prompt_lang", "response_lang", "lang_match", "judge", "judge_raw", "judge_parse", "reasoning",
    "raw_score", "score", "valid", "invalid_reason", "cached", "attempts",
]
SCORE_COLUMNS = [
    *KEYS, "metric", "score", "valid", "invalid_reason",
    "raw_score", "prompt_lang", "response_lang", "lang_match", "judge", "judge_mode", "judge_raw",
    "em", "f1", "pred", "gold", "engine",
]
_FLOAT = ["score", "raw_score", "em", "f1"]
_TEXT = ["model", "mix", "task", "lang", "prompt_setting", "item_id", "metric", "invalid_reason", "prompt_lang",
         "response_lang", "judge", "judge_mode", "judge_raw", "pred", "gold", "instruction", "response",
         "judged_instruction", "judged_response", "judge_parse", "reasoning", "engine"]


class JudgeRequestParams(StrictModel):
    """Sampling settings forced on the judge endpoint (the paper's)."""

    temperature: float = 0.0
    seed: int | None = 42
    json_mode: bool = True
    max_tokens: int | None = None
    # Structured outputs: the verdict must follow this JSON schema (an
    # endpoint that cannot enforce one is refused). null: JSON mode only, as
    # the paper (GPT-3.5 JSON mode).
    json_schema: dict[str, Any] | None = None


class ChatJudgingParams(StrictModel):
    """``judging.chat``."""

    enabled: bool = True
    mode: Literal["direct", "translated"] = "direct"
    n_items: int | None = Field(None, ge=1, description="prompts judged per language; null = all")
    sample_seed: int = 42
    endpoint: str = "judge"
    translator_endpoint: str = "translator"
    request: JudgeRequestParams = JudgeRequestParams()
    prompt_lang_source: Literal["lid", "label"] = "lid"
    seeds: list[int] | None = Field(None, min_length=1, description="generation seeds judged; null = all")
    # false: a response not in its prompt's language gets its final score 1
    # without a judge request (the rule overrides any verdict, so the request
    # would be paid for nothing). true: judge it anyway, as the paper did.
    judge_mismatched: bool = True


class JudgingParams(StrictModel):
    """``params:judging``."""

    chat: ChatJudgingParams = ChatJudgingParams()
    lid_model_path: str | None = None


# --------------------------------------------------------------------------- helpers


def _require(df: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing} (docs/ARCHITECTURE.md); has {list(df.columns)}")


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
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
    if "lang_match" in df.columns:
        df["lang_match"] = df["lang_match"].astype("boolean")
    if "seed" in df.columns:
        df["seed"] = df["seed"].astype("int64")
    return df


def instruction_from_prompt(prompt: str) -> str:
    """The last user turn of a Guanaco prompt (``### Human: ...### Assistant:``).

    A text without the Human marker is returned stripped, as is.
    """
    text = str(prompt)
    start = text.rfind(HUMAN)
    if start == -1:
        return text.strip()
    body = text[start + len(HUMAN) :]
    end = body.find(ASSISTANT)
    return (body if end == -1 else body[:end]).strip()


def _question_from_prompt(prompt: str) -> str | None:
    """The XQuAD question inside the paper's prompt: the paragraph after the
    last short label paragraph (``Question:``, ``Frage:`` ...)."""
    paras = [p.strip() for p in instruction_from_prompt(prompt).split("\n\n") if p.strip()]
    for i in range(len(paras) - 2, -1, -1):
        if paras[i].endswith(":") and len(paras[i]) <= 30:
            return paras[i + 1]
    return None


def _reference(value: Any, where: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{where}: field 'reference' is empty")
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: field 'reference' is not JSON ({exc}): {value!r}") from exc


def _where(row: dict, name: str = "generations") -> str:
    return f"{name} row (task={row.get('task')}, lang={row.get('lang')}, seed={row.get('seed')}, item_id={row.get('item_id')})"


def _endpoint(llm_endpoints: dict, name: str, overrides: dict | None = None) -> dict:
    if name not in (llm_endpoints or {}):
        raise KeyError(f"params:llm_endpoints has no endpoint {name!r} (conf/base/parameters_llm.yml); has {sorted(llm_endpoints or {})}")
    cfg = dict(llm_endpoints[name])
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return cfg


def _judge_name(cfg: dict) -> str:
    return f"{cfg.get('backend', 'openai')}:{cfg.get('model', '')}"


def sample_items(item_ids: pd.Series, n_items: int | None, seed: int) -> list[str]:
    """The judged items of one language: ``n_items`` of the sorted unique ids.

    Args:
        item_ids: the language's item ids (any order, repeats across seeds).
        n_items: how many; ``None`` or more than there are: all.
        seed: pandas ``random_state`` (the paper: 42).

    Returns:
        The chosen ids, sorted.
    """
    ids = pd.Series(sorted(set(map(str, item_ids))), dtype=object)
    if n_items is None or n_items >= len(ids):
        return list(ids)
    return sorted(ids.sample(n_items, random_state=seed))


# --------------------------------------------------------------------------- nodes


def detect_chat_languages(generations: pd.DataFrame, judging: dict) -> pd.DataFrame:
    """Language of every chat prompt and response (fastText LID).

    Args:
        generations: ``{mix}.generations`` rows.
        judging: ``params:judging`` (``lid_model_path``, ``chat.prompt_lang_source``).

    Returns:
        One row per chat generation: ``model, mix, task, lang, prompt_setting,
        seed, item_id, instruction, prompt_lang, response_lang, lang_match``.
    """
    params = JudgingParams.model_validate(judging or {})
    _require(generations, GENERATION_COLUMNS, "generations")
    chat = generations[generations["task"] == "chat"]
    if chat.empty:
        return _frame([], LANGUAGE_COLUMNS)
    lid = LanguageIdentifier(params.lid_model_path)
    cache: dict[str, str] = {}

    def lang_of(text: str) -> str:
        if not text.strip():
            return ""
        if text not in cache:
            cache[text] = lid.predict(text).lang
        return cache[text]

    rows = []
    for row in chat.to_dict("records"):
        instruction = instruction_from_prompt(row["prompt"])
        response = "" if row["output"] is None else str(row["output"])
        prompt_lang = row["lang"] if params.chat.prompt_lang_source == "label" else lang_of(instruction)
        response_lang = lang_of(response)
        rows.append(
            {**{k: row[k] for k in KEYS}, "instruction": instruction, "prompt_lang": prompt_lang,
             "response_lang": response_lang, "lang_match": bool(response_lang) and response_lang == prompt_lang}
        )
    return _frame(rows, LANGUAGE_COLUMNS)


def judge_chat(
    generations: pd.DataFrame,
    chat_languages: pd.DataFrame,
    base_model: str | None,
    judging: dict,
    llm_endpoints: dict,
    *,
    mix_name: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judge the helpfulness of the sampled chat responses.

    Args:
        generations: ``{mix}.generations``.
        chat_languages: output of ``detect_chat_languages``.
        base_model: model folder for the in-process backend (``base_model``).
        judging: ``params:judging``.
        llm_endpoints: ``params:llm_endpoints`` (``judge``, ``translator``).
        mix_name: bound by ``per_mix``.

    Returns:
        ``chat_judgments`` (``JUDGMENT_COLUMNS``; one row per judged
        generation, invalid ones included) and the usage ledger rows of the
        judge (and translator) with a ``mix`` column.
    """
    from polyglot_kedro.llm import ChatRequest, build_client  # heavy import, only when judging

    params = JudgingParams.model_validate(judging or {})
    cp = params.chat
    _require(generations, GENERATION_COLUMNS, "generations")
    _require(chat_languages, LANGUAGE_COLUMNS, "chat_languages")
    chat = generations[generations["task"] == "chat"]
    if not cp.enabled or chat.empty:
        return _frame([], JUDGMENT_COLUMNS), pd.DataFrame({"mix": pd.Series(dtype=object)})

    chosen = {lang: set(sample_items(g["item_id"], cp.n_items, cp.sample_seed)) for lang, g in chat.groupby("lang")}
    chat = chat[[str(i) in chosen[lang] for lang, i in zip(chat["lang"], chat["item_id"])]]
    if cp.seeds is not None:
        seeds = chat["seed"].astype(int)
        missing = sorted(set(cp.seeds) - set(seeds))
        if missing:
            raise ValueError(
                f"judging.chat.seeds: no chat generations with seed(s) {missing} in "
                f"{mix_name or ''}.generations (seeds there: {sorted(set(seeds))})"
            )
        chat = chat[seeds.isin(cp.seeds)]
    langs = chat_languages.set_index(["lang", "seed", "item_id"])
    items = []
    for row in chat.to_dict("records"):
        key = (row["lang"], row["seed"], row["item_id"])
        if key not in langs.index:
            raise ValueError(f"{_where(row)}: no language row in chat_languages")
        lrow = langs.loc[key]
        response = "" if row["output"] is None else str(row["output"])
        items.append({**{k: row[k] for k in KEYS}, "instruction": lrow["instruction"], "response": response,
                      "prompt_lang": lrow["prompt_lang"], "response_lang": lrow["response_lang"],
                      "lang_match": bool(lrow["lang_match"])})

    judge_cfg = _endpoint(llm_endpoints, cp.endpoint, cp.request.model_dump())
    judge_client = build_client(judge_cfg, stage="judging", inprocess_model_path=base_model)
    usage = []
    judge_name = _judge_name(judge_cfg)
    translation_error: dict[int, str] = {}
    skipped = set() if cp.judge_mismatched else {n for n, it in enumerate(items) if not it["lang_match"]}
    for item in items:
        item["judged_instruction"], item["judged_response"] = item["instruction"], item["response"]
    if cp.mode == "translated":
        tr_cfg = _endpoint(llm_endpoints, cp.translator_endpoint)
        tr_client = build_client(tr_cfg, stage="judging_translation", inprocess_model_path=base_model)
        judge_name = f"{judge_name} (translated by {_judge_name(tr_cfg)})"
        texts = sorted({t for n, it in enumerate(items) if it["lang"] != "en" and n not in skipped
                        for t in (it["instruction"], it["response"]) if t.strip()})  # fmt: skip
        results = tr_client.run(
            [ChatRequest(key=f"translate/{i}", messages=render_translation_messages(t)) for i, t in enumerate(texts)],
            desc=f"{mix_name or ''} translate for judging",
        )
        english = {t: r for t, r in zip(texts, results)}
        for n, item in enumerate(items):
            if item["lang"] == "en" or n in skipped:
                continue
            for field in ("instruction", "response"):
                text = item[field]
                if not text.strip():
                    continue
                res = english[text]
                if res.ok and res.text is not None:
                    item[f"judged_{field}"] = res.text
                else:
                    translation_error.setdefault(n, f"translation failed ({field}): {res.error}")
        usage.append(tr_client.usage())

    to_judge = [n for n in range(len(items)) if n not in translation_error and n not in skipped]
    requests = [
        ChatRequest(
            key=f"{mix_name or items[n]['mix']}/{items[n]['lang']}/{items[n]['seed']}/{items[n]['item_id']}",
            messages=render_judge_messages(items[n]["judged_instruction"], items[n]["judged_response"]),
        )
        for n in to_judge
    ]
    results = dict(zip(to_judge, judge_client.run(requests, desc=f"{mix_name or ''} judge")))
    usage.append(judge_client.usage())

    rows = []
    for n, item in enumerate(items):
        res = results.get(n)
        out = {**item, "judge_mode": cp.mode, "judge": judge_name, "judge_raw": None, "judge_parse": None,
               "reasoning": None, "raw_score": math.nan, "score": math.nan, "valid": False,
               "cached": bool(res.cached) if res else False, "attempts": int(res.attempts) if res else 0}
        if n in skipped:  # the language rule decides: 1, no request
            out.update(judge_parse="not judged: language mismatch", score=1.0, valid=True, invalid_reason=None)
        elif n in translation_error:
            out["invalid_reason"] = translation_error[n]
        elif not res.ok:
            out["invalid_reason"] = f"request failed: {res.error}"
        else:
            verdict = parse_verdict(res.text)
            out.update(judge_raw=res.text, judge_parse=verdict.parse_method, reasoning=verdict.reasoning,
                       valid=verdict.valid, invalid_reason=verdict.invalid_reason)
            if verdict.valid:
                out["raw_score"] = float(verdict.raw_score)
                out["score"] = float(verdict.raw_score) if item["lang_match"] else 1.0
        rows.append(out)
    judgments = _frame(rows, JUDGMENT_COLUMNS)
    n_invalid = int((~judgments["valid"]).sum())
    logger.info(
        "%s: %d chat responses, %d judged by %s, %d scored 1 unjudged (language mismatch), %d invalid",
        mix_name, len(judgments), len(to_judge), judge_name, len(skipped), n_invalid,
    )  # fmt: skip
    ledger = pd.concat([u for u in usage if u is not None and not u.empty], ignore_index=True) if any(
        u is not None and not u.empty for u in usage) else pd.DataFrame()
    ledger["mix"] = mix_name or (items[0]["mix"] if items else None)
    return judgments, ledger


def score_tasks(
    generations: pd.DataFrame,
    xnli_loglik: pd.DataFrame,
    chat_languages: pd.DataFrame,
    chat_judgments: pd.DataFrame,
    *,
    mix_name: str | None = None,
) -> pd.DataFrame:
    """The tidy score table of one mix (docs/ARCHITECTURE.md, ``scores``).

    Args:
        generations: ``{mix}.generations`` (XQuAD and X-CSQA rows scored here).
        xnli_loglik: ``{mix}.xnli_loglik`` (``lang, item_id, seed, pred, gold``).
        chat_languages: ``detect_chat_languages`` output (io_lang_agreement).
        chat_judgments: ``judge_chat`` output (helpfulness).
        mix_name: bound by ``per_mix``; fills ``mix`` where an input lacks it.

    Returns:
        ``SCORE_COLUMNS`` rows, metrics ``helpfulness``, ``io_lang_agreement``,
        ``xquad_em``, ``xquad_f1``, ``xcsqa_acc``, ``xnli_acc``.

    Raises:
        ValueError: a missing column, an unknown task, or an unreadable
            ``reference`` (the message names the row).
    """
    _require(generations, GENERATION_COLUMNS, "generations")
    unknown = sorted(set(generations["task"]) - {"chat", "xquad", "xcsqa"})
    if unknown:
        raise ValueError(f"generations: unknown task(s) {unknown}; expected chat, xquad, xcsqa")
    rows: list[dict] = []

    for r in chat_languages.to_dict("records"):
        rows.append({**{k: r[k] for k in KEYS}, "metric": "io_lang_agreement", "score": float(bool(r["lang_match"])),
                     "valid": True, "invalid_reason": None, "prompt_lang": r["prompt_lang"],
                     "response_lang": r["response_lang"], "lang_match": bool(r["lang_match"])})

    for r in chat_judgments.to_dict("records"):
        rows.append({**{k: r[k] for k in KEYS}, "metric": "helpfulness",
                     **{k: r[k] for k in ("score", "valid", "invalid_reason", "raw_score", "prompt_lang",
                                          "response_lang", "lang_match", "judge", "judge_mode", "judge_raw")}})

    for r in generations[generations["task"] == "xquad"].to_dict("records"):
        golds = _reference(r["reference"], _where(r))
        golds = [golds] if isinstance(golds, str) else [str(g) for g in golds]
        if not golds:
            raise ValueError(f"{_where(r)}: field 'reference' has no gold answer")
        question = r.get("question") if isinstance(r.get("question"), str) else _question_from_prompt(r["prompt"])
        s = score_xquad("" if r["output"] is None else r["output"], golds, question)
        base = {**{k: r[k] for k in KEYS}, "valid": True, "invalid_reason": None, "em": s["em"], "f1": s["f1"],
                "pred": s["pred"], "gold": json.dumps(golds, ensure_ascii=False)}
        rows.append({**base, "metric": "xquad_em", "score": s["em"]})
        rows.append({**base, "metric": "xquad_f1", "score": s["f1"]})

    for r in generations[generations["task"] == "xcsqa"].to_dict("records"):
        gold = _reference(r["reference"], _where(r))
        gold = gold[0] if isinstance(gold, list) and gold else gold
        if not isinstance(gold, str) or not re.fullmatch(r"[A-E]", gold.strip().upper()):
            raise ValueError(f"{_where(r)}: field 'reference' is not a letter A-E: {r['reference']!r}")
        letter = extract_xcsqa_letter(r["output"])
        rows.append({**{k: r[k] for k in KEYS}, "metric": "xcsqa_acc",
                     "score": float(letter == gold.strip().upper()), "valid": True,
                     "invalid_reason": None if letter else "no answer letter A-E (counted as wrong)",
                     "pred": letter, "gold": gold.strip().upper()})

    if xnli_loglik is not None and len(xnli_loglik.columns):
        _require(xnli_loglik, XNLI_COLUMNS, "xnli_loglik")
        model = generations["model"].iloc[0] if len(generations) else None
        for r in xnli_loglik.to_dict("records"):
            pred_missing = r["pred"] is None or (isinstance(r["pred"], float) and math.isnan(r["pred"]))
            try:
                score = math.nan if pred_missing else xnli_correct(r["pred"], r["gold"])
            except ValueError as exc:
                raise ValueError(f"{_where({**r, 'task': 'xnli'}, 'xnli_loglik')}: {exc}") from exc
            rows.append({"model": r.get("model", model), "mix": r.get("mix", mix_name), "task": "xnli",
                         "lang": r["lang"], "prompt_setting": r.get("prompt_setting", f"{r['lang']}:{r['lang']}"),
                         "seed": r["seed"], "item_id": str(r["item_id"]), "metric": "xnli_acc", "score": score,
                         "valid": not pred_missing, "invalid_reason": "no prediction" if pred_missing else None,
                         "pred": None if pred_missing else str(r["pred"]), "gold": str(r["gold"]),
                         "engine": r.get("engine", "lm-eval")})

    # Which engine produced each scored output (generation rows carry it;
    # XNLI rows are lm-eval log-likelihoods), so the report can state it.
    engines = (
        {tuple(str(v) for v in k[:-1]): k[-1] for k in generations[[*KEYS, "engine"]].itertuples(index=False)}
        if "engine" in generations.columns
        else {}
    )
    for row in rows:
        if row.get("engine") is None:
            row["engine"] = engines.get(tuple(str(row[k]) for k in KEYS))
    scores = _frame(rows, SCORE_COLUMNS)
    if mix_name is not None:
        scores["mix"] = scores["mix"].fillna(mix_name)
    return scores
