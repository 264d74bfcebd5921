"""Chat judging: helpfulness by an LLM judge and IO language agreement.

The chat rows of ``{mix}.scores`` (docs/ARCHITECTURE.md) come from here; the
deterministic task scores (XQuAD, X-CSQA, XNLI) from ``task_scoring``, and
``scores.collect_scores`` joins both. One row per (task, lang,
prompt_setting, seed, item, metric). An item that could not be scored stays
as a row with ``valid = False``, ``score = NaN`` and the reason; nothing is
dropped.

Chat rules (the paper):

* the judge sees the user's instruction (the ``question`` column the prompt
  builder carried, stripped) and the response, the paper's
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
* ``language_confusion`` (``polyglot_kedro.language_confusion``, Marchisio
  et al. 2024): ``lcb_line_pass`` (every line of 5+ tokens in the item's
  language, fastText lid.176 above 0.3) and ``lcb_word_pass`` (no English
  word in a line-clean response; ar hi ja ko ru zh only) for every chat
  generation, a response with no such line an invalid row; ``tgt_lang`` is
  1/0: the response's language (the IO check's LID) is the item's ``lang``,
  the intended target, not the prompt's detected language;
* ``mode: translated`` (paper Appendix C): the instruction and the response
  of every non-English item are translated into English by the translator
  endpoint, and the judge sees the English texts. A failed translation makes
  the judgment invalid (``translation failed: ...``). Language checks always
  use the original texts.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import pandas as pd
from pydantic import Field, model_validator

from polyglot_kedro.config import StrictModel
from polyglot_kedro.contracts import (
    CHAT_LANGUAGE_COLUMNS,
    GENERATION_REQUIRED,
    ITEM_KEYS,
    JUDGE_NOISE_COLUMNS,
    JUDGMENT_COLUMNS,
    SCORE_COLUMNS,
    require_columns,
)
from polyglot_kedro.judge import parse_verdict, render_judge_messages, render_translation_messages
from polyglot_kedro.language_confusion import (
    TARGET_LANG,
    LanguageConfusionParams,
    LanguageConfusionScorer,
    ResponseConfusion,
    metric_rows,
)
from polyglot_kedro.lid import LabelMode, LanguageIdentifier

from .scores import fill_engines, row_label, tidy_frame

logger = logging.getLogger(__name__)

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


class SecondJudgeParams(StrictModel):
    """``judging.chat.judge_noise.second``: what makes the second judging differ from the first.

    Unset fields keep the first judge's value. ``seed`` (and ``temperature``)
    are forced on the second judge's requests like ``request``; ``endpoint``
    names a second judge model in ``params:llm_endpoints``. Any difference is
    part of the LLM cache key, so the second verdicts are real new requests,
    and a rerun pays for none of them twice.
    """

    seed: int | None = None
    endpoint: str | None = None
    # null: the first judge's (``request.temperature``). At temperature 0 a
    # greedy in-process judge gives the same verdict under any seed; only an
    # endpoint that is not deterministic at 0 (OpenAI) differs by seed alone.
    temperature: float | None = Field(None, ge=0)


class JudgeNoiseParams(StrictModel):
    """``judging.chat.judge_noise``: judge a subset of the judged responses a second time."""

    enabled: bool = False
    # Prompts per language drawn from the first judging's items (all their
    # seeds rejudged; pandas sample, random_state=sample_seed). null: all.
    n_items: int | None = Field(None, ge=1, description="prompts rejudged per language; null = all judged")
    sample_seed: int = 42
    # The mixes whose judgments are rejudged (names of params:mixes); null: every mix. The
    # judge's noise is the judge's, not the mix's: a few mixes measure it.
    mixes: list[str] | None = Field(None, min_length=1, description="mixes rejudged; null = all")
    second: SecondJudgeParams = SecondJudgeParams(seed=43)


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
    judge_noise: JudgeNoiseParams = JudgeNoiseParams()

    @model_validator(mode="after")
    def _second_judge_differs(self) -> "ChatJudgingParams":
        noise = self.judge_noise
        if not noise.enabled:
            return self
        if not self.enabled:
            raise ValueError("judge_noise.enabled needs chat.enabled: there are no first verdicts to judge again")
        second = noise.second
        if (second.endpoint in (None, self.endpoint) and second.seed in (None, self.request.seed)
                and second.temperature in (None, self.request.temperature)):
            raise ValueError(
                "judge_noise.second is the first judge again (same endpoint, seed and temperature): its verdicts "
                "would be the first ones from the cache; set second.seed, second.endpoint or second.temperature"
            )
        return self


class JudgingParams(StrictModel):
    """``params:judging``."""

    chat: ChatJudgingParams = ChatJudgingParams()
    # The prompt/response LID (IO agreement, the forced-1 rule): a local fastText
    # file, a Hub id (polyglot_kedro.lid.HUB_MODELS, e.g. laurievb/OpenLID, with
    # its pinned lid_revision) or None for the bundled lid.176.ftz.
    lid_model_path: str | None = None
    lid_revision: str | None = None
    lid_label_mode: LabelMode = "iso639_1"
    language_confusion: LanguageConfusionParams = LanguageConfusionParams()


# --------------------------------------------------------------------------- helpers


def _endpoint(llm_endpoints: dict, name: str, overrides: dict | None = None) -> dict:
    if name not in (llm_endpoints or {}):
        raise KeyError(f"params:llm_endpoints has no endpoint {name!r} (conf/base/parameters_llm.yml); has {sorted(llm_endpoints or {})}")
    cfg = dict(llm_endpoints[name])
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return cfg


def _judge_name(cfg: dict) -> str:
    return f"{cfg.get('backend', 'openai')}:{cfg.get('model', '')}"


#: ``judge_parse`` of a mismatched response the judge was not asked about.
NOT_JUDGED_MISMATCH = "not judged: language mismatch"
#: Start of ``invalid_reason`` when the judge was not asked because a translation failed.
TRANSLATION_FAILED = "translation failed"


def _judge_request(mix_name: str, item: dict):
    from polyglot_kedro.llm import ChatRequest

    return ChatRequest(key=f"{mix_name}/{item['lang']}/{item['seed']}/{item['item_id']}",
                       messages=render_judge_messages(item["judged_instruction"], item["judged_response"]))


def _apply_verdict(out: dict, res, lang_match: bool) -> None:
    """Fill a judgment row from one judge result (the paper's validity and language rules)."""
    if not res.ok:
        out["invalid_reason"] = f"request failed: {res.error}"
        return
    verdict = parse_verdict(res.text)
    out.update(judge_raw=res.text, judge_parse=verdict.parse_method, reasoning=verdict.reasoning,
               valid=verdict.valid, invalid_reason=verdict.invalid_reason)
    if verdict.valid:
        out["raw_score"] = float(verdict.raw_score)
        out["score"] = float(verdict.raw_score) if lang_match else 1.0


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
    """Language of every chat prompt and response (fastText LID), and its language confusion.

    Args:
        generations: ``{mix}.generations`` rows.
        judging: ``params:judging`` (``lid_model_path``, ``chat.prompt_lang_source``,
            ``language_confusion``).

    Returns:
        One row per chat generation (``contracts.CHAT_LANGUAGE_COLUMNS``):
        ``prompt_lang, response_lang, lang_match`` (IO agreement),
        ``tgt_lang_match`` (response language == the item's ``lang``),
        ``lcb_line_langs`` (space-joined LID labels of the response's lines
        of 5+ tokens, ``""`` when it has none) and ``lcb_english_words``
        (space-joined English words found, word-level languages only);
        the last three missing with ``language_confusion.enabled: false``.
    """
    params = JudgingParams.model_validate(judging or {})
    require_columns(generations, GENERATION_REQUIRED, "generations")
    chat = generations[generations["task"] == "chat"]
    if chat.empty:
        return _chat_language_frame([])
    lid = LanguageIdentifier(params.lid_model_path, revision=params.lid_revision, label_mode=params.lid_label_mode)
    lcb = params.language_confusion
    confusion = LanguageConfusionScorer.from_params(lcb) if lcb.enabled else None
    cache: dict[str, str] = {}

    def lang_of(text: str) -> str:
        if not text.strip():
            return ""
        if text not in cache:
            cache[text] = lid.predict(text).lang
        return cache[text]

    rows = []
    for row in chat.to_dict("records"):
        if not isinstance(row["question"], str):
            raise ValueError(f"{row_label(row)}: field 'question' (the instruction) is not a text: {row['question']!r}")
        instruction = row["question"].strip()
        response = "" if row["output"] is None else str(row["output"])
        prompt_lang = row["lang"] if params.chat.prompt_lang_source == "label" else lang_of(instruction)
        response_lang = lang_of(response)
        out = {**{k: row[k] for k in ITEM_KEYS}, "instruction": instruction, "prompt_lang": prompt_lang,
               "response_lang": response_lang, "lang_match": bool(response_lang) and response_lang == prompt_lang}
        if confusion is not None:
            checked = confusion.check(response, str(row["lang"]))
            out.update(tgt_lang_match=bool(response_lang) and response_lang == row["lang"],
                       lcb_line_langs=" ".join(checked.line_langs), lcb_english_words=" ".join(checked.english_words))
        rows.append(out)
    return _chat_language_frame(rows)


def _chat_language_frame(rows: list[dict]) -> pd.DataFrame:
    df = tidy_frame(rows, CHAT_LANGUAGE_COLUMNS)
    df["tgt_lang_match"] = df["tgt_lang_match"].astype("boolean")
    for col in ("lcb_line_langs", "lcb_english_words"):
        df[col] = df[col].astype("str")  # missing (disabled) stays missing
    return df


def judge_chat(
    generations: pd.DataFrame,
    chat_languages: pd.DataFrame,
    base_model: str | None,
    judging: dict,
    llm_endpoints: dict,
    mix_name: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judge the helpfulness of the sampled chat responses.

    Args:
        generations: ``{mix}.generations``.
        chat_languages: output of ``detect_chat_languages``.
        base_model: model folder for the in-process backend (``base_model``).
        judging: ``params:judging``.
        llm_endpoints: ``params:llm_endpoints`` (``judge``, ``translator``).
        mix_name: ``params:mix_name``, the namespace's mix.

    Returns:
        ``chat_judgments`` (``JUDGMENT_COLUMNS``; one row per judged
        generation, invalid ones included) and the usage ledger rows of the
        judge (and translator) with a ``mix`` column.
    """
    from polyglot_kedro.llm import ChatRequest, build_client  # heavy import, only when judging

    params = JudgingParams.model_validate(judging or {})
    cp = params.chat
    require_columns(generations, GENERATION_REQUIRED, "generations")
    require_columns(chat_languages, CHAT_LANGUAGE_COLUMNS, "chat_languages")
    chat = generations[generations["task"] == "chat"]
    if not cp.enabled or chat.empty:
        return tidy_frame([], JUDGMENT_COLUMNS), pd.DataFrame({"mix": pd.Series(dtype=object)})

    chosen = {lang: set(sample_items(g["item_id"], cp.n_items, cp.sample_seed)) for lang, g in chat.groupby("lang")}
    chat = chat[[str(i) in chosen[lang] for lang, i in zip(chat["lang"], chat["item_id"])]]
    if cp.seeds is not None:
        seeds = chat["seed"].astype(int)
        missing = sorted(set(cp.seeds) - set(seeds))
        if missing:
            raise ValueError(
                f"judging.chat.seeds: no chat generations with seed(s) {missing} in "
                f"{mix_name}.generations (seeds there: {sorted(set(seeds))})"
            )
        chat = chat[seeds.isin(cp.seeds)]
    langs = chat_languages.set_index(["lang", "seed", "item_id"])
    items = []
    for row in chat.to_dict("records"):
        key = (row["lang"], row["seed"], row["item_id"])
        if key not in langs.index:
            raise ValueError(f"{row_label(row)}: no language row in chat_languages")
        lrow = langs.loc[key]
        response = "" if row["output"] is None else str(row["output"])
        items.append({**{k: row[k] for k in ITEM_KEYS}, "instruction": lrow["instruction"], "response": response,
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
            desc=f"{mix_name} translate for judging",
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
                    translation_error.setdefault(n, f"{TRANSLATION_FAILED} ({field}): {res.error}")
        usage.append(tr_client.usage())

    to_judge = [n for n in range(len(items)) if n not in translation_error and n not in skipped]
    requests = [_judge_request(mix_name, items[n]) for n in to_judge]
    results = dict(zip(to_judge, judge_client.run(requests, desc=f"{mix_name} judge")))
    usage.append(judge_client.usage())

    rows = []
    for n, item in enumerate(items):
        res = results.get(n)
        out = {**item, "judge_mode": cp.mode, "judge": judge_name, "judge_raw": None, "judge_parse": None,
               "reasoning": None, "raw_score": math.nan, "score": math.nan, "valid": False,
               "cached": bool(res.cached) if res else False, "attempts": int(res.attempts) if res else 0}
        if n in skipped:  # the language rule decides: 1, no request
            out.update(judge_parse=NOT_JUDGED_MISMATCH, score=1.0, valid=True, invalid_reason=None)
        elif n in translation_error:
            out["invalid_reason"] = translation_error[n]
        else:
            _apply_verdict(out, res, item["lang_match"])
        rows.append(out)
    judgments = tidy_frame(rows, JUDGMENT_COLUMNS)
    n_invalid = int((~judgments["valid"]).sum())
    logger.info(
        "%s: %d chat responses, %d judged by %s, %d scored 1 unjudged (language mismatch), %d invalid",
        mix_name, len(judgments), len(to_judge), judge_name, len(skipped), n_invalid,
    )  # fmt: skip
    ledger = pd.concat([u for u in usage if u is not None and not u.empty], ignore_index=True) if any(
        u is not None and not u.empty for u in usage) else pd.DataFrame()
    ledger["mix"] = mix_name
    return judgments, ledger


def _sampling_label(name: str, cfg: dict) -> str:
    """A judge and the sampling that tells two judgings by one model apart."""
    return f"{name} [seed {cfg.get('seed')}, temperature {cfg.get('temperature')}]"


def judge_noise_subset(
    chat_judgments: pd.DataFrame,
    base_model: str | None,
    judging: dict,
    llm_endpoints: dict,
    mix_name: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judge a reproducible subset of the judged responses a second time (``judging.chat.judge_noise``).

    The second judge (another seed and/or temperature on the same endpoint, or
    another endpoint) sees exactly the texts the first judge saw
    (``judged_instruction``, ``judged_response``: translated ones in
    ``mode: translated``) under the same forced request settings, through the
    same cached client, and its reply goes through the same verdict parser and
    language rule. Responses the first judge was never asked about (language
    mismatch with ``judge_mismatched: false``, failed translation) are not
    rejudged. ``chat_judgments`` and the scores are left as they are: the
    first verdict stays the score.

    Args:
        chat_judgments: ``judge_chat``'s judgments of this mix.
        base_model: model folder for the in-process backend.
        judging: ``params:judging``.
        llm_endpoints: ``params:llm_endpoints``.
        mix_name: ``params:mix_name``.

    Returns:
        ``contracts.JUDGE_NOISE_COLUMNS`` rows (empty when the option is off)
        and the second judge's usage ledger row with a ``mix`` column (empty
        when off).
    """
    from polyglot_kedro.llm import build_client  # heavy import, only when judging

    cp = JudgingParams.model_validate(judging or {}).chat
    noise = cp.judge_noise
    empty_usage = pd.DataFrame({"mix": pd.Series(dtype=object)})
    if not (cp.enabled and noise.enabled) or chat_judgments.empty:
        return tidy_frame([], JUDGE_NOISE_COLUMNS), empty_usage
    if noise.mixes is not None and mix_name not in noise.mixes:
        logger.info("%s: judge noise not measured (judging.chat.judge_noise.mixes: %s)", mix_name, noise.mixes)
        return tidy_frame([], JUDGE_NOISE_COLUMNS), empty_usage
    require_columns(chat_judgments, JUDGMENT_COLUMNS, "chat_judgments")
    parse = chat_judgments["judge_parse"].fillna("").astype(str)
    reason = chat_judgments["invalid_reason"].fillna("").astype(str)
    asked = chat_judgments[(parse != NOT_JUDGED_MISMATCH) & ~reason.str.startswith(TRANSLATION_FAILED)]
    chosen = {lang: set(sample_items(g["item_id"], noise.n_items, noise.sample_seed)) for lang, g in asked.groupby("lang")}
    subset = asked[[str(i) in chosen[lang] for lang, i in zip(asked["lang"], asked["item_id"])]]
    if subset.empty:  # the judge was asked about nothing: no second judge to load
        logger.info("%s: judge noise: no response the judge was asked about, nothing judged again", mix_name)
        return tidy_frame([], JUDGE_NOISE_COLUMNS), empty_usage

    first_cfg = _endpoint(llm_endpoints, cp.endpoint, cp.request.model_dump())
    second = noise.second
    # the first judge's forced settings, but for what the option changes (None: keep)
    changed = {k: v for k, v in (("seed", second.seed), ("temperature", second.temperature)) if v is not None}
    second_cfg = _endpoint(llm_endpoints, second.endpoint or cp.endpoint, {**cp.request.model_dump(), **changed})
    client = build_client(second_cfg, stage="judging_noise", inprocess_model_path=base_model)
    # in translated mode both judges read the same English texts: their names carry the same suffix
    suffix = str(chat_judgments["judge"].iloc[0]).removeprefix(_judge_name(first_cfg))
    first_name = _sampling_label(f"{_judge_name(first_cfg)}{suffix}", first_cfg)
    second_name = _sampling_label(f"{_judge_name(second_cfg)}{suffix}", second_cfg)

    items = subset.to_dict("records")
    results = client.run([_judge_request(mix_name, it) for it in items], desc=f"{mix_name} judge again")
    rows = []
    for item, res in zip(items, results):
        lang_match = bool(item["lang_match"]) if not pd.isna(item["lang_match"]) else False
        out = {**{k: item[k] for k in JUDGMENT_COLUMNS}, "judge": second_name, "judge_raw": None,
               "judge_parse": None, "reasoning": None, "raw_score": math.nan, "score": math.nan, "valid": False,
               "invalid_reason": None, "cached": bool(res.cached), "attempts": int(res.attempts),
               "first_judge": first_name, "first_raw_score": item["raw_score"], "first_score": item["score"],
               "first_valid": bool(item["valid"]), "response_chars": len(str(item["response"] or ""))}
        _apply_verdict(out, res, lang_match)
        rows.append(out)
    table = tidy_frame(rows, JUDGE_NOISE_COLUMNS)
    for col in ("first_raw_score", "first_score"):
        table[col] = pd.to_numeric(table[col], errors="raise").astype("float64")
    table["first_judge"] = table["first_judge"].astype("str")
    table["first_valid"] = table["first_valid"].astype(bool)
    table["response_chars"] = table["response_chars"].astype("int64")
    logger.info("%s: %d of %d judged responses judged again by %s (%d invalid second verdicts)", mix_name,
                len(table), len(asked), second_name, int((~table["valid"]).sum()))
    usage = client.usage()
    usage["mix"] = mix_name
    return table, usage


def collect_judging_usage(chat_judging_usage: pd.DataFrame, judge_noise_usage: pd.DataFrame) -> pd.DataFrame:
    """The mix's one judging ledger: the judge's (and translator's) rows, then the second judging's.

    Args:
        chat_judging_usage: ``judge_chat``'s ledger.
        judge_noise_usage: ``judge_noise_subset``'s ledger (empty when off).

    Returns:
        The rows of both, in that order.
    """
    frames = [df for df in (chat_judging_usage, judge_noise_usage) if df is not None and len(df)]
    if not frames:
        return chat_judging_usage
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def score_chat(generations: pd.DataFrame, chat_languages: pd.DataFrame, chat_judgments: pd.DataFrame) -> pd.DataFrame:
    """The chat rows of the score table: language metrics and helpfulness.

    Args:
        generations: ``{mix}.generations`` (the engine of each scored output).
        chat_languages: ``detect_chat_languages`` output (``io_lang_agreement``,
            paper Figure 1: 1/0 for every chat generation; ``tgt_lang``,
            ``lcb_line_pass``, ``lcb_word_pass`` where language confusion was
            computed).
        chat_judgments: ``judge_chat`` output (``helpfulness``).

    Returns:
        ``contracts.SCORE_COLUMNS`` rows, metrics ``io_lang_agreement``,
        ``tgt_lang``, ``lcb_line_pass``, ``lcb_word_pass`` and ``helpfulness``.
    """
    rows: list[dict] = []
    for r in chat_languages.to_dict("records"):
        base = {**{k: r[k] for k in ITEM_KEYS}, "prompt_lang": r["prompt_lang"], "response_lang": r["response_lang"]}
        rows.append({**base, "metric": "io_lang_agreement", "score": float(bool(r["lang_match"])), "valid": True,
                     "invalid_reason": None, "lang_match": bool(r["lang_match"])})  # fmt: skip
        if pd.isna(r.get("lcb_line_langs", None)):
            continue  # language confusion not computed (judging.language_confusion.enabled: false)
        rows.append({**base, "metric": TARGET_LANG, "score": float(bool(r["tgt_lang_match"])), "valid": True,
                     "invalid_reason": None})  # fmt: skip
        checked = ResponseConfusion(lang=str(r["lang"]), line_langs=tuple(str(r["lcb_line_langs"]).split()),
                                    english_words=tuple(str(r["lcb_english_words"]).split()))
        rows += [{**base, **m} for m in metric_rows(checked)]
    for r in chat_judgments.to_dict("records"):
        rows.append({**{k: r[k] for k in ITEM_KEYS}, "metric": "helpfulness",
                     **{k: r[k] for k in ("score", "valid", "invalid_reason", "raw_score", "prompt_lang",
                                          "response_lang", "lang_match", "judge", "judge_mode", "judge_raw")}})  # fmt: skip
    return tidy_frame(fill_engines(rows, generations), SCORE_COLUMNS)
