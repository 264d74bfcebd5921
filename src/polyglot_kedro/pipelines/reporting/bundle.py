"""The results bundle: the run's numbers as plain files plus a manifest that says where they came from.

Saved by the catalog (``report_bundle``: one folder, one file per key) so a
README table or a committed copy (``docs/results/<date>-<env>/``) can be
checked against files, each named in the manifest with its sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .judge_noise import LENGTH_UNIT, OFF_NOTE
from .params import ReportingParams


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def frame_sha256(df: pd.DataFrame) -> str:
    """A content hash of a frame (its CSV text, columns sorted), independent of row order."""
    cols = sorted(map(str, df.columns))
    text = df.astype(str)[cols].sort_values(cols, kind="stable").to_csv(index=False) if len(df) else ",".join(cols)
    return _sha256(text)


def results_bundle(aggregates: pd.DataFrame, significance: pd.DataFrame, plateau: pd.DataFrame,
                   dose_response: pd.DataFrame, figure_numbers: pd.DataFrame, scores: pd.DataFrame,
                   run_info: Mapping[str, Any], params: dict[str, Any],
                   judge_noise: pd.DataFrame | None = None) -> dict[str, str]:
    """The bundle's files: ``aggregates.csv``, ``comparisons.csv``, ``plateau.csv``, ``dose_response.csv``,
    ``judge_noise.csv`` (when measured), ``figures/<figure id>.csv`` (each figure's numbers) and ``manifest.json``.

    Args:
        aggregates, significance, plateau, dose_response: the report's tables.
        figure_numbers: the bars of Figs. 1-7 (one CSV per figure; Fig. 8's are ``dose_response``).
        scores: the combined scores (hashed: the inputs' identity).
        run_info: the run's provenance from the start-up hook (git commit and
            dirty flag, env, parameters' sha256, save and load versions, Kedro
            and Python versions).
        params: ``params:reporting`` (the statistics settings, written out).
        judge_noise: :func:`~.judge_noise.judge_noise_table` (None / empty: the option was off).

    Returns:
        File name -> text, for a ``PartitionedDataset`` of text files.
    """
    p = ReportingParams.model_validate(params)
    files = {
        "aggregates.csv": aggregates.to_csv(index=False),
        "comparisons.csv": significance.to_csv(index=False),
        "plateau.csv": plateau.to_csv(index=False),
        "dose_response.csv": dose_response.to_csv(index=False),
        **{f"figures/{fig}.csv": rows.drop(columns="figure").to_csv(index=False)
           for fig, rows in figure_numbers.groupby("figure", sort=True)},
    }
    if len(dose_response):
        files["figures/fig8_dose_response.csv"] = files["dose_response.csv"]
    measured = judge_noise is not None and len(judge_noise) > 0
    if measured:
        files["judge_noise.csv"] = judge_noise.to_csv(index=False)
    manifest = {
        "run": dict(run_info),
        "inputs": {"scores_sha256": frame_sha256(scores), "score_rows": int(len(scores)),
                   "models": sorted(map(str, pd.unique(scores["model"]))) if len(scores) else [],
                   "mixes": sorted(map(str, pd.unique(scores["mix"]))) if len(scores) else []},
        "statistics": {"ci_unit": p.ci_unit, "ci_level": p.ci_level, "n_boot": p.n_boot, "seed": p.seed,
                       "test": "paired sign-flip permutation on prompt means", "exact_max_n": p.exact_max_n,
                       "test_resamples": p.test_resamples, "p_floor_monte_carlo": 1.0 / (p.test_resamples + 1),
                       "family": "model x task x metric (all mix pairs x languages x prompt settings)",
                       "correction": p.correction, "alpha": p.alpha, "plateau_delta": dict(p.plateau.delta)},
        "judge_noise": ({"file": "judge_noise.csv", "agreement_of": "raw 1-6 verdicts of two judgings",
                         "length": LENGTH_UNIT} if measured else OFF_NOTE),
        "files": {name: {"sha256": _sha256(text), "bytes": len(text.encode("utf-8"))} for name, text in files.items()},
    }
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    return files
