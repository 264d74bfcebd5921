"""Drawing primitives: bar charts in the paper's layout (``matplotlib.figure.Figure`` objects).

Figures are built as ``Figure`` objects, never through pyplot, so no global
figure state is left behind and no backend is chosen at import time.

Each bar patch carries ``gid = "<series>|<language>"`` so tests (and anyone
post-processing the SVG/figure) can find a bar; a bar is hatched (``//``)
where the language was in that mix's finetuning data.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

_COLORS = matplotlib.colormaps["tab10"]
HATCH = "//"
METRIC_LABELS = {
    "io_lang_agreement": "IO language agreement",
    "helpfulness": "Helpfulness (1-6)",
    "xquad_f1": "XQuAD F1",
    "xquad_em": "XQuAD exact match",
    "xquad_match": "XQuAD match (0/1, the paper's)",
    "tgt_lang": "Response in the target language",
    "lcb_line_pass": "LCB line-level pass rate",
    "lcb_word_pass": "LCB word-level pass rate",
    "xcsqa_acc": "X-CSQA accuracy",
    "xnli_acc": "XNLI accuracy",
}
# The metric's whole range on the axis (never autoscaled): an all-zero accuracy
# must not get an axis from -0.04 to 0.04, and a judge that gives 1 everywhere
# must not look like a full bar.
METRIC_YLIM = {
    "io_lang_agreement": (0.0, 1.0), "helpfulness": (1.0, 6.0), "xquad_f1": (0.0, 1.0), "xquad_em": (0.0, 1.0),
    "xcsqa_acc": (0.0, 1.0), "xnli_acc": (0.0, 1.0), "xquad_match": (0.0, 1.0),
    "tgt_lang": (0.0, 1.0), "lcb_line_pass": (0.0, 1.0), "lcb_word_pass": (0.0, 1.0),
}  # fmt: skip
#: Every figure has this width (inches) and font scale, so the report shows them at one scale.
FIG_WIDTH = 10.0
PANEL_HEIGHT = 3.0
DPI = 110
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 8}


def _styled(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a drawing function under the one font scale (fonts are read when an artist is made)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def _figure(rows: int, cols: int = 1):
    """A figure of the common width, ``rows`` panels high, with its axes grid (constrained layout)."""
    fig = Figure(figsize=(FIG_WIDTH, PANEL_HEIGHT * rows + 0.7), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def set_metric_ylim(ax, metric: str) -> None:
    """Fix the y-axis to the metric's range (metrics without one keep matplotlib's)."""
    if metric in METRIC_YLIM:
        ax.set_ylim(*METRIC_YLIM[metric])


@dataclass(frozen=True)
class LanguageFigure:
    """One per-language figure: a task/metric, optionally one panel per prompt setting."""

    id: str
    label: str
    title: str
    task: str
    metric: str
    prompt_settings: tuple[str, ...] = ()


def figure_specs(xquad_metric: str = "xquad_f1") -> list[LanguageFigure]:
    """Figures 1-5 (per language, one bar per mix)."""
    return [
        LanguageFigure("fig1_io_lang_agreement", "Fig. 1", "IO language agreement of chat responses", "chat", "io_lang_agreement"),
        LanguageFigure("fig2_helpfulness", "Fig. 2", "Chat helpfulness (LLM judge)", "chat", "helpfulness"),
        LanguageFigure("fig3_xquad", "Fig. 3", "XQuAD", "xquad", xquad_metric, ("en:xx", "xx:xx")),
        LanguageFigure("fig4_xcsqa", "Fig. 4", "X-CSQA", "xcsqa", "xcsqa_acc"),
        LanguageFigure("fig5_xnli", "Fig. 5", "XNLI", "xnli", "xnli_acc"),
    ]


def ordered_languages(groups: Mapping[str, Sequence[str]], present: Iterable[str]) -> list[str]:
    """Languages in the paper's group order (high, mid, low), then any others present, sorted.

    Languages of the groups that are not present are skipped; present ones
    outside the groups are kept (appended), never dropped.
    """
    present = {str(x) for x in present}
    ordered: list[str] = []
    for name in ("high", "mid", "low"):
        ordered += [lang for lang in groups.get(name, []) if lang in present and lang not in ordered]
    for name, langs in groups.items():
        ordered += [lang for lang in langs if lang in present and lang not in ordered]
    return ordered + sorted(present - set(ordered))


_CI_UNITS = {
    "prompt_cluster": "resampling prompts with all their seeds",
    "seed_mean": "resampling prompt means (seeds averaged within each prompt)",
    "row": "resampling item x seed rows as if independent (too narrow when seeds of a prompt agree)",
}


def interval_text(bars: str, level: float, n_boot: int, ci_unit: str = "prompt_cluster") -> str:
    """What an error bar of kind ``bars`` is, in words."""
    pct = int(round(level * 100))
    if bars == "ci":
        return f"{pct}% bootstrap confidence interval of the mean ({n_boot} resamples, {_CI_UNITS[ci_unit]}; percentile method)"
    if bars == "paper":
        return (f"the paper's bar: seaborn's {pct}% bootstrap interval over the per-seed means ({n_boot} resamples; "
                "with 3 seeds it shows seed disagreement, not uncertainty over prompts)")
    return "+/- 1 standard deviation of the item x seed scores (not a confidence interval)"


def caption(bars: str, level: float, n_boot: int, *, hatched: bool, extra: str = "",
            ci_unit: str = "prompt_cluster") -> str:
    """Caption text stating which error bar is drawn (and what hatching means)."""
    err = f"Error bars: {interval_text(bars, level, n_boot, ci_unit)}."
    hatch = " Hatched bars: the language was in the mix's finetuning data." if hatched else ""
    return f"{err}{hatch} {extra}".strip()


def _yerr(row: pd.Series, bars: str) -> list[list[float]]:
    if bars in ("ci", "paper"):
        lo, hi = ("ci_low", "ci_high") if bars == "ci" else ("seed_ci_low", "seed_ci_high")
        low, high = row["mean"] - row[lo], row[hi] - row["mean"]
    else:
        low = high = row["sd"]
    # A nested list, not an array: matplotlib turns a (2, 1) array into a
    # deprecated array-to-scalar conversion.
    return [[0.0 if pd.isna(low) else float(max(low, 0.0))], [0.0 if pd.isna(high) else float(max(high, 0.0))]]


def _bars(ax, table: pd.DataFrame, categories: Sequence[str], series: Sequence[str], series_col: str,
          cat_col: str, hatched: Mapping[str, set[str]] | None, bars: str) -> None:
    width = 0.8 / max(len(series), 1)
    lookup = {(r[series_col], r[cat_col]): r for _, r in table.iterrows()}
    for i, s in enumerate(series):
        for j, cat in enumerate(categories):
            row = lookup.get((s, cat))
            if row is None:
                continue
            is_hatched = bool(hatched) and cat in hatched.get(s, set())
            container = ax.bar([j - 0.4 + width * (i + 0.5)], [row["mean"]], width, color=_COLORS(i % 10),
                               edgecolor="black", linewidth=0.5, hatch=HATCH if is_hatched else None,
                               yerr=_yerr(row, bars), capsize=2, error_kw={"linewidth": 0.8})
            container.patches[0].set_gid(f"{s}|{cat}")
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories)
    ax.grid(axis="y", alpha=0.3)


def _legend(fig: Figure, series: Sequence[str], hatch_note: bool) -> None:
    handles = [Patch(facecolor=_COLORS(i % 10), edgecolor="black", label=s) for i, s in enumerate(series)]
    if hatch_note:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=HATCH, label="in finetuning data"))
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 8), frameon=False)


def _group_labels(ax, langs: Sequence[str], groups: Mapping[str, Sequence[str]]) -> None:
    """Separators between resource groups and each group's name under its languages (as in the paper)."""
    of = {lang: name for name, members in groups.items() for lang in members}
    spans: list[list] = []
    for j, lang in enumerate(langs):
        name = of.get(lang, "other")
        if spans and spans[-1][0] == name:
            spans[-1][2] = j
        else:
            spans.append([name, j, j])
    if len(spans) < 2 and spans and spans[0][0] == "other":
        return
    for k, (name, first, last) in enumerate(spans):
        if k:
            ax.axvline(first - 0.5, color="0.5", linewidth=0.8, linestyle="--")
        ax.text((first + last) / 2, -0.14, f"{name}-resource" if name in ("high", "mid", "low") else name,
                transform=ax.get_xaxis_transform(), ha="center", va="top", color="0.3", gid=f"group|{name}")


