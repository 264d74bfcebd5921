"""The six stages; per-mix stages build one namespace per mix with ``per_mix``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kedro.pipeline import Pipeline, pipeline

#: The per-namespace parameter that carries a mix's name into its nodes.
MIX_NAME_PARAM = "params:mix_name"
#: Tag of the nodes that prepare a base model: their namespace (a registry key) is a model's, not a mix's.
BASE_MODEL_TAG = "base_model"


def mix_name_param(mix: str) -> str:
    """The catalog name of ``params:mix_name`` inside the namespace ``mix``: ``params:<mix>.mix_name``."""
    return f"params:{mix}.mix_name"


def mix_name_inputs(mixes: Iterable[str] | Mapping[str, Any]) -> dict[str, str]:
    """``{params:<mix>.mix_name: <label>}`` for every mix: what the catalog must hold for ``per_mix`` pipelines.

    The value is the ``mix`` the namespace writes into its result rows: the
    spec's ``label`` where ``mixes`` maps names to specs (``MixSpec`` or its
    dict) that have one, else the mix's name. The start-up hook
    (``hooks.MixNameParamsHook``) adds these to the run's catalog; tests that
    run a ``per_mix`` pipeline on an in-memory catalog add them the same way.
    """
    specs = mixes if isinstance(mixes, Mapping) else dict.fromkeys(mixes)
    out = {}
    for mix, spec in specs.items():
        label = spec.get("label") if isinstance(spec, Mapping) else getattr(spec, "label", None)
        out[mix_name_param(mix)] = label or mix
    return out


def model_name_param(model: str) -> str:
    """The catalog name of ``params:model`` inside the base-model namespace ``model``: ``params:<model>.model``."""
    return f"params:{model}.model"


def model_name_inputs(models: Iterable[str]) -> dict[str, str]:
    """``{params:<model>.model: <model>}``: the registry key each namespaced base-model node prepares."""
    return {model_name_param(m): m for m in models}


def mix_namespaces(pipe: Pipeline) -> list[str]:
    """The mixes of ``pipe``: top-level namespaces of its nodes, less the base-model namespaces, sorted."""
    return sorted({n.namespace.split(".", 1)[0] for n in pipe.nodes if n.namespace and BASE_MODEL_TAG not in n.tags})


def on_mix_models(stage: Pipeline, mixes: Mapping[str, Any], inputs: Iterable[str] = ("base_model",)) -> Pipeline:
    """Point the namespaces of mixes that name a model (``MixSpec.model``) at that model.

    In such a mix's namespace ``params:model`` becomes ``params:mixes.<mix>.model``
    (the YAML value, visible in kedro-viz) and each dataset of ``inputs``
    becomes ``<model>.<input>`` (the model's own base model). Other nodes are
    unchanged. Only stages whose base model is the mix's model use this;
    judging's ``base_model`` is the judge, the same for every mix.

    Args:
        stage: a stage built with :func:`per_mix`.
        mixes: mix name -> ``MixSpec``.
        inputs: the shared inputs that follow the mix's model.

    Returns:
        The stage with those namespaces re-wired.
    """
    inputs = list(inputs)
    moved = {m: spec.model for m, spec in mixes.items() if getattr(spec, "model", None)}
    out = Pipeline([n for n in stage.nodes if (n.namespace or "").split(".", 1)[0] not in moved])
    present = mix_namespaces(stage)
    for mix, model in moved.items():
        if mix not in present:  # e.g. an untuned mix has no finetuning namespace
            continue
        sub = stage.only_nodes_with_namespaces([mix])
        free = sub.inputs()
        out += pipeline(sub, inputs={i: f"{model}.{i}" for i in inputs if i in free},
                        parameters={"params:model": f"params:mixes.{mix}.model"} if "params:model" in free else None)
    return out


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
