"""Report rendering: the Markdown tables document and the self-contained HTML report.

The HTML building blocks (CSS, table markup, escaping) are in :mod:`.html`;
this module decides what the report says and in which order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from polyglot_kedro.config import MixSpec, mix_specs

from . import figures, html
from .judge_noise import judge_noise_section
from .params import ReportingParams
from .summary import summary_intro, summary_lines


def render_tables_markdown(figure_numbers: pd.DataFrame, manifest: dict[str, Any], significance: pd.DataFrame,
                           plateau: pd.DataFrame, dose_response: pd.DataFrame, invalid_counts: pd.DataFrame,
                           costs: pd.DataFrame, mix_summary: pd.DataFrame, language_distribution: pd.DataFrame,
                           training_metrics: pd.DataFrame, params: dict[str, Any],
                           judge_noise: pd.DataFrame | None = None) -> str:
    """All report tables as one Markdown document (numbers of every figure first).

    Args:
        figure_numbers: the bars of Figs. 1-7 (:func:`~.draw.draw_figures`).
        manifest: the figure manifest (captions and notes).
        significance: :func:`~.statistics.compare_mixes`.
        plateau: :func:`~.plateau.plateau_table`.
        dose_response: :func:`~.plateau.dose_response` (Fig. 8's numbers).
        invalid_counts: :func:`~.statistics.count_invalid`.
        costs: :func:`~.inputs.summarize_costs`.
        mix_summary: data_mixing's summary.
        language_distribution: data_mixing's language distribution.
        training_metrics: :func:`~.inputs.collect_training_metrics`.
        params: ``params:reporting`` (the tables' notes state the statistics).
        judge_noise: :func:`~.judge_noise.judge_noise_table` (None / empty: not measured).

    Returns:
        The Markdown text.
    """
    p = ReportingParams.model_validate(params)
    parts = ["# polyglot_kedro report tables", ""]
    if manifest.get("notes"):
        parts += ["## Notes", ""] + [f"- {n}" for n in manifest["notes"]] + [""]
    for fig in manifest.get("figures", []):
        parts += [f"## {fig['title']} ({fig['id']})", "", fig["caption"], ""]
        rows = figure_numbers[figure_numbers["figure"] == fig["id"]].drop(columns="figure")
        parts += [html.markdown_table(dose_response if fig["id"] == "fig8_dose_response" else rows), ""]
    for title, note, df in report_tables(significance, plateau, invalid_counts, costs, mix_summary,
                                         language_distribution, training_metrics, p, judge_noise):
        parts += [f"## {title}", ""] + ([note, ""] if note else []) + [html.markdown_table(df), ""]
    return "\n".join(parts)


def statistics_text(p: ReportingParams) -> str:
    """The report's one-paragraph statement of how intervals and tests were computed."""
    interval = figures.interval_text("ci", p.ci_level, p.n_boot, p.ci_unit)
    return (f"Intervals: {interval}, seed {p.seed}. Comparisons pair two mixes on the prompt (its mean over seeds) "
            f"and use a two-sided sign-flip permutation test: exact (all 2^n sign vectors, p-value floor 2/2^n) up "
            f"to {p.exact_max_n} prompts, else {p.test_resamples} random sign vectors (floor "
            f"{1 / (p.test_resamples + 1):.1e}). One family per model, task and metric (every mix pair x language "
            f"x prompt setting), corrected with {_CORRECTION[p.correction]}; significant: adjusted p < {p.alpha}. "
            f"mde: the smallest difference a comparison detects with power 0.8 at uncorrected alpha {p.alpha}.")


_CORRECTION = {"holm": "Holm (family-wise error)", "bh": "Benjamini-Hochberg (false discovery rate)"}


def report_tables(significance: pd.DataFrame, plateau: pd.DataFrame, invalid_counts: pd.DataFrame, costs: pd.DataFrame,
                  mix_summary: pd.DataFrame, language_distribution: pd.DataFrame, training_metrics: pd.DataFrame,
                  p: ReportingParams, judge_noise: pd.DataFrame | None = None) -> list[tuple[str, str, pd.DataFrame]]:
    """(title, note, frame) of every table after the figures; the comparisons split per task."""
    deltas = ", ".join(f"{k} {v}" for k, v in p.plateau.delta.items())
    out = [("How many finetuning languages are enough (plateau)",
            f"For each target language and resource group: the smallest i such that Multi-i is not worse than every "
            f"larger mix and the full mix by more than delta ({deltas}), with a one-sided {1 - p.alpha:.0%} bound "
            "over prompts (non-inferiority). 'undecided': the intervals are too wide to tell; 'at most i': i is "
            "enough but a smaller mix is undecided.", plateau)]
    tasks = list(pd.unique(significance["task"])) if len(significance) else []
    for task in tasks or [None]:
        sub = significance if task is None else significance[significance["task"] == task]
        out.append((f"Paired comparisons{'' if task is None else f': {task}'} (diff = mix_b - mix_a)",
                    statistics_text(p), sub))
    return out + [
        judge_noise_section(judge_noise),
        ("Invalid judgments / scores per mix and language", "", invalid_counts),
        ("Cost ledger (API usage)", "", costs),
        ("Data-mix summary", "", mix_summary),
        ("Language distribution", "", language_distribution),
        ("Training metrics", "", training_metrics),
    ]


#: From the report (data/08_reporting/report.html/<version>/report.html) to data/08_reporting/.
REPORTING_ROOT = "../.."


def figure_downloads(fig_id: str, run_info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Relative links to a figure's PNG and SVG (same save version as the report) and its numbers (CSV)."""
    links = []
    version = run_info.get("save_version")
    if version:
        links += [("PNG", f"{REPORTING_ROOT}/figures/{version}/{fig_id}.png"),
                  ("SVG", f"{REPORTING_ROOT}/figures_svg/{version}/{fig_id}.svg")]
    return links + [("CSV", f"{REPORTING_ROOT}/bundle/figures/{fig_id}.csv")]


def render_report(manifest: dict[str, Any], significance: pd.DataFrame, plateau: pd.DataFrame,
                  dose_response: pd.DataFrame, invalid_counts: pd.DataFrame, costs: pd.DataFrame,
                  mix_summary: pd.DataFrame, language_distribution: pd.DataFrame, training_metrics: pd.DataFrame,
                  scores: pd.DataFrame, mixes: dict[str, Any], model: str, params: dict[str, Any],
                  run_info: Mapping[str, Any], judge_noise: pd.DataFrame | None = None,
                  models: Mapping[str, Any] | None = None) -> str:
    """The self-contained HTML report (figures embedded as base64 PNG), the answer first.

    Args:
        manifest: the figure manifest from :func:`~.draw.draw_figures`.
        significance, plateau, invalid_counts, costs, mix_summary, language_distribution,
            training_metrics: the tables, as in :func:`render_tables_markdown`.
        dose_response: :func:`~.plateau.dose_response` (the summary's Mono / best Multi-i numbers).
        scores: the combined tidy scores (models, judges, seeds, engines).
        mixes: ``params:mixes``.
        model: ``params:model``.
        params: ``params:reporting``.
        run_info: the run's provenance (``git_commit``, ``git_dirty``, ``env``,
            ``params_sha256``, ``kedro_version``, ``python``...), put into the
            catalog by the start-up hook; missing keys read "not recorded".
        judge_noise: :func:`~.judge_noise.judge_noise_table` (None / empty: not measured).
        models: ``params:models`` (the registry): each reported model's ``notes``
            are shown, e.g. that a random-weight model's numbers are noise.

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
        ("Model notes", _model_notes(models, scores, model)),
        ("Mixes", "; ".join(f"{n} ({_describe_mix(s)})" for n, s in specs.items())),
        ("Mixes with scores", uniq("mix")),
        ("Data sources", sources),
        ("Judge", uniq("judge", scores["task"] == "chat") if "task" in scores.columns else "not recorded"),
        ("Seeds", ", ".join(str(s) for s in sorted(pd.unique(scores["seed"]))) if len(scores) else "none"),
        ("Engine", engine),
        ("Git commit", _describe_commit(run_info)),
        ("Run", _describe_run(run_info)),
        ("Statistics", statistics_text(p)),
    ]
    lines = summary_lines(dose_response, plateau, model, p.headline_metrics, p.xquad_metric)
    figs = [{**fig, "downloads": figure_downloads(fig["id"], run_info)} for fig in manifest.get("figures", [])]
    return html.render(
        title="polyglot_kedro: how much multilinguality does instruction tuning need?",
        summary=(summary_intro(lines, p), lines),
        meta=meta, notes=manifest.get("notes", []), figures=figs,
        tables=report_tables(significance, plateau, invalid_counts, costs, mix_summary, language_distribution,
                             training_metrics, p, judge_noise),
        viz_link=p.viz_link, viz_command=p.viz_command,
    )


def _model_notes(models: Mapping[str, Any] | None, scores: pd.DataFrame, model: str) -> str:
    """The registry's notes of ``model`` and of every registry model in the scores (what their numbers mean)."""
    names = {model} | ({str(m) for m in scores["model"].dropna()} if "model" in scores.columns else set())
    notes = [f"{name}: {entry['notes']}" for name, entry in sorted((models or {}).items())
             if name in names and isinstance(entry, Mapping) and entry.get("notes")]
    return "; ".join(notes) or "not recorded"


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
    what = f"multi, {spec.n_languages} languages, {spec.source}" if spec.kind == "multi" else spec.kind
    where = [f"model {spec.model}"] if spec.model else []
    where += [f"rows labelled {spec.label}"] if spec.label else []
    return ", ".join([what, *where])


def _describe_source(value: Any) -> str:
    """A data source for the report header: a path/Hub id, or ``lang: source`` pairs."""
    if isinstance(value, Mapping) and "source" in value:  # one source with overrides
        name = (value.get("load_args") or {}).get("name")
        return f"{value['source']} ({name})" if name else str(value["source"])
    if isinstance(value, Mapping):  # per language
        return ", ".join(f"{lang}: {_describe_source(v)}" for lang, v in value.items())
    return str(value)