@_styled
def draw_language_bars(sub: pd.DataFrame, spec: LanguageFigure, languages: Sequence[str], mixes: Sequence[str],
                       hatched: Mapping[str, set[str]], bars: str,
                       groups: Mapping[str, Sequence[str]] | None = None) -> Figure:
    """Grouped bars per language (one bar per mix), one panel per prompt setting.

    Args:
        sub: aggregate rows of one model, task and metric.
        spec: the figure.
        languages: x order.
        mixes: bar order.
        hatched: mix -> finetuning languages.
        bars: ``ci``, ``sd`` or ``paper``.
        groups: resource group -> languages (labels and separators under the axis).

    Returns:
        The figure.
    """
    panels = [ps for ps in spec.prompt_settings if ps in set(sub["prompt_setting"])] or [None]
    langs = [lang for lang in languages if lang in set(sub["lang"])]
    fig, axes = _figure(len(panels))
    for ax, ps in zip(axes[:, 0], panels):
        table = sub if ps is None else sub[sub["prompt_setting"] == ps]
        _bars(ax, table, langs, mixes, "mix", "lang", hatched, bars)
        ax.set_ylabel(METRIC_LABELS.get(spec.metric, spec.metric))
        set_metric_ylim(ax, spec.metric)
        ax.set_title(spec.title if ps is None else f"{spec.title} ({ps})")
        if groups:
            _group_labels(ax, langs, groups)
    _legend(fig, mixes, hatch_note=True)
    return fig


