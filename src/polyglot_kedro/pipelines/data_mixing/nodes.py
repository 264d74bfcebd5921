"""Nodes of data_mixing: Guanaco -> parsed -> language-identified -> training mixes.

Selection (Kew et al. 2023): every language's kept rows are put in one seeded
order (a permutation of the rows sorted by id, seeded by ``seed`` and the
language code), and every mix takes a *prefix* of each order. So ``mono`` =
the first ``total_size`` English rows; ``multi-i`` = the first
``total_size - (i-1) * per_language`` English rows plus the first
``per_language`` rows of each of the first ``i-1`` languages of
``language_order``. multi(i+1) therefore keeps every non-English row of
multi(i) and drops only English ones.

MT mixes (``source: mt``): the English rows that multi-i drops from mono are
the ones translated. Language k of ``language_order`` (k = 1..) gets the
English block ``order_en[total - k * per_language : total - (k-1) * per_language]``;
``mt_multi-i`` = the English rows of multi-i plus the translations of blocks
1..i-1 into their languages. mt_multi-i thus has mono's content with some rows
translated (and the same English rows and sizes as multi-i).

Appendix mixes (``MixSpec``): ``exclude`` leaves languages out of a multi
mix (the base language fills their rows: leave-one-out Multi-6), ``filter:
none`` makes ``full`` every parsed row (the paper's unfiltered Guanaco
baseline), and ``ids_file`` builds mono from an id list (the released
``ml1_ids``: row indices of Guanaco train + test).

The sizes and nesting follow the released ``data_prep/prepare_guanaco_data.py``;
``mixing.sampler: released`` replays its draws (``pandas.DataFrame.sample``)
instead of the nested prefixes above (:func:`released_mix_ids`).

Mix rows are written sorted by ``id``, so the same seed gives byte-identical
Parquet whatever the input order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from polyglot_kedro.config import MixSpec, StrictModel, mix_specs
from polyglot_kedro.lid import LabelMode, LanguageIdentifier
from polyglot_kedro.prompting import GuanacoParseError, Turn, parse_guanaco, plain_text

logger = logging.getLogger(__name__)

MIX_COLUMNS = ["id", "text", "lang", "source"]
LID_COLUMNS = ["lang", "lid_label", "lid_confidence", "keep"]
TRANSLATION_COLUMNS = ["id", "source_id", "lang", "text", "status"]


class ParsingParams(StrictModel):
    """``data_mixing.parsing``.

    ``allow_trailing_human_turn``: keep rows whose last turn is an unanswered
    ``### Human:`` turn (common in the real Guanaco data) instead of rejecting them.
    """

    allow_trailing_human_turn: bool = True


class LidParams(StrictModel):
    """``data_mixing.lid``: the fastText model, the keep threshold, and an
    optional prefix length (``None`` = whole conversation).

    ``model_path``: a local ``.bin``/``.ftz`` file, a Hub id
    (``laurievb/OpenLID``, the paper's ``lid201-model.bin``) fetched at
    ``revision``, or ``None`` for lid.176.ftz. ``label_mode``: how labels are
    compared (``lid.LidConfig``).
    """

    model_path: str | None = None
    revision: str | None = None
    filename: str | None = None
    cache_dir: str | None = None
    label_mode: LabelMode = "iso639_1"
    max_chars: int | None = Field(None, ge=1)
    min_confidence: float = Field(0.8, ge=0.0, le=1.0)


class MixingParams(StrictModel):
    """``data_mixing.mixing``: sizes, language order, seed, short-supply policy.

    ``on_short_supply``: ``error`` raises naming the language, the need and the
    supply; ``fill_with_base`` takes all rows of the short language and fills
    the gap with base-language rows (same total size, logged as a warning).

    ``sampler``: ``nested`` (this project's: one seeded order per language,
    every mix a prefix of it) or ``released`` (the released
    ``data_prep/prepare_guanaco_data.py`` draws, replayed with
    ``pandas.Series.sample(random_state=seed)``; see :func:`released_mix_ids`).
    ``source: mt`` mixes keep the nested draws either way (the released MT
    mixes were built another way, docs/FIDELITY.md).
    """

    total_size: int = Field(ge=1)
    per_language: int = Field(ge=1)
    language_order: list[str]
    base_language: str = "en"
    seed: int = 42
    on_short_supply: Literal["error", "fill_with_base"] = "error"
    sampler: Literal["nested", "released"] = "nested"

    @model_validator(mode="after")
    def _languages(self) -> "MixingParams":
        if len(set(self.language_order)) != len(self.language_order):
            raise ValueError(f"language_order has duplicates: {self.language_order}")
        if self.base_language in self.language_order:
            raise ValueError(f"base_language {self.base_language!r} must not be in language_order")
        return self


class DataMixingParams(StrictModel):
    """The ``data_mixing`` parameters (conf/base/parameters_data_mixing.yml)."""

    parsing: ParsingParams = ParsingParams()
    lid: LidParams = LidParams()
    mixing: MixingParams


class ShortSupplyError(ValueError):
    """A mix needs more rows of a language than the data holds."""


# --------------------------------------------------------------------------- parsing


def parse_guanaco_rows(guanaco_raw: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse raw Guanaco rows into turns; send unparsable rows to a rejected table.

    Args:
        guanaco_raw: a ``text`` column of ``### Human: ... ### Assistant: ...`` rows.
        params: ``data_mixing`` parameters (``parsing.allow_trailing_human_turn``).

    Returns:
        ``guanaco_parsed`` (``id`` = ``g{row:05d}``, ``text``, ``turns`` as a JSON
        list of ``{role, content}``, ``n_turns``) and ``guanaco_rejected``
        (``row, text, reason``).

    Raises:
        ValueError: ``guanaco_raw`` has no ``text`` column.
    """
    cfg = DataMixingParams.model_validate(params)
    if "text" not in guanaco_raw.columns:
        raise ValueError(f"guanaco_raw has no 'text' column (columns: {list(guanaco_raw.columns)})")
    parsed, rejected = [], []
    for row, text in enumerate(guanaco_raw["text"].tolist()):
        try:
            turns = parse_guanaco(text, allow_trailing_human=cfg.parsing.allow_trailing_human_turn)
        except GuanacoParseError as exc:
            rejected.append({"row": row, "text": text if isinstance(text, str) else "", "reason": exc.reason})
            continue
        parsed.append(
            {
                "id": f"g{row:05d}",
                "text": text,
                "turns": json.dumps([{"role": t.role, "content": t.content} for t in turns], ensure_ascii=False),
                "n_turns": len(turns),
            }
        )
    if rejected:
        logger.warning("guanaco: %d of %d rows rejected (see guanaco_rejected)", len(rejected), len(guanaco_raw))
    logger.info("guanaco: %d rows parsed", len(parsed))
    parsed_df = pd.DataFrame(parsed, columns=["id", "text", "turns", "n_turns"]).astype({"n_turns": "int64"})
    rejected_df = pd.DataFrame(rejected, columns=["row", "text", "reason"]).astype({"row": "int64"})
    return parsed_df, rejected_df


# --------------------------------------------------------------------------- LID


def identify_languages(guanaco_parsed: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Language-identify each conversation (all turns, markers removed, one line).

    Args:
        guanaco_parsed: output of ``parse_guanaco_rows``.
        params: ``data_mixing`` parameters (``lid``: model, revision, label mode, threshold).

    Returns:
        ``guanaco_parsed`` plus ``lang`` (ISO 639-1, else 639-3), ``lid_label``,
        ``lid_confidence`` and ``keep`` (confidence >= ``min_confidence``).
    """
    cfg = DataMixingParams.model_validate(params)
    lid = LanguageIdentifier(
        cfg.lid.model_path, max_chars=cfg.lid.max_chars, revision=cfg.lid.revision, filename=cfg.lid.filename,
        cache_dir=cfg.lid.cache_dir, label_mode=cfg.lid.label_mode,
    )  # fmt: skip
    texts = [plain_text([Turn(t["role"], t["content"]) for t in json.loads(s)]) for s in guanaco_parsed["turns"]]
    pred = lid.predict_many(texts)
    out = guanaco_parsed.reset_index(drop=True).copy()
    for col in ("lang", "lid_label", "lid_confidence"):
        out[col] = pred[col].to_numpy()
    out["keep"] = out["lid_confidence"] >= cfg.lid.min_confidence
    logger.info(
        "LID (%s): %d of %d rows kept at confidence >= %.2f",
        lid.model_path, int(out["keep"].sum()), len(out), cfg.lid.min_confidence,
    )
    return out


def summarise_language_distribution(guanaco_lid: pd.DataFrame) -> pd.DataFrame:
    """Table 1 style: rows and share per language, over all rows and over kept rows.

    Returns:
        ``lang, count_all, share_all, count_kept, share_kept`` sorted by
        ``count_all`` (descending), then ``lang``.
    """
    all_counts = guanaco_lid["lang"].value_counts()
    kept_counts = guanaco_lid.loc[guanaco_lid["keep"], "lang"].value_counts()
    out = pd.DataFrame({"count_all": all_counts, "count_kept": kept_counts}).fillna(0).astype("int64")
    out.index.name = "lang"
    out = out.reset_index()
    out["share_all"] = out["count_all"] / max(int(out["count_all"].sum()), 1)
    out["share_kept"] = out["count_kept"] / max(int(out["count_kept"].sum()), 1)
    out = out.sort_values(["count_all", "lang"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    return out[["lang", "count_all", "share_all", "count_kept", "share_kept"]]


# --------------------------------------------------------------------------- mixes


def _seeded_order(ids: list[str], lang: str, seed: int) -> list[str]:
    """One seeded permutation of ``ids`` (sorted first, so input order does not matter)."""
    ids = sorted(ids)
    rng = np.random.default_rng(np.random.SeedSequence([seed, *lang.encode("utf-8")]))
    return [ids[i] for i in rng.permutation(len(ids))]


def _orders(guanaco_lid: pd.DataFrame, mixing: MixingParams) -> dict[str, list[str]]:
    kept = guanaco_lid[guanaco_lid["keep"]]
    by_lang = kept.groupby("lang")["id"].apply(list).to_dict()
    langs = [mixing.base_language, *mixing.language_order]
    return {lang: _seeded_order(by_lang.get(lang, []), lang, mixing.seed) for lang in langs}


def _short(mix: str, lang: str, need: int, supply: int, what: str = "kept rows") -> ShortSupplyError:
    return ShortSupplyError(
        f"mix {mix!r}: not enough {lang!r} examples: need {need}, supply {supply} ({what}). "
        "Lower data_mixing.mixing.total_size/per_language, use more data, "
        "or set data_mixing.mixing.on_short_supply: fill_with_base."
    )


def _plan(mix: str, spec: MixSpec, orders: dict[str, list[str]], mixing: MixingParams) -> dict[str, int]:
    """Rows to take per language (a prefix of each language's order)."""
    extra = spec.added_languages(mixing.language_order, mix)
    if mixing.per_language * len(extra) > mixing.total_size:
        raise ValueError(
            f"mix {mix!r}: {len(extra)} x per_language {mixing.per_language} exceeds total_size {mixing.total_size}"
        )
    take: dict[str, int] = {}
    for lang in extra:
        supply = len(orders[lang])
        if supply < mixing.per_language:
            if mixing.on_short_supply == "error":
                raise _short(mix, lang, mixing.per_language, supply)
            logger.warning(
                "mix %r: only %d %r rows (need %d); filling with %r rows (on_short_supply: fill_with_base)",
                mix, supply, lang, mixing.per_language, mixing.base_language,
            )
        take[lang] = min(supply, mixing.per_language)
    base = mixing.base_language
    n_base = mixing.total_size - sum(take.values())
    if len(orders[base]) < n_base:
        raise _short(mix, base, n_base, len(orders[base]))
    return {base: n_base, **take}


def _frame(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    out = rows.reset_index(drop=True).assign(source=source)[MIX_COLUMNS]
    return out.sort_values("id", kind="mergesort").reset_index(drop=True)


def build_mixes(guanaco_lid: pd.DataFrame, params: dict[str, Any], mixes: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Build every native training mix (kinds ``mono``, ``multi``, ``full``).

    Args:
        guanaco_lid: output of ``identify_languages``.
        params: ``data_mixing`` parameters (``mixing`` block).
        mixes: the experiment grid (``params:mixes``); ``untuned`` and
            ``source: mt`` mixes are skipped. ``full`` takes the LID-kept rows
            (``filter: none``: every parsed row); a mono mix with ``ids_file``
            takes exactly the listed rows; ``exclude`` drops languages of a
            multi mix (see ``MixSpec``).

    Returns:
        Mix name -> ``id, text, lang, source`` (``native``) rows sorted by ``id``.

    Raises:
        ValueError: an id list names a row that is not among the parsed rows.
        ShortSupplyError: a language (or the base language) has fewer kept rows
            than a mix needs and ``on_short_supply`` is ``error``.
    """
    mixing = DataMixingParams.model_validate(params).mixing
    specs = mix_specs(mixes)
    orders = _orders(guanaco_lid, mixing)
    by_id = guanaco_lid.set_index("id", drop=False)
    released = released_mix_ids(guanaco_lid, mixing, specs) if mixing.sampler == "released" else {}
    out: dict[str, pd.DataFrame] = {}
    for mix, spec in specs.items():
        if spec.kind == "untuned" or spec.source == "mt":
            continue
        if mix in released:
            out[mix] = _frame(by_id.loc[released[mix]], "native")
        elif spec.kind == "full":
            rows = guanaco_lid if spec.filter == "none" else guanaco_lid[guanaco_lid["keep"]]
            out[mix] = _frame(rows, "native")
        elif spec.ids_file is not None:
            out[mix] = _frame(by_id.loc[_listed_ids(mix, spec.ids_file, by_id)], "native")
            other = out[mix][out[mix]["lang"] != mixing.base_language]
            if len(other):
                # The list is the paper's selection (its LID); ours may disagree on a few rows.
                logger.warning("mix %r: %d of %d listed rows are not %r by this LID: %s", mix, len(other),
                               len(out[mix]), mixing.base_language, other["lang"].value_counts().to_dict())
        else:
            plan = _plan(mix, spec, orders, mixing)
            ids = [i for lang, n in plan.items() for i in orders[lang][:n]]
            out[mix] = _frame(by_id.loc[ids], "native")
        counts = out[mix]["lang"].value_counts().to_dict()
        logger.info("mix %r: %d rows %s", mix, len(out[mix]), counts)
    return out


def read_id_list(path: str) -> list[tuple[int, int]]:
    """Read an id list file: one ``"id":N`` fragment (the paper's ``ml1_ids``) or bare ``N`` per line.

    Args:
        path: a local path or any fsspec URL.

    Returns:
        ``(line number, id)`` pairs in file order (blank lines skipped).

    Raises:
        ValueError: a line that is neither form, or an id listed twice (file and line named).
    """
    import fsspec  # a dependency of kedro-datasets; any URL it knows works

    try:
        with fsspec.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read id list {path}: {exc}") from exc
    out: list[tuple[int, int]] = []
    first_line: dict[int, int] = {}
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        key, sep, value = text.rpartition(":")
        if sep and key.strip() not in ('"id"', "id"):
            raise ValueError(f"{path}, line {lineno}: expected '\"id\":N' or 'N', got {line!r}")
        try:
            row = int(value)
        except ValueError:
            raise ValueError(f"{path}, line {lineno}: expected '\"id\":N' or 'N', got {line!r}") from None
        if row < 0:
            raise ValueError(f"{path}, line {lineno}: negative id {row}")
        if row in first_line:
            raise ValueError(f"{path}, line {lineno}: id {row} already listed on line {first_line[row]}")
        first_line[row] = lineno
        out.append((lineno, row))
    if not out:
        raise ValueError(f"id list {path} is empty")
    return out


def _listed_ids(mix: str, path: str, by_id: pd.DataFrame) -> list[str]:
    """Parsed-row ids (``g{row:05d}``) of the rows an id list names, checked against the data."""
    ids = []
    for lineno, row in read_id_list(path):
        key = f"g{row:05d}"
        if key not in by_id.index:
            raise ValueError(
                f"mix {mix!r}: {path}, line {lineno}: id {row} is not a parsed row of guanaco_raw "
                f"({len(by_id)} parsed rows; the row is missing from the source or was rejected, see guanaco_rejected)"
            )
        ids.append(key)
    return ids


def _pandas_sample(ids: list[str], n: int, seed: int, what: str) -> list[str]:
    """``n`` of ``ids`` as the released code drew them (``DataFrame.sample(n, random_state=seed)``)."""
    if n > len(ids):
        raise ShortSupplyError(f"{what}: need {n} rows, supply {len(ids)}")
    return pd.Series(ids, dtype=object).sample(n=n, random_state=seed).tolist()


def released_mix_ids(guanaco_lid: pd.DataFrame, mixing: MixingParams, specs: dict[str, MixSpec]) -> dict[str, list[str]]:
    """Row ids of the native mono/multi mixes as the released ``prepare_guanaco_data.py`` drew them.

    Replays the script (ZurichNLP/multilingual-instruction-tuning @ 0d9859c1)
    on this run's LID table, with the pools in id order as the script read
    them (``guanaco_train.json``, confidence-filtered):

    - Mono ``M``: ``pool[en].sample(total_size)`` in drawn order, or the
      rows of the mono mix's ``ids_file`` in file order (the released list
      *is* that draw, so the English rows of every mix below then follow
      from it without this run's LID).
    - Each added language: ``pool[X].sample(per_language)``.
    - Multi-i (``i - 1`` < all languages): ``M.sample(total - (i-1) * per)``
      English rows plus the first ``i - 1`` languages.
    - Leave-one-out (``n_languages - 1`` = every language of
      ``language_order``): the English rows are the first
      ``total - (L-1) * per`` of ``M`` (the script's ``pool[en].sample(2200)``,
      a prefix of the same draw), plus every language less ``exclude``; with
      no ``exclude`` (the script's "en" file) ``per`` English rows are dropped
      by ``.sample(per)``.

    All draws use ``random_state=seed``. ``full``, ``untuned`` and ``mt``
    mixes are not drawn here.

    Raises:
        ShortSupplyError: a pool smaller than a draw (the script skipped such
            languages silently; here it is an error).
        ValueError: two mono mixes with different id lists, or an ``exclude``
            on a mix that does not hold every language.
    """
    seed, per, total, base = mixing.seed, mixing.per_language, mixing.total_size, mixing.base_language
    order = mixing.language_order
    kept = guanaco_lid[guanaco_lid["keep"]].sort_values("id", kind="mergesort")
    pools = kept.groupby("lang", sort=False)["id"].apply(list).to_dict()
    by_id = guanaco_lid.set_index("id", drop=False)
    id_lists = {s.ids_file for s in specs.values() if s.kind == "mono" and s.ids_file}
    if len(id_lists) > 1:
        raise ValueError(f"sampler released: mono mixes name different id lists {sorted(id_lists)}")
    if id_lists:
        (ids_file,) = id_lists
        mono = _listed_ids("mono", ids_file, by_id)
    else:
        mono = _pandas_sample(pools.get(base, []), total, seed, f"sampler released: Mono ({base!r} kept rows)")
    added: dict[str, list[str]] = {}

    def language(lang: str, mix: str) -> list[str]:
        if lang not in added:
            added[lang] = _pandas_sample(pools.get(lang, []), per, seed, f"mix {mix!r}: {lang!r} kept rows")
        return added[lang]

    out: dict[str, list[str]] = {}
    for mix, spec in specs.items():
        if spec.source == "mt" or spec.kind not in ("mono", "multi"):
            continue
        if spec.kind == "mono":
            out[mix] = list(mono)
            continue
        langs = spec.added_languages(order, mix)
        if spec.n_languages - 1 == len(order):  # a leave-one-out file
            english = mono[: total - (len(order) - 1) * per]
            if not spec.exclude:
                dropped = set(_pandas_sample(english, per, seed, f"mix {mix!r}: English rows"))
                english = [i for i in english if i not in dropped]
        elif spec.exclude:
            raise ValueError(
                f"mix {mix!r}: sampler released leaves a language out only of a mix holding all "
                f"{len(order)} languages of language_order (n_languages {len(order) + 1})"
            )
        else:
            english = _pandas_sample(mono, total - len(langs) * per, seed, f"mix {mix!r}: English rows of Mono")
        out[mix] = english + [i for lang in langs for i in language(lang, mix)]
    return out


def _mt_blocks(orders: dict[str, list[str]], mixing: MixingParams, n_languages: int) -> dict[str, list[str]]:
    """English rows to translate into each of the first ``n_languages - 1`` languages."""
    base = orders[mixing.base_language]
    total, per = mixing.total_size, mixing.per_language
    langs = mixing.language_order[: n_languages - 1]
    if len(base) < total:
        raise _short("mt mixes", mixing.base_language, total, len(base))
    if per * len(langs) > total:
        raise ValueError(f"mt mixes: {len(langs)} x per_language {per} exceeds total_size {total}")
    return {lang: base[total - k * per : total - (k - 1) * per] for k, lang in enumerate(langs, start=1)}


def _mt_specs(mixes: dict[str, Any]) -> dict[str, MixSpec]:
    return {m: s for m, s in mix_specs(mixes).items() if s.source == "mt"}


def select_mt_sources(guanaco_lid: pd.DataFrame, params: dict[str, Any], mixes: dict[str, Any]) -> pd.DataFrame:
    """The English rows to machine-translate for the ``source: mt`` mixes.

    Language k of ``language_order`` gets the k-th block of ``per_language``
    English rows counted back from the end of mono (see module docstring).

    Args:
        guanaco_lid: output of ``identify_languages``.
        params: ``data_mixing`` parameters.
        mixes: the experiment grid.

    Returns:
        ``id, text, lang`` (the base language), ``target_lang``; sorted by
        target language (``language_order``) and ``id``.
    """
    mixing = DataMixingParams.model_validate(params).mixing
    specs = _mt_specs(mixes)
    if not specs:
        return pd.DataFrame(columns=["id", "text", "lang", "target_lang"])
    n = max(s.n_languages for s in specs.values())
    blocks = _mt_blocks(_orders(guanaco_lid, mixing), mixing, n)
    by_id = guanaco_lid.set_index("id", drop=False)
    parts = []
    for lang, ids in blocks.items():
        rows = by_id.loc[sorted(ids), ["id", "text", "lang"]].assign(target_lang=lang)
        parts.append(rows)
    out = pd.concat(parts, ignore_index=True)
    logger.info("mt sources: %d English rows for %s", len(out), list(blocks))
    return out


def _concat_translations(translations: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """Accept a DataFrame or a PartitionedDataset dict (partition -> DataFrame or loader)."""
    if isinstance(translations, pd.DataFrame):
        return translations
    parts = [v() if isinstance(v, Callable) else v for _, v in sorted(translations.items())]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=TRANSLATION_COLUMNS)


def build_mt_mixes(
    guanaco_lid: pd.DataFrame,
    guanaco_translations: pd.DataFrame | Mapping[str, Any],
    params: dict[str, Any],
    mixes: dict[str, Any],
) -> dict[str, pd.DataFrame]:
    """Build the ``source: mt`` mixes from machine translations of English rows.

    Args:
        guanaco_lid: output of ``identify_languages``.
        guanaco_translations: ``id`` (translated row id), ``source_id``,
            ``lang`` (target), ``text``, ``status`` (only ``ok`` rows are used);
            a DataFrame or a partitioned dict of them.
        params: ``data_mixing`` parameters.
        mixes: the experiment grid.

    Returns:
        Mix name -> ``id, text, lang, source`` rows sorted by ``id``: the
        English rows of the native multi-i plus translated rows (``mt``).

    Raises:
        ValueError: missing translation columns.
        ShortSupplyError: a needed translation is missing/not ok and
            ``on_short_supply`` is ``error`` (with ``fill_with_base`` the
            English original stays in the mix).
    """
    mixing = DataMixingParams.model_validate(params).mixing
    specs = _mt_specs(mixes)
    tr = _concat_translations(guanaco_translations)
    missing_cols = [c for c in TRANSLATION_COLUMNS if c not in tr.columns]
    if missing_cols:
        raise ValueError(f"guanaco_translations lacks columns {missing_cols} (has {list(tr.columns)})")
    ok = tr[tr["status"] == "ok"].sort_values(["source_id", "lang", "id"], kind="mergesort")
    ok = ok.drop_duplicates(["source_id", "lang"], keep="first").set_index(["source_id", "lang"])
    orders = _orders(guanaco_lid, mixing)
    by_id = guanaco_lid.set_index("id", drop=False)
    out: dict[str, pd.DataFrame] = {}
    for mix, spec in specs.items():
        blocks = _mt_blocks(orders, mixing, spec.n_languages)
        n_base = mixing.total_size - mixing.per_language * len(blocks)
        parts = [_frame(by_id.loc[orders[mixing.base_language][:n_base]], "native")]
        for lang, ids in blocks.items():
            keys = [(i, lang) for i in ids]
            have = [k for k in keys if k in ok.index]
            if len(have) < len(keys):
                if mixing.on_short_supply == "error":
                    raise _short(mix, lang, len(keys), len(have), "translations with status 'ok'")
                lacking = [k[0] for k in keys if k not in ok.index]
                logger.warning("mix %r: %d %r translations missing; keeping the English originals", mix, len(lacking), lang)
                parts.append(_frame(by_id.loc[lacking], "native"))
            rows = ok.loc[have].reset_index()[["id", "text", "lang"]] if have else pd.DataFrame(columns=["id", "text", "lang"])
            parts.append(_frame(rows, "mt"))
        out[mix] = pd.concat(parts, ignore_index=True).sort_values("id", kind="mergesort").reset_index(drop=True)
        logger.info("mix %r: %d rows %s", mix, len(out[mix]), out[mix]["lang"].value_counts().to_dict())
    return out


# --------------------------------------------------------------------------- summary


def summarise_mixes(base_model: str, **mix_frames: pd.DataFrame) -> pd.DataFrame:
    """Per-mix summary: size, languages and length in tokens of the selected model.

    Args:
        base_model: path of a transformers model folder (only its tokenizer is loaded).
        **mix_frames: mix name -> training mix (``id, text, lang, source``).

    Returns:
        One row per mix (sorted by name): ``mix, rows, n_languages, languages``
        (by count, descending), ``lang_counts`` (JSON), ``mt_rows``,
        ``mean_tokens``, ``total_tokens`` (texts tokenized without special tokens).
    """
    from transformers import AutoTokenizer  # heavy import, only for this node

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    rows = []
    for mix in sorted(mix_frames):
        frame = mix_frames[mix]
        counts = frame["lang"].value_counts()
        counts = counts.sort_index().sort_values(ascending=False, kind="mergesort")
        texts = frame["text"].tolist()
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
        rows.append(
            {
                "mix": mix,
                "rows": len(frame),
                "n_languages": len(counts),
                "languages": ",".join(counts.index),
                "lang_counts": json.dumps({k: int(v) for k, v in counts.items()}),
                "mt_rows": int((frame["source"] == "mt").sum()),
                "mean_tokens": float(np.mean(lengths)) if lengths else float("nan"),
                "total_tokens": int(sum(lengths)),
            }
        )
    return pd.DataFrame(rows)
