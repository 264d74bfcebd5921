"""Report rendering: the Markdown tables document and the self-contained HTML report.

The HTML building blocks (CSS, table markup, escaping) are in :mod:`.html`;
this module decides what the report says and in which order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from polyglot_kedro.config import MixSpec, mix_specs

from . import html
from .params import ReportingParams


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
        parts += [html.markdown_table(figure_numbers[figure_numbers["figure"] == fig["id"]].drop(columns="figure")), ""]
    for title, df in _tables(significance, invalid_counts, costs, mix_summary, language_distribution, training_metrics):
        parts += [f"## {title}", "", html.markdown_table(df), ""]
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


def render_report(manifest: dict[str, Any], significance: pd.DataFrame, invalid_counts: pd.DataFrame,
                  costs: pd.DataFrame, mix_summary: pd.DataFrame, language_distribution: pd.DataFrame,
                  training_metrics: pd.DataFrame, scores: pd.DataFrame, mixes: dict[str, Any], model: str,
                  params: dict[str, Any], run_info: Mapping[str, Any]) -> str:
    """The self-contained HTML report (figures embedded as base64 PNG).

    Args:
        manifest: the figure manifest from :func:`draw_figures`.
        significance, invalid_counts, costs, mix_summary, language_distribution,
            training_metrics: the tables, as in :func:`render_tables_markdown`.
        scores: the combined tidy scores (models, judges, seeds, engines).
        mixes: ``params:mixes``.
        model: ``params:model``.
        params: ``params:reporting``.
        run_info: the run's provenance (``git_commit``, ``git_dirty``, ``env``,
            ``params_sha256``, ``kedro_version``, ``python``...), put into the
            catalog by the start-up hook; missing keys read "not recorded".

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
        ("Git commit", _describe_commit(run_info)),
        ("Run", _describe_run(run_info)),
        ("Statistics", f"{p.n_boot} bootstrap resamples over item x seed rows, seed {p.seed}, "
                       f"{int(round(p.ci_level * 100))}% percentile CI"),
    ]
    return html.render(
        title="polyglot_kedro: how much multilinguality does instruction tuning need?",
        meta=meta, notes=manifest.get("notes", []), figures=manifest.get("figures", []),
        tables=_tables(significance, invalid_counts, costs, mix_summary, language_distribution, training_metrics),
        viz_link=p.viz_link, viz_command=p.viz_command,
    )


def _describe_commit(run_info: Mapping[str, Any]) -> str:
    commit = run_info.get("git_commit") or "not recorded"
    dirty = run_info.get("git_dirty")
    return f"{commit} (with uncommitted changes)" if dirty else str(commit)


def _describe_run(run_info: Mapping[str, Any]) -> str:
    keys = [("env", "environment"), ("params_sha256", "parameters sha256"), ("kedro_version", "Kedro"),
            ("python", "Python")]
    parts = [f"{label} {run_info[key]}" for key, label in keys if run_info.get(key)]
    return "; ".join(parts) or "not recorded"


def _describe_mix(spec: MixSpec) -> str:
    if spec.kind == "multi":
        return f"multi, {spec.n_languages} languages, {spec.source}"
    return spec.kind


def _describe_source(value: Any) -> str:
    """A data source for the report header: a path/Hub id, or ``lang: source`` pairs."""
    if isinstance(value, Mapping) and "source" in value:  # one source with overrides
        name = (value.get("load_args") or {}).get("name")
        return f"{value['source']} ({name})" if name else str(value["source"])
    if isinstance(value, Mapping):  # per language
        return ", ".join(f"{lang}: {_describe_source(v)}" for lang, v in value.items())
    return str(value)
