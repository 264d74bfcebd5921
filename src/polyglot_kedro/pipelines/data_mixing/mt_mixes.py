"""MT mixes (``source: mt``): the English rows multi-i drops from mono, translated (see :mod:`.mixes`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.pipelines.data_mixing.mixes import (
    language_orders,
    mix_frame,
    short_supply_error,
)
from polyglot_kedro.pipelines.data_mixing.params import (
    TRANSLATION_COLUMNS,
    DataMixingParams,
    MixingParams,
)

logger = logging.getLogger(__name__)


def _mt_blocks(orders: dict[str, list[str]], mixing: MixingParams, n_languages: int) -> dict[str, list[str]]:
    """English rows to translate into each of the first ``n_languages - 1`` languages."""
    base = orders[mixing.base_language]
    total, per = mixing.total_size, mixing.per_language
    # The languages of the largest MT mix, by the one rule of which languages multi-i holds.
    langs = MixSpec(kind="multi", n_languages=n_languages).added_languages(mixing.language_order, "mt mixes")
    if len(base) < total:
        raise short_supply_error("mt mixes", mixing.base_language, total, len(base))
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
    blocks = _mt_blocks(language_orders(guanaco_lid, mixing), mixing, n)
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
    orders = language_orders(guanaco_lid, mixing)
    by_id = guanaco_lid.set_index("id", drop=False)
    out: dict[str, pd.DataFrame] = {}
    for mix, spec in specs.items():
        blocks = _mt_blocks(orders, mixing, spec.n_languages)
        n_base = mixing.total_size - mixing.per_language * len(blocks)
        parts = [mix_frame(by_id.loc[orders[mixing.base_language][:n_base]], "native")]
        for lang, ids in blocks.items():
            keys = [(i, lang) for i in ids]
            have = [k for k in keys if k in ok.index]
            if len(have) < len(keys):
                if mixing.on_short_supply == "error":
                    raise short_supply_error(mix, lang, len(keys), len(have), "translations with status 'ok'")
                lacking = [k[0] for k in keys if k not in ok.index]
                logger.warning("mix %r: %d %r translations missing; keeping the English originals", mix, len(lacking), lang)
                parts.append(mix_frame(by_id.loc[lacking], "native"))
            rows = ok.loc[have].reset_index()[["id", "text", "lang"]] if have else pd.DataFrame(columns=["id", "text", "lang"])
            parts.append(mix_frame(rows, "mt"))
        out[mix] = pd.concat(parts, ignore_index=True).sort_values("id", kind="mergesort").reset_index(drop=True)
        logger.info("mix %r: %d rows %s", mix, len(out[mix]), out[mix]["lang"].value_counts().to_dict())
    return out
