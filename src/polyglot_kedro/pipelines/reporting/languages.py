"""Which languages each mix was finetuned on (the hatched bars of the figures).

mono and multi-i follow the one rule :meth:`MixSpec.added_languages`; a
``full`` mix (Guanaco as it is) holds whatever data mixing found in it, read
from data_mixing's ``mix_summary`` or ``language_distribution``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from polyglot_kedro.config import mix_label, mix_specs

_LANG_CODE = re.compile(r"^[a-z]{2,3}$")
_SUMMARY_NON_LANG = {"mix", "rows", "languages", "mean_tokens"}


def finetuning_languages(mixes: dict[str, Any], data_mixing: Mapping[str, Any],
                         mix_summary: pd.DataFrame | None = None,
                         language_distribution: pd.DataFrame | None = None) -> tuple[dict[str, set[str]], list[str]]:
    """Languages each mix was finetuned on.

    mono: the base language; multi-i: base + ``MixSpec.added_languages``;
    full: every language with rows in that mix according to ``mix_summary``
    (a ``languages`` list or per-language count columns) or
    ``language_distribution`` (``mix, lang`` + a count); untuned: none.

    Args:
        mixes: ``params:mixes``.
        data_mixing: ``params:data_mixing`` (``mixing.language_order``, ``mixing.base_language``).
        mix_summary: data_mixing's per-mix summary, or None.
        language_distribution: data_mixing's language distribution, or None.

    Returns:
        (mix -> set of language codes, notes about mixes whose languages are
        unknown); a mix with a ``label`` is also listed under its label (the
        ``mix`` of its result rows).

    Raises:
        ValueError: ``params:data_mixing`` has no ``mixing.language_order``.
    """
    mixing = dict(data_mixing.get("mixing", data_mixing) or {})
    if "language_order" not in mixing:
        raise ValueError("params:data_mixing has no mixing.language_order: cannot tell which languages a mix holds")
    order = list(mixing["language_order"])
    base = mixing.get("base_language", data_mixing.get("base_language", "en"))
    out: dict[str, set[str]] = {}
    notes: list[str] = []
    for name, spec in mix_specs(mixes).items():
        if spec.kind == "untuned":
            out[name] = set()
        elif spec.kind in ("mono", "multi"):
            out[name] = {base, *spec.added_languages(order, name)}
        else:
            langs = _languages_from_summary(name, mix_summary) or _languages_from_distribution(name, language_distribution)
            out[name] = langs
            if not langs:
                notes.append(f"Languages of mix '{name}' (kind full) not found in mix_summary/language_distribution: "
                             "its bars are not hatched.")
        out.setdefault(mix_label(name, spec), out[name])
    return out, notes


def _languages_from_summary(mix: str, summary: pd.DataFrame | None) -> set[str]:
    if summary is None or summary.empty or "mix" not in summary.columns:
        return set()
    rows = summary[summary["mix"].astype(str) == mix]
    if rows.empty:
        return set()
    row = rows.iloc[0]
    listed = row.get("languages")
    if isinstance(listed, str) and re.search(r"[a-z]{2}", listed):
        try:
            parsed = json.loads(listed)
            if isinstance(parsed, list):
                return {str(x) for x in parsed}
        except json.JSONDecodeError:
            pass
        return {x for x in re.split(r"[,;\s|]+", listed) if _LANG_CODE.match(x)}
    langs = set()
    for col in summary.columns:
        if col in _SUMMARY_NON_LANG or not _LANG_CODE.match(str(col)):
            continue
        value = pd.to_numeric(pd.Series([row[col]]), errors="coerce").iloc[0]
        if pd.notna(value) and value > 0:
            langs.add(str(col))
    return langs


def _languages_from_distribution(mix: str, dist: pd.DataFrame | None) -> set[str]:
    if dist is None or dist.empty or not {"mix", "lang"} <= set(dist.columns):
        return set()
    rows = dist[dist["mix"].astype(str) == mix]
    count_col = next((c for c in ("rows", "count", "n") if c in rows.columns), None)
    if count_col is not None:
        rows = rows[pd.to_numeric(rows[count_col], errors="coerce") > 0]
    return set(rows["lang"].astype(str))
