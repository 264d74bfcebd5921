"""``params:reporting``: the one validated view of the reporting parameters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from polyglot_kedro.config import StrictModel

FigureId = Literal[
    "fig1_io_lang_agreement", "fig2_helpfulness", "fig3_xquad", "fig4_xcsqa", "fig5_xnli",
    "fig6_native_vs_mt", "fig7_model_size", "fig8_dose_response",
]  # fmt: skip


ErrorBars = Literal["ci", "sd", "paper"]
#: What a confidence interval resamples: prompts with all their seeds (``prompt_cluster``),
#: prompt means (``seed_mean``), or scored rows as if independent (``row``, the old, too narrow way).
CiUnit = Literal["prompt_cluster", "seed_mean", "row"]


class PlateauParams(StrictModel):
    """``reporting.plateau``: the non-inferiority margin per metric (``default`` for the others)."""

    delta: dict[str, float] = Field(default_factory=lambda: {"default": 0.05, "helpfulness": 0.25})

    def delta_for(self, metric: str) -> float:
        """The margin of ``metric`` in its own units."""
        if metric in self.delta:
            return self.delta[metric]
        if "default" not in self.delta:
            raise ValueError(f"reporting.plateau.delta has no margin for metric {metric!r} and no 'default'")
        return self.delta["default"]


class ReportingParams(StrictModel):
    """``params:reporting`` (see ``conf/base/parameters_reporting.yml``)."""

    n_boot: int = Field(1000, ge=10)
    ci_level: float = Field(0.95, gt=0, lt=1)
    ci_unit: CiUnit = "prompt_cluster"
    seed: int = 42
    error_bars: ErrorBars = "ci"
    error_bars_by_figure: dict[FigureId, ErrorBars] = Field(default_factory=dict)
    comparisons: list[tuple[str, str]] | None = None
    alpha: float = Field(0.05, gt=0, lt=0.5)
    # Paired test: exact sign-flip enumeration up to exact_max_n prompts, else
    # test_resamples random sign vectors (p-value floor 1 / (test_resamples + 1)).
    exact_max_n: int = Field(30, ge=1, le=40)
    test_resamples: int = Field(100_000, ge=100)
    # Multiple-comparison correction over one family = every test of one model, task and metric.
    correction: Literal["holm", "bh"] = "holm"
    plateau: PlateauParams = Field(default_factory=PlateauParams)
    xquad_metric: Literal["xquad_f1", "xquad_em", "xquad_match"] = "xquad_f1"
    # The metrics of the answer-first summary at the top of the report, in order.
    headline_metrics: list[str] = Field(default_factory=lambda: ["helpfulness", "io_lang_agreement"])
    size_metric: str = "helpfulness"
    sources: dict[str, Any] = Field(default_factory=dict)  # name -> path / Hub id / {lang: ...}
    engine: str = ""
    # The paper's released per-item files (paper_results.py); None: not imported.
    paper_results: list[str | dict[str, Any]] | None = None
    viz_link: str = "../../../../build/index.html"
    viz_command: str = "kedro viz build"

    def bars_for(self, figure_id: str) -> str:
        """Error bar kind (``ci``, ``sd`` or ``paper``) drawn in ``figure_id``."""
        return self.error_bars_by_figure.get(figure_id, self.error_bars)
