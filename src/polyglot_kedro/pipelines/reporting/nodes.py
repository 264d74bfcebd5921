"""Reporting nodes: tidy scores of every mix -> statistics, figures, tables, HTML.

Every node is a pure function of DataFrames and dicts; the figures are
matplotlib ``Figure`` objects saved by the catalog (and embedded in the HTML
as base64 PNG by ``draw_figures``, because the catalog's matplotlib dataset
cannot be loaded back).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from polyglot_kedro.config import MixSpec, StrictModel, mix_specs
from polyglot_kedro.pipelines.reporting import figures as figs
from polyglot_kedro.pipelines.reporting import html as report_html
from polyglot_kedro.stats import holm, paired_bootstrap, summarize

logger = logging.getLogger(__name__)

SCORE_COLUMNS = [
    "model", "mix", "task", "lang", "prompt_setting", "seed", "item_id",
    "metric", "score", "valid", "invalid_reason",
]
GROUP_KEYS = ["model", "mix", "task", "lang", "prompt_setting", "metric"]
PAIR_KEYS = ["model", "task", "lang", "prompt_setting", "metric", "seed", "item_id"]
STAT_COLUMNS = ["n", "n_invalid", "mean", "sd", "ci_low", "ci_high"]
USAGE_NUMERIC = ["requests", "sent", "cached", "failed", "prompt_tokens", "completion_tokens", "cost_usd"]


class ReportingParams(StrictModel):
    """``params:reporting`` (see ``conf/base/parameters_reporting.yml``)."""

    n_boot: int = Field(1000, ge=10)
    ci_level: float = Field(0.95, gt=0, lt=1)
    seed: int = 42
    error_bars: Literal["ci", "sd"] = "ci"
    error_bars_by_figure: dict[figs.FigureId, Literal["ci", "sd"]] = Field(default_factory=dict)
    comparisons: list[tuple[str, str]] | None = None
    alpha: float = Field(0.05, gt=0, lt=1)
    xquad_metric: Literal["xquad_f1", "xquad_em"] = "xquad_f1"
    size_metric: str = "helpfulness"
    sources: dict[str, Any] = Field(default_factory=dict)  # name -> path / Hub id / {lang: ...}
    engine: str = ""
    git_commit: str | None = None
    viz_link: str = "../../../../build/index.html"
    viz_command: str = "kedro viz build"

    def bars_for(self, figure_id: str) -> str:
        """Error bar kind (``ci`` or ``sd``) drawn in ``figure_id``."""
        return self.error_bars_by_figure.get(figure_id, self.error_bars)


# --------------------------------------------------------------------------- inputs


def combine_scores(*scores: pd.DataFrame, mix_names: Sequence[str]) -> pd.DataFrame:
    """Check and concatenate the ``{mix}.scores`` frames of all mixes.

    Args:
        *scores: one tidy scores frame per mix, in the order of ``mix_names``.
        mix_names: the mixes the frames belong to.

    Returns:
        One frame with the contract's columns (extra columns kept), ``item_id``
        as str and ``valid`` as bool.

    Raises:
        ValueError: a frame lacks a contract column, holds rows of another mix,
            has a valid row without a score or a duplicated key row; the
            message names the mix (and row).
    """
    if len(scores) != len(mix_names):
        raise ValueError(f"combine_scores got {len(scores)} frames for {len(mix_names)} mixes")
    frames = []
    for name, df in zip(mix_names, scores):
        missing = [c for c in SCORE_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"dataset '{name}.scores' lacks columns {missing}")
        other = sorted(set(df["mix"].astype(str)) - {name})
        if other:
            raise ValueError(f"dataset '{name}.scores' holds rows of other mixes {other}")
        df = df.copy()
        df["item_id"] = df["item_id"].astype(str)
        df["valid"] = df["valid"].astype(bool)
        df["score"] = pd.to_numeric(df["score"], errors="raise").astype(float)
        bad = df.index[df["valid"] & df["score"].isna()]
        if len(bad):
            row = df.loc[bad[0]]
            raise ValueError(
                f"dataset '{name}.scores' row {bad[0]}: valid is True but score is NaN "
                f"(task={row['task']}, lang={row['lang']}, metric={row['metric']}, item_id={row['item_id']})"
            )
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    key = ["mix", *PAIR_KEYS]
    dup = out.duplicated(key, keep=False)
    if dup.any():
        first = out.loc[dup.idxmax(), key].to_dict()
        raise ValueError(f"duplicated score rows for key {first}: each (mix, item, seed, metric, ...) must be scored once")
    return out


def summarize_costs(*ledgers: pd.DataFrame, mix_names: Sequence[str]) -> pd.DataFrame:
    """The cost ledger: every usage frame with the mix it belongs to, plus a total.

    Args:
        *ledgers: usage rows (``stage, model, backend, requests, sent, cached,
            failed, prompt_tokens, completion_tokens, cost_usd``), e.g.
            ``translation_usage`` and each ``{mix}.judging_usage``.
        mix_names: the mix of each ledger (``""`` for shared ones such as translation).

    Returns:
        Column ``mix`` + the ledger columns, and a ``TOTAL`` row summing the
        numeric ones.
    """
    if len(ledgers) != len(mix_names):
        raise ValueError(f"summarize_costs got {len(ledgers)} ledgers for {len(mix_names)} names")
    frames = [df.assign(mix=name) for name, df in zip(mix_names, ledgers) if len(df)]
    if not frames:
        return pd.DataFrame(columns=["mix", "stage", "model", "backend", *USAGE_NUMERIC])
    ledger = pd.concat(frames, ignore_index=True)
    cols = ["mix"] + [c for c in ledger.columns if c != "mix"]
    ledger = ledger[cols]
    numeric = [c for c in USAGE_NUMERIC if c in ledger.columns]
    total = {c: ledger[c].sum() for c in numeric}
    total["mix"] = "TOTAL"
    return pd.concat([ledger, pd.DataFrame([total])], ignore_index=True)


def collect_training_metrics(*metrics: Mapping[str, Any], mix_names: Sequence[str]) -> pd.DataFrame:
    """One row per finetuned mix with the scalar training metrics.

    Nested dicts are flattened with ``.``; a list of numbers (e.g. a loss
    curve) is reported by its last value (``<key>.last``) and length.

    Args:
        *metrics: ``{mix}.training_metrics`` dicts, ``mix_names`` order.
        mix_names: the finetuned mixes.

    Returns:
        Columns ``mix`` + one per scalar metric.
    """
    rows = []
    for name, m in zip(mix_names, metrics):
        row: dict[str, Any] = {"mix": name}
        _flatten(m or {}, "", row)
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["mix"])


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", out)
        elif isinstance(value, (list, tuple)):
            nums = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if value and len(nums) == len(value):
                out[f"{name}.last"] = nums[-1]
                out[f"{name}.len"] = len(nums)
            elif value and all(isinstance(v, Mapping) for v in value):
                out[f"{name}.len"] = len(value)
                _flatten(value[-1], f"{name}.last.", out)
        elif value is None or isinstance(value, (str, int, float, bool)):
            out[name] = value


# --------------------------------------------------------------------------- statistics


def aggregate_scores(scores: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Mean, sd and bootstrap CI per (model, mix, task, lang, prompt setting, metric).

    Invalid rows (``valid`` False) are counted in ``n_invalid`` and left out
    of the statistics. Every group uses a fresh generator seeded with
    ``reporting.seed``, so a group's numbers do not depend on the others.

    Args:
        scores: the combined tidy scores.
        params: ``params:reporting``.

    Returns:
        ``GROUP_KEYS`` + ``n, n_invalid, mean, sd, ci_low, ci_high``.
    """
    p = ReportingParams.model_validate(params)
    rows = []
    for key, grp in scores.groupby(GROUP_KEYS, sort=True, dropna=False):
        valid = grp.loc[grp["valid"], "score"].to_numpy(dtype=float)
        s = summarize(valid, n_boot=p.n_boot, seed=p.seed, level=p.ci_level)
        rows.append({**dict(zip(GROUP_KEYS, key)), "n": s.n, "n_invalid": int((~grp["valid"]).sum()),
                     "mean": s.mean, "sd": s.sd, "ci_low": s.ci_low, "ci_high": s.ci_high})
    return pd.DataFrame(rows, columns=GROUP_KEYS + STAT_COLUMNS)


