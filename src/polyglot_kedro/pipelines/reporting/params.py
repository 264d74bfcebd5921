"""``params:reporting``: the one validated view of the reporting parameters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from polyglot_kedro.config import StrictModel

FigureId = Literal[
    "fig1_io_lang_agreement", "fig2_helpfulness", "fig3_xquad", "fig4_xcsqa", "fig5_xnli",
    "fig6_native_vs_mt", "fig7_model_size",
]  # fmt: skip


class ReportingParams(StrictModel):
    """``params:reporting`` (see ``conf/base/parameters_reporting.yml``)."""

    n_boot: int = Field(1000, ge=10)
    ci_level: float = Field(0.95, gt=0, lt=1)
    seed: int = 42
    error_bars: Literal["ci", "sd"] = "ci"
    error_bars_by_figure: dict[FigureId, Literal["ci", "sd"]] = Field(default_factory=dict)
    comparisons: list[tuple[str, str]] | None = None
    alpha: float = Field(0.05, gt=0, lt=1)
    xquad_metric: Literal["xquad_f1", "xquad_em"] = "xquad_f1"
    size_metric: str = "helpfulness"
    sources: dict[str, Any] = Field(default_factory=dict)  # name -> path / Hub id / {lang: ...}
    engine: str = ""
    # The paper's released per-item files (paper_results.py); None: not imported.
    paper_results: list[str | dict[str, Any]] | None = None
    viz_link: str = "../../../../build/index.html"
    viz_command: str = "kedro viz build"

    def bars_for(self, figure_id: str) -> str:
        """Error bar kind (``ci`` or ``sd``) drawn in ``figure_id``."""
        return self.error_bars_by_figure.get(figure_id, self.error_bars)
