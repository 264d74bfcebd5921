"""Native training mixes (mono / multi-i / full / appendix mixes) from the language-identified rows.

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

import logging
from typing import Any

import numpy as np
import pandas as pd

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.pipelines.data_mixing.params import (
    MIX_COLUMNS,
    DataMixingParams,
    MixingParams,
    ShortSupplyError,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- mixes


def _seeded_order(ids: list[str], lang: str, seed: int) -> list[str]:
    """One seeded permutation of ``ids`` (sorted first, so input order does not matter)."""
    ids = sorted(ids)
    rng = np.random.default_rng(np.random.SeedSequence([seed, *lang.encode("utf-8")]))
    return [ids[i] for i in rng.permutation(len(ids))]


def language_orders(guanaco_lid: pd.DataFrame, mixing: MixingParams) -> dict[str, list[str]]:
    kept = guanaco_lid[guanaco_lid["keep"]]
    by_lang = kept.groupby("lang")["id"].apply(list).to_dict()
    langs = [mixing.base_language, *mixing.language_order]
    return {lang: _seeded_order(by_lang.get(lang, []), lang, mixing.seed) for lang in langs}


def short_supply_error(mix: str, lang: str, need: int, supply: int, what: str = "kept rows") -> ShortSupplyError:
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
                raise short_supply_error(mix, lang, mixing.per_language, supply)
            logger.warning(
                "mix %r: only %d %r rows (need %d); filling with %r rows (on_short_supply: fill_with_base)",
                mix, supply, lang, mixing.per_language, mixing.base_language,
            )
        take[lang] = min(supply, mixing.per_language)
    base = mixing.base_language
    n_base = mixing.total_size - sum(take.values())
    if len(orders[base]) < n_base:
        raise short_supply_error(mix, base, n_base, len(orders[base]))
    return {base: n_base, **take}


def mix_frame(rows: pd.DataFrame, source: str) -> pd.DataFrame:
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
    orders = language_orders(guanaco_lid, mixing)
    by_id = guanaco_lid.set_index("id", drop=False)
    released = released_mix_ids(guanaco_lid, mixing, specs) if mixing.sampler == "released" else {}
    out: dict[str, pd.DataFrame] = {}
    for mix, spec in specs.items():
        if spec.kind == "untuned" or spec.source == "mt":
            continue
        if mix in released:
            out[mix] = mix_frame(by_id.loc[released[mix]], "native")
        elif spec.kind == "full":
            rows = guanaco_lid if spec.filter == "none" else guanaco_lid[guanaco_lid["keep"]]
            out[mix] = mix_frame(rows, "native")
        elif spec.ids_file is not None:
            out[mix] = mix_frame(by_id.loc[_listed_ids(mix, spec.ids_file, by_id)], "native")
            other = out[mix][out[mix]["lang"] != mixing.base_language]
            if len(other):
                # The list is the paper's selection (its LID); ours may disagree on a few rows.
                logger.warning("mix %r: %d of %d listed rows are not %r by this LID: %s", mix, len(other),
                               len(out[mix]), mixing.base_language, other["lang"].value_counts().to_dict())
        else:
            plan = _plan(mix, spec, orders, mixing)
            ids = [i for lang, n in plan.items() for i in orders[lang][:n]]
            out[mix] = mix_frame(by_id.loc[ids], "native")
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
