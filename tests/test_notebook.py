"""notebooks/ runs on a finished run, so it cannot rot (executed with nbclient)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_every_notebook_has_no_stored_outputs():
    # Outputs belong to a run, not to git: a stored figure would go stale.
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert paths, f"no notebook in {NOTEBOOKS}"
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code"), path


def test_results_notebook_executes_on_the_default_run(default_run: Path):
    # Jupyter starts kernels beside the notebook: run it from <project>/notebooks.
    (default_run / "notebooks").mkdir(exist_ok=True)
    path = default_run / "notebooks" / "results.ipynb"
    shutil.copy(NOTEBOOKS / "results.ipynb", path)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell

    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    # The redrawn figure comes back as an image.
    figure_cell = next(c for c in code if "draw_language_bars" in c.source)
    assert any("image/png" in o.get("data", {}) for o in figure_cell.outputs)
    # The side-by-side table: one row per language, a response of each model.
    side_cell = next(c for c in code if ".generations" in c.source)
    html = "".join(o.get("data", {}).get("text/html", "") for o in side_cell.outputs)
    assert "output_mono" in html and "output_multi3" in html
    for lang in ("de", "zh", "is"):
        assert f"<th>{lang}</th>" in html, lang
    # Working from the project root: the MLflow store is the project's, none beside the notebook.
    assert not (path.parent / "mlflow.db").exists()
