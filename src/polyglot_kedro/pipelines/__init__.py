"""The six stages; per-mix stages build one namespace per mix with ``per_mix``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping

from kedro.pipeline import Pipeline, pipeline


def per_mix(base: Pipeline, mixes: Iterable[str], shared_inputs: Iterable[str] = ()) -> Pipeline:
    """Instantiate ``base`` once per mix, as the Kedro namespace ``<mix>``.

    Inside ``base``, ``params:mix`` is the mix's spec: it is mapped to
    ``params:mixes.<mix>``. Every other parameter keeps its global name (Kedro
    would otherwise namespace it). Datasets in ``shared_inputs`` (e.g.
    ``base_model``) are not prefixed; all other datasets become ``<mix>.<name>``
    and are matched by the ``"{mix}.<name>"`` dataset factories of the catalog.
    A node function with a keyword-only argument ``mix_name`` (default
    ``None``, which Kedro needs to accept the node) receives the
    mix's name (bound here, so rows and logs can say which mix they belong to).

    Args:
        base: the one-mix pipeline.
        mixes: mix names (``params:mixes`` keys).
        shared_inputs: free inputs common to all mixes.

    Returns:
        The sum of the namespaced copies.
    """
    params = {name for name in base.inputs() if name.startswith("params:")}
    shared = set(shared_inputs)
    missing = shared - base.inputs()
    if missing:
        raise ValueError(f"shared_inputs not free inputs of the base pipeline: {sorted(missing)}")
    out = Pipeline([])
    for mix in mixes:
        mapping: Mapping[str, str] = {p: (f"params:mixes.{mix}" if p == "params:mix" else p) for p in params}
        copy = pipeline(base, namespace=mix, inputs=shared or None, parameters=dict(mapping))
        out += Pipeline([_bind_mix_name(n, mix) for n in copy.nodes])
    return out


def _bind_mix_name(node, mix: str):
    params = inspect.signature(node.func).parameters
    if "mix_name" not in params or params["mix_name"].kind is not inspect.Parameter.KEYWORD_ONLY:
        return node
    bound = functools.update_wrapper(functools.partial(node.func, mix_name=mix), node.func)
    return node._copy(func=bound)
