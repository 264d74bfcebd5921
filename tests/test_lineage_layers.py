"""kedro-viz lineage reads top to bottom: no node writes into an earlier layer than it reads (issue 22)."""

from __future__ import annotations

from pathlib import Path

from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

REPO = Path(__file__).resolve().parents[1]
ORDER = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"]


def _layer(catalog, name: str) -> str | None:
    config = catalog.config_resolver.resolve_pattern(name) or {}
    return ((config.get("metadata") or {}).get("kedro-viz") or {}).get("layer")


def test_every_dataset_has_a_layer_and_nodes_never_write_upwards():
    bootstrap_project(REPO)
    with KedroSession.create(project_path=REPO) as session:
        catalog = session.load_context().catalog
        names = {d for n in pipelines["__default__"].nodes for d in (*n.inputs, *n.outputs)}
        layers = {d: _layer(catalog, d) for d in names if not d.startswith("params:") and d != "run_info"}
        unlayered = sorted(d for d, layer in layers.items() if layer not in ORDER)
        assert not unlayered, f"datasets without a kedro-viz layer: {unlayered}"
        upwards = sorted(
            (n.name, i, layers[i], o, layers[o])
            for n in pipelines["__default__"].nodes
            for i in n.inputs if i in layers
            for o in n.outputs
            if ORDER.index(layers[i]) > ORDER.index(layers[o])
        )
        assert not upwards, f"nodes writing into an earlier layer than they read: {upwards}"