def default_comparisons(mixes: Mapping[str, MixSpec], present: Sequence[str]) -> list[tuple[str, str]]:
    """Consecutive native mixes (params order) plus each mt mix vs its native twin."""
    names = [m for m in mixes if m in set(present)]
    native = [m for m in names if mixes[m].source == "native" and mixes[m].kind != "untuned"]
    pairs = list(zip(native, native[1:]))
    for m in names:
        if mixes[m].source == "mt":
            twin = _native_twin(m, mixes, names)
            if twin:
                pairs.append((twin, m))
    return pairs


def _native_twin(mt_mix: str, mixes: Mapping[str, MixSpec], names: Sequence[str]) -> str | None:
    spec = mixes[mt_mix]
    for m in names:
        s = mixes[m]
        if s.source == "native" and s.kind == spec.kind and s.n_languages == spec.n_languages:
            return m
    return None


def compare_mixes(scores: pd.DataFrame, mixes: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """Paired bootstrap between mixes on every (model, task, lang, prompt setting, metric).

    Rows are paired on (model, task, lang, prompt_setting, metric, seed,
    item_id); a pair needs a valid score on both sides (the count of unpaired
    valid rows is reported). ``diff = mean_b - mean_a``; ``p_holm`` is the
    Holm adjustment over the languages of one (comparison, task, prompt
    setting, metric); ``significant`` is ``p_holm < alpha``.

    Args:
        scores: the combined tidy scores.
        mixes: ``params:mixes``.
        params: ``params:reporting``.

    Returns:
        ``model, task, lang, prompt_setting, metric, mix_a, mix_b, n_pairs,
        n_unpaired, mean_a, mean_b, diff, ci_low, ci_high, p_value, p_holm,
        significant``.

    Raises:
        ValueError: a configured comparison names a mix that is not in
            ``params:mixes``.
    """
    p = ReportingParams.model_validate(params)
    specs = mix_specs(mixes)
    present = list(pd.unique(scores["mix"]))
    if p.comparisons is None:
        pairs = default_comparisons(specs, present)
    else:
        pairs = list(p.comparisons)
        unknown = sorted({m for pair in pairs for m in pair} - set(specs) - set(present))
        if unknown:
            raise ValueError(f"reporting.comparisons names unknown mixes {unknown}; known: {sorted(specs)}")
    cols = ["model", "task", "lang", "prompt_setting", "metric", "mix_a", "mix_b", "n_pairs", "n_unpaired",
            "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value", "p_holm", "significant"]
    valid = scores[scores["valid"]]
    rows = []
    for a, b in pairs:
        left = valid[valid["mix"] == a][PAIR_KEYS + ["score"]]
        right = valid[valid["mix"] == b][PAIR_KEYS + ["score"]]
        if left.empty or right.empty:
            logger.warning("comparison %s vs %s skipped: no valid scores for %s", a, b, a if left.empty else b)
            continue
        merged = left.merge(right, on=PAIR_KEYS, suffixes=("_a", "_b"), how="outer", indicator=True)
        for key, grp in merged.groupby(PAIR_KEYS[:5], sort=True):
            both = grp[grp["_merge"] == "both"]
            if both.empty:
                continue
            r = paired_bootstrap(both["score_a"], both["score_b"], n_boot=p.n_boot, seed=p.seed, level=p.ci_level)
            rows.append({**dict(zip(PAIR_KEYS[:5], key)), "mix_a": a, "mix_b": b, "n_pairs": r.n_pairs,
                         "n_unpaired": int((grp["_merge"] != "both").sum()), "mean_a": r.mean_a,
                         "mean_b": r.mean_b, "diff": r.diff, "ci_low": r.ci_low, "ci_high": r.ci_high,
                         "p_value": r.p_value})
    out = pd.DataFrame(rows, columns=cols)
    # One family per comparison and metric (its languages): a table-wide
    # correction would need more resamples than the bootstrap p-value's floor
    # 1/(n_boot+1) allows.
    family = ["model", "task", "prompt_setting", "metric", "mix_a", "mix_b"]
    out["p_holm"] = (out.groupby(family, sort=False)["p_value"].transform(lambda s: holm(s.to_numpy(float)))
                     if len(out) else pd.Series(dtype=float))
    out["significant"] = out["p_holm"] < p.alpha
    return out


def count_invalid(scores: pd.DataFrame) -> pd.DataFrame:
    """Invalid judgments/scores per (model, mix, task, lang, metric) with their reasons.

    Args:
        scores: the combined tidy scores.

    Returns:
        ``model, mix, task, lang, metric, n_rows, n_invalid, invalid_share,
        reasons`` (``reason: count`` pairs, most frequent first).
    """
    keys = ["model", "mix", "task", "lang", "metric"]
    rows = []
    for key, grp in scores.groupby(keys, sort=True):
        inv = grp[~grp["valid"]]
        counts = inv["invalid_reason"].fillna("").astype(str).replace("", "unspecified").value_counts()
        rows.append({**dict(zip(keys, key)), "n_rows": len(grp), "n_invalid": len(inv),
                     "invalid_share": len(inv) / len(grp),
                     "reasons": "; ".join(f"{r}: {n}" for r, n in counts.items())})
    return pd.DataFrame(rows, columns=keys + ["n_rows", "n_invalid", "invalid_share", "reasons"])


# --------------------------------------------------------------------------- mixes' languages


def finetuning_languages(mixes: dict[str, Any], data_mixing: Mapping[str, Any],
                         mix_summary: pd.DataFrame | None = None,
                         language_distribution: pd.DataFrame | None = None) -> tuple[dict[str, set[str]], list[str]]:
    """Languages each mix was finetuned on (the hatched bars).

    mono: the base language; multi-i: base + the first i-1 of
    ``language_order``; full: every language with rows in that mix according
    to ``mix_summary`` (a ``languages`` list or per-language count columns)
    or ``language_distribution`` (``mix, lang`` + a count); untuned: none.

    Args:
        mixes: ``params:mixes``.
        data_mixing: ``params:data_mixing`` (``mixing.language_order``, ``mixing.base_language``).
        mix_summary: data_mixing's per-mix summary, or None.
        language_distribution: data_mixing's language distribution, or None.

    Returns:
        (mix -> set of language codes, notes about mixes whose languages are unknown).
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
            if langs:
                out[name] = langs
            else:
                out[name] = set()
                notes.append(f"Languages of mix '{name}' (kind full) not found in mix_summary/language_distribution: its bars are not hatched.")
    return out, notes


_LANG_CODE = re.compile(r"^[a-z]{2,3}$")
_SUMMARY_NON_LANG = {"mix", "rows", "languages", "mean_tokens"}


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


# --------------------------------------------------------------------------- figures


def draw_figures(aggregates: pd.DataFrame, scores: pd.DataFrame, mixes: dict[str, Any],
                 data_mixing: dict[str, Any], language_groups: dict[str, list[str]],
                 mix_summary: pd.DataFrame, language_distribution: pd.DataFrame,
                 params: dict[str, Any]) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Figures 1-7 of the paper's layout, their numbers, and the embeddable PNGs.

    A figure whose data is missing is not drawn; a note says why.

    Args:
        aggregates: output of :func:`aggregate_scores`.
        scores: the combined tidy scores (Fig. 7 pools over languages).
        mixes: ``params:mixes``.
        data_mixing: ``params:data_mixing``.
        language_groups: ``params:language_groups`` (high/mid/low lists).
        mix_summary: data_mixing's per-mix summary.
        language_distribution: data_mixing's language distribution.
        params: ``params:reporting``.

    Returns:
        (``{"<figure id>.png": Figure}`` for the catalog, the numbers of every
        drawn bar with a ``figure`` column, a manifest ``{"figures": [{id,
        title, caption, error_bars, png_base64}], "notes": [...]}``).
    """
    p = ReportingParams.model_validate(params)
    hatch, notes = finetuning_languages(mixes, data_mixing, mix_summary, language_distribution)
    specs = mix_specs(mixes)
    present = list(pd.unique(aggregates["mix"])) if len(aggregates) else []
    unknown = [m for m in present if m not in specs]
    if unknown:
        notes.append(f"Mixes {unknown} are not in params:mixes: their bars are not hatched.")
    mix_order = [m for m in specs if m in present] + unknown
    languages = figs.ordered_languages(language_groups, aggregates["lang"].unique() if len(aggregates) else [])
    specs_list = figs.figure_specs(p.xquad_metric)
    drawn: dict[str, Any] = {}
    numbers = []
    manifest: dict[str, Any] = {"figures": [], "notes": notes}
    models = sorted(pd.unique(aggregates["model"])) if len(aggregates) else []
    main_model = _main_model(aggregates)

    for spec in specs_list:
        sub = aggregates[(aggregates["task"] == spec.task) & (aggregates["metric"] == spec.metric)]
        if spec.prompt_settings:
            sub = sub[sub["prompt_setting"].isin(spec.prompt_settings)]
        sub = sub[sub["n"] > 0]
        if sub.empty:
            notes.append(f"{spec.label} ({spec.title}) skipped: no valid '{spec.metric}' scores for task '{spec.task}'.")
            continue
        missing = [m for m in mix_order if m not in set(sub["mix"])]
        if missing:
            notes.append(f"{spec.label}: no '{spec.metric}' scores for mixes {missing}.")
        bars = p.bars_for(spec.id)
        # With several models the per-language figures show the main one; Fig. 7 compares sizes.
        model = main_model
        if len(models) > 1:
            notes.append(f"{spec.label} shows model '{model}'; Fig. 7 compares models.")
        sub = sub[sub["model"] == model]
        fig = figs.draw_language_bars(sub, spec, languages, [m for m in mix_order if m in set(sub["mix"])],
                                      hatch, bars)
        _record(drawn, numbers, manifest, fig, spec.id, spec.title, sub, bars, p, hatched=True,
                extra=f"Model: {model}.")

    pairs = [(twin, m) for m in mix_order if m in specs and specs[m].source == "mt"
             for twin in [_native_twin(m, specs, mix_order)] if twin]
    fig6_id, fig6_title = "fig6_native_vs_mt", "Native vs machine-translated non-English training examples"
    chat = aggregates[(aggregates["task"] == "chat") & (aggregates["n"] > 0)]
    with_both = [(a, b) for a, b in pairs if {a, b} <= set(chat["mix"])]
    if not with_both:
        notes.append(f"Fig. 6 ({fig6_title}) skipped: no pair of a native multi-i mix and its mt twin with chat results.")
    else:
        bars = p.bars_for(fig6_id)
        model = _main_model(chat[chat["mix"].isin({m for pair in with_both for m in pair})])
        sub = chat[(chat["model"] == model) & chat["mix"].isin({m for pair in with_both for m in pair})]
        fig = figs.draw_native_vs_mt(sub, with_both, languages, hatch, bars)
        _record(drawn, numbers, manifest, fig, fig6_id, fig6_title, sub, bars, p, hatched=True,
                extra=f"Model: {model}. Pairs: " + ", ".join(f"{a} vs {b}" for a, b in with_both) + ".")

    fig7_id, fig7_title = "fig7_model_size", "Model size comparison"
    if len(models) < 2:
        notes.append(f"Fig. 7 ({fig7_title}) skipped: results for only {len(models)} model(s).")
    else:
        pooled = _pooled(scores, p.size_metric, p)
        if pooled.empty:
            notes.append(f"Fig. 7 ({fig7_title}) skipped: no valid '{p.size_metric}' scores.")
        else:
            bars = p.bars_for(fig7_id)
            fig = figs.draw_model_sizes(pooled, [m for m in mix_order if m in set(pooled["mix"])], models,
                                        p.size_metric, bars)
            _record(drawn, numbers, manifest, fig, fig7_id, fig7_title, pooled, bars, p, hatched=False,
                    extra=f"'{p.size_metric}' pooled over all languages and prompt settings.")

    numbers_df = pd.concat(numbers, ignore_index=True) if numbers else pd.DataFrame(
        columns=["figure", "error_bars", *GROUP_KEYS, *STAT_COLUMNS])
    return drawn, numbers_df, manifest


def _main_model(aggregates: pd.DataFrame) -> str | None:
    """The model drawn in the per-language figures: most mixes, then most rows, then name."""
    if aggregates.empty:
        return None
    stats = aggregates.groupby("model").agg(mixes=("mix", "nunique"), rows=("n", "sum"))
    stats = stats.reset_index().sort_values(["mixes", "rows", "model"], ascending=[False, False, True])
    return str(stats["model"].iloc[0])


def _pooled(scores: pd.DataFrame, metric: str, p: ReportingParams) -> pd.DataFrame:
    sub = scores[scores["metric"] == metric]
    rows = []
    for (model, mix), grp in sub.groupby(["model", "mix"], sort=True):
        s = summarize(grp.loc[grp["valid"], "score"].to_numpy(float), n_boot=p.n_boot, seed=p.seed, level=p.ci_level)
        if s.n:
            rows.append({"model": model, "mix": mix, "task": ",".join(sorted(grp["task"].unique())), "lang": "all",
                         "prompt_setting": "all", "metric": metric, "n": s.n, "n_invalid": int((~grp["valid"]).sum()),
                         "mean": s.mean, "sd": s.sd, "ci_low": s.ci_low, "ci_high": s.ci_high})
    return pd.DataFrame(rows, columns=GROUP_KEYS + STAT_COLUMNS)


def _record(drawn, numbers, manifest, fig, fig_id, title, sub, bars, p: ReportingParams, *, hatched, extra) -> None:
    drawn[f"{fig_id}.png"] = fig
    numbers.append(sub.assign(figure=fig_id, error_bars=bars)[["figure", "error_bars", *GROUP_KEYS, *STAT_COLUMNS]])
    manifest["figures"].append({
        "id": fig_id, "title": title, "error_bars": bars,
        "caption": figs.caption(bars, p.ci_level, p.n_boot, hatched=hatched, extra=extra),
        "png_base64": figs.to_base64_png(fig),
    })


# --------------------------------------------------------------------------- tables and report


def render_tables_markdown(figure_numbers: pd.DataFrame, significance: pd.DataFrame, invalid_counts: pd.DataFrame,
                           costs: pd.DataFrame, mix_summary: pd.DataFrame, language_distribution: pd.DataFrame,
                           training_metrics: pd.DataFrame, manifest: dict[str, Any]) -> str:
    """All report tables as one Markdown document (numbers of every figure first).

    Args:
        figure_numbers: output of :func:`draw_figures`.
        significance: output of :func:`compare_mixes`.
        invalid_counts: output of :func:`count_invalid`.
        costs: output of :func:`summarize_costs`.
        mix_summary: data_mixing's summary.
        language_distribution: data_mixing's language distribution.
        training_metrics: output of :func:`collect_training_metrics`.
        manifest: the figure manifest (for captions and notes).

    Returns:
        The Markdown text.
    """
    parts = ["# polyglot_kedro report tables", ""]
    if manifest.get("notes"):
        parts += ["## Notes", ""] + [f"- {n}" for n in manifest["notes"]] + [""]
    for fig in manifest.get("figures", []):
        parts += [f"## {fig['title']} ({fig['id']})", "", fig["caption"], ""]
        parts += [report_html.markdown_table(figure_numbers[figure_numbers["figure"] == fig["id"]].drop(columns="figure")), ""]
    for title, df in _tables(significance, invalid_counts, costs, mix_summary, language_distribution, training_metrics):
        parts += [f"## {title}", "", report_html.markdown_table(df), ""]
    return "\n".join(parts)


def _tables(significance, invalid_counts, costs, mix_summary, language_distribution, training_metrics):
    return [
        ("Paired significance between mixes (diff = mix_b - mix_a; paired bootstrap; p_holm: Holm over the languages of each comparison and metric)", significance),
        ("Invalid judgments / scores per mix and language", invalid_counts),
        ("Cost ledger (API usage)", costs),
        ("Data-mix summary", mix_summary),
        ("Language distribution", language_distribution),
        ("Training metrics", training_metrics),
    ]


def git_commit(cwd: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of ``cwd``, or ``'unknown'`` where git or a repository is absent."""
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return "unknown"
    return res.stdout.strip() or "unknown"


def render_report(manifest: dict[str, Any], significance: pd.DataFrame, invalid_counts: pd.DataFrame,
                  costs: pd.DataFrame, mix_summary: pd.DataFrame, language_distribution: pd.DataFrame,
                  training_metrics: pd.DataFrame, scores: pd.DataFrame, mixes: dict[str, Any], model: str,
                  params: dict[str, Any]) -> str:
    """The self-contained HTML report (figures embedded as base64 PNG).

    Args:
        manifest: the figure manifest from :func:`draw_figures`.
        significance: output of :func:`compare_mixes`.
        invalid_counts: output of :func:`count_invalid`.
        costs: output of :func:`summarize_costs`.
        mix_summary: data_mixing's summary.
        language_distribution: data_mixing's language distribution.
        training_metrics: output of :func:`collect_training_metrics`.
        scores: the combined tidy scores (models, judges, seeds, engines).
        mixes: ``params:mixes``.
        model: ``params:model``.
        params: ``params:reporting``.

    Returns:
        The HTML document.
    """
    p = ReportingParams.model_validate(params)
    specs = mix_specs(mixes)

    def uniq(col: str, mask=None) -> str:
        if col not in scores.columns:
            return "not recorded"
        s = scores.loc[mask, col] if mask is not None else scores[col]
        vals = sorted({str(v) for v in s.dropna() if str(v)})
        return ", ".join(vals) if vals else "not recorded"

    engine = p.engine or uniq("engine")
    sources = "; ".join(f"{k}: {_describe_source(v)}" for k, v in p.sources.items()) or "not given (set reporting.sources)"
    meta = [
        ("Model (params:model)", model),
        ("Models in the scores", uniq("model")),
        ("Mixes", "; ".join(f"{n} ({_describe_mix(s)})" for n, s in specs.items())),
        ("Mixes with scores", uniq("mix")),
        ("Data sources", sources),
        ("Judge", uniq("judge", scores["task"] == "chat") if "task" in scores.columns else "not recorded"),
        ("Seeds", ", ".join(str(s) for s in sorted(pd.unique(scores["seed"]))) if len(scores) else "none"),
        ("Engine", engine),
        ("Git commit", p.git_commit or git_commit()),
        ("Statistics", f"{p.n_boot} bootstrap resamples over item x seed rows, seed {p.seed}, "
                       f"{int(round(p.ci_level * 100))}% percentile CI"),
    ]
    return report_html.render(
        title="polyglot_kedro: how much multilinguality does instruction tuning need?",
        meta=meta, notes=manifest.get("notes", []), figures=manifest.get("figures", []),
        tables=_tables(significance, invalid_counts, costs, mix_summary, language_distribution, training_metrics),
        viz_link=p.viz_link, viz_command=p.viz_command,
    )


def _describe_mix(spec: MixSpec) -> str:
    if spec.kind == "multi":
        return f"multi, {spec.n_languages} languages, {spec.source}"
    return spec.kind


# --------------------------------------------------------------------------- external results

ISO3_TO_ISO1 = {
    "eng": "en", "deu": "de", "fra": "fr", "swe": "sv", "zho": "zh", "cmn": "zh", "spa": "es", "rus": "ru",
    "cat": "ca", "nob": "no", "nno": "no", "nor": "no", "bul": "bg", "isl": "is", "hin": "hi", "ell": "el",
    "ukr": "uk", "ita": "it", "por": "pt", "dan": "da", "fin": "fi", "hun": "hu", "kor": "ko", "vie": "vi",
}
PAPER_MIX_ALIASES = {"mono": "mono", "guanaco": "guanaco", **{f"ml{i}": f"multi{i}" for i in range(2, 7)}}
_PAPER_FILE = re.compile(r"alpaca_eval_instructions_(?P<lang>[a-z]{2,3})-.*?-s(?P<seed>\d+)-")


def paper_lang(label: Any) -> str | None:
    """ISO 639-1 code of an OpenLID/NLLB label (``bul_Cyrl`` -> ``bg``); None when empty."""
    if label is None or (isinstance(label, float) and np.isnan(label)) or str(label).strip() == "":
        return None
    code = str(label).split("_")[0].lower()
    return ISO3_TO_ISO1.get(code, code)


def parse_paper_path(path: str, mix_aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Model, mix, prompt language, seed (and judge) from a released file's path.

    Paths look like ``.../<judge>/<model>_<tag>_merged/alpaca_eval_instructions_<lang>-...-s<seed>-...``,
    e.g. ``llm_evals/likert/gpt-3.5-turbo-1106/llama_2_7b_hf_ml2_merged/alpaca_eval_instructions_de-none-guanaco_prompt-s42-k50-...jsonl``.

    Args:
        path: the file path.
        mix_aliases: the paper's mix tags -> our mix names (default ``ml2`` ->
            ``multi2`` etc.; unknown tags are kept as they are).

    Returns:
        ``{"model", "mix", "lang", "seed", "judge"}`` (judge None for generation files).

    Raises:
        ValueError: the path does not follow the pattern.
    """
    aliases = {**PAPER_MIX_ALIASES, **(mix_aliases or {})}
    parts = Path(path).parts
    m = _PAPER_FILE.search(parts[-1])
    if not m or len(parts) < 2 or not parts[-2].endswith("_merged"):
        raise ValueError(f"{path}: not a paper results path (<model>_<mix>_merged/alpaca_eval_instructions_<lang>-...-s<seed>-...)")
    model, _, tag = parts[-2][: -len("_merged")].rpartition("_")
    judge = parts[-3] if "llm_evals" in parts and len(parts) >= 3 else None
    return {"model": model, "mix": aliases.get(tag, tag), "lang": m["lang"], "seed": int(m["seed"]), "judge": judge}


def import_paper_results(records: Sequence[Mapping[str, Any]], *, model: str, mix: str, lang: str, seed: int,
                         judge: str | None = None, source: str = "") -> pd.DataFrame:
    """The paper's released per-item chat files in the tidy ``scores`` schema.

    A generation file row (``prompt, system, source_lang, system_lang``) gives
    an ``io_lang_agreement`` row (1 when the response's language label equals
    the prompt's). A judge file row (adds ``id, eval_score, eval_reasoning``)
    gives a ``helpfulness`` row, invalid when ``eval_score`` is not an integer
    in 1..6. Rows with both give both. Item ids are the judge file's ``id``,
    else the line number.

    Args:
        records: the file's JSON lines, parsed.
        model, mix, lang, seed: the file's cell (see :func:`parse_paper_path`).
        judge: judge model for helpfulness rows (else ``eval_meta.model_name``).
        source: file name for error messages.

    Returns:
        Tidy scores rows (task ``chat``, prompt_setting ``native``) with
        ``raw_score, prompt_lang, response_lang, lang_match, judge``.

    Raises:
        ValueError: a row has neither language labels nor an ``eval_score``;
            the message names the file and line.
    """
    rows = []
    for i, rec in enumerate(records):
        item = str(rec.get("id", i))
        base = {"model": model, "mix": mix, "task": "chat", "lang": lang, "prompt_setting": "native",
                "seed": int(seed), "item_id": item}
        has_lid = "source_lang" in rec and "system_lang" in rec
        has_eval = "eval_score" in rec
        if not has_lid and not has_eval:
            raise ValueError(f"{source or 'paper results'} line {i + 1}: neither source_lang/system_lang nor eval_score")
        if has_lid:
            src, out = rec.get("source_lang"), rec.get("system_lang")
            ok = bool(src) and bool(out)
            match = (src == out) if ok else None
            rows.append({**base, "metric": "io_lang_agreement", "score": float(match) if ok else np.nan,
                         "valid": ok, "invalid_reason": "" if ok else "missing language label",
                         "raw_score": None, "prompt_lang": paper_lang(src), "response_lang": paper_lang(out),
                         "lang_match": match, "judge": None})
        if has_eval:
            raw = rec.get("eval_score")
            score = _likert(raw)
            meta = rec.get("eval_meta") or {}
            rows.append({**base, "metric": "helpfulness", "score": score, "valid": not np.isnan(score),
                         "invalid_reason": "" if not np.isnan(score) else f"eval_score {raw!r} not an integer in 1..6",
                         "raw_score": None if raw is None else str(raw), "prompt_lang": paper_lang(rec.get("source_lang")),
                         "response_lang": paper_lang(rec.get("system_lang")), "lang_match": None,
                         "judge": judge or meta.get("model_name")})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS + ["raw_score", "prompt_lang", "response_lang", "lang_match", "judge"])


def _likert(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return float("nan")
    return value if value.is_integer() and 1 <= value <= 6 else float("nan")


def _describe_source(value: Any) -> str:
    """A data source for the report header: a path/Hub id, or ``lang: source`` pairs."""
    if isinstance(value, Mapping) and "source" in value:  # one source with overrides
        name = (value.get("load_args") or {}).get("name")
        return f"{value['source']} ({name})" if name else str(value["source"])
    if isinstance(value, Mapping):  # per language
        return ", ".join(f"{lang}: {_describe_source(v)}" for lang, v in value.items())
    return str(value)
