"""The six stages; per-mix stages build one namespace per mix with ``per_mix``."""

from __future__ import annotations

from collections.abc import Iterable

from kedro.pipeline import Pipeline, pipeline

#: The per-namespace parameter that carries a mix's name into its nodes.
MIX_NAME_PARAM = "params:mix_name"


def mix_name_param(mix: str) -> str:
    """The catalog name of ``params:mix_name`` inside the namespace ``mix``: ``params:<mix>.mix_name``."""
    return f"params:{mix}.mix_name"


def mix_name_inputs(mixes: Iterable[str]) -> dict[str, str]:
    """``{params:<mix>.mix_name: <mix>}`` for every mix: what the catalog must hold for ``per_mix`` pipelines.

    The start-up hook (``hooks.MixNameParamsHook``) adds these to the run's
    catalog; tests that run a ``per_mix`` pipeline on an in-memory catalog add
    them the same way.
    """
    return {mix_name_param(mix): mix for mix in mixes}


def per_mix(base: Pipeline, mixes: Iterable[str], shared_inputs: Iterable[str] = ()) -> Pipeline:
    """Instantiate ``base`` once per mix, as the Kedro namespace ``<mix>``.

    Inside ``base``, ``params:mix`` is the mix's spec: it is mapped to
    ``params:mixes.<mix>``. ``params:mix_name`` is the only namespaced
    parameter: it becomes ``params:<mix>.mix_name`` (Kedro's default for an
    unmapped parameter), whose value is the mix's name (see
    :func:`mix_name_inputs`); kedro-viz shows it as the node's input. Every
    other parameter keeps its global name. Datasets in ``shared_inputs`` (e.g.
    ``base_model``) are not prefixed; all other datasets become
    ``<mix>.<name>`` and are matched by the ``"{mix}.<name>"`` dataset
    factories of the catalog.

    Args:
        base: the one-mix pipeline.
        mixes: mix names (``params:mixes`` keys).
        shared_inputs: free inputs common to all mixes.

    Returns:
        The sum of the namespaced copies.
    """
    params = {name for name in base.inputs() if name.startswith("params:") and name != MIX_NAME_PARAM}
    shared = set(shared_inputs)
    missing = shared - base.inputs()
    if missing:
        raise ValueError(f"shared_inputs not free inputs of the base pipeline: {sorted(missing)}")
    out = Pipeline([])
    for mix in mixes:
        mapping = {p: (f"params:mixes.{mix}" if p == "params:mix" else p) for p in params}
        out += pipeline(base, namespace=mix, inputs=shared or None, parameters=mapping)
    return out