@_styled
def draw_native_vs_mt(sub: pd.DataFrame, pairs: Sequence[tuple[str, str]], languages: Sequence[str],
                      hatched: Mapping[str, set[str]], bars: str) -> Figure:
    """Fig. 6: per language, a native multi-i mix next to its mt twin; one row per chat metric."""
    metrics = [m for m in ("helpfulness", "io_lang_agreement") if m in set(sub["metric"])]
    fig, axes = _figure(len(metrics), len(pairs))
    for r, metric in enumerate(metrics):
        for c, (a, b) in enumerate(pairs):
            table = sub[(sub["metric"] == metric) & sub["mix"].isin([a, b])]
            langs = [lang for lang in languages if lang in set(table["lang"])]
            _bars(axes[r, c], table, langs, [a, b], "mix", "lang", hatched, bars)
            axes[r, c].set_ylabel(METRIC_LABELS.get(metric, metric))
            set_metric_ylim(axes[r, c], metric)
            axes[r, c].set_title(f"{a} (native) vs {b} (MT)")
    _legend(fig, [m for pair in pairs for m in pair], hatch_note=True)
    return fig


@_styled
def draw_model_sizes(pooled: pd.DataFrame, mixes: Sequence[str], models: Sequence[str], metric: str,
                     bars: str) -> Figure:
    """Fig. 7: per mix, one bar per model (metric pooled over languages)."""
    fig, axes = _figure(1)
    ax = axes[0, 0]
    _bars(ax, pooled, mixes, models, "model", "mix", None, bars)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    set_metric_ylim(ax, metric)
    ax.set_title("Model size comparison")
    _legend(fig, models, hatch_note=False)
    return fig


@_styled
def draw_dose_response(numbers: pd.DataFrame, panels: Sequence[tuple[str, str, str]], groups: Sequence[str]) -> Figure:
    """Fig. 8: the metric against the number of finetuning languages, one line per language group.

    A full mix (no language count) is drawn as a last point labelled with its
    name, apart from the line. Each point carries ``gid = "<group>|<mix>"``.

    Args:
        numbers: :func:`~.plateau.dose_response` rows of one model.
        panels: (task, prompt_setting, metric) per panel, in order.
        groups: line order (language groups).

    Returns:
        The figure.
    """
    fig, grid = _figure((len(panels) + 1) // 2, min(len(panels), 2))
    axes = grid.ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (task, setting, metric) in zip(axes, panels):
        sub = numbers[(numbers["task"] == task) & (numbers["prompt_setting"] == setting) & (numbers["metric"] == metric)]
        ladder = sorted(int(x) for x in sub["n_languages"].dropna().unique())
        fulls = sorted(sub.loc[sub["n_languages"].isna(), "mix"].unique())
        xpos = {lvl: i for i, lvl in enumerate(ladder)}
        for g, group in enumerate(groups):
            rows = sub[sub["group"] == group]
            if rows.empty:
                continue
            color = _COLORS(g % 10)
            line = rows[rows["n_languages"].notna()].sort_values("n_languages")
            x = [xpos[int(v)] for v in line["n_languages"]]
            ax.plot(x, line["mean"], marker="o", color=color, label=group, gid=f"{group}|line")
            ax.fill_between(x, line["ci_low"], line["ci_high"], color=color, alpha=0.15, linewidth=0)
            for (_, r), xi in zip(line.iterrows(), x):
                ax.errorbar([xi], [r["mean"]], yerr=_yerr(r, "ci"), color=color, capsize=2, linewidth=0.8,
                            gid=f"{group}|{r['mix']}")
            for j, mix in enumerate(fulls):
                r = rows[rows["mix"] == mix]
                if len(r):
                    ax.errorbar([len(ladder) + j], [r["mean"].iloc[0]], yerr=_yerr(r.iloc[0], "ci"), color=color,
                                marker="s", capsize=2, linewidth=0.8, gid=f"{group}|{mix}")
        ax.set_xticks(range(len(ladder) + len(fulls)))
        ax.set_xticklabels([str(v) for v in ladder] + list(fulls))
        ax.set_xlabel("finetuning languages")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.set_title(f"{task} {setting}: {METRIC_LABELS.get(metric, metric)}")
        ax.grid(alpha=0.3)
        set_metric_ylim(ax, metric)
    handles = [Patch(facecolor=_COLORS(g % 10), label=f"{group}-resource languages") for g, group in enumerate(groups)]
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), frameon=False)
    return fig


def to_base64_png(fig: Figure, dpi: int = DPI) -> str:
    """The figure as a base64-encoded PNG (for embedding in HTML), uncropped so every figure has one width."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")
