"""Wiring of data_mixing. Not namespaced: the mixes are nested, so they are built jointly."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.pipelines.data_mixing import mixes as native_mixes
from polyglot_kedro.pipelines.data_mixing import mt_mixes, nodes


def create_pipeline(mixes: dict[str, MixSpec] | None = None, **kwargs: Any) -> Pipeline:
    """The data_mixing pipeline for the mix grid ``mixes``.

    Args:
        mixes: mix name -> spec (``MixSpec`` or its dict); ``None`` reads the
            grid from the configuration (``grid.load_mixes``).

    Returns:
        Parsing, LID and the language table; ``build_mixes`` for native mixes,
        ``select_mt_sources``/``build_mt_mixes`` only when a mix has
        ``source: mt``; ``summarise_mixes`` over every ``{mix}.train_mix``.
    """
    if mixes is None:
        from polyglot_kedro.grid import load_mixes

        mixes = load_mixes()
    specs = mix_specs({m: (s.model_dump() if isinstance(s, MixSpec) else s) for m, s in mixes.items()})
    native = [m for m, s in specs.items() if s.kind != "untuned" and s.source == "native"]
    mt = [m for m, s in specs.items() if s.source == "mt"]
    if "base_model" in specs:
        raise ValueError("a mix may not be named 'base_model' (it is an input of summarise_mixes)")

    steps = [
        Node(
            nodes.parse_guanaco_rows,
            inputs=["guanaco_raw", "params:data_mixing"],
            outputs=["guanaco_parsed", "guanaco_rejected"],
            name="parse_guanaco_rows",
        ),
        Node(
            nodes.identify_languages,
            inputs=["guanaco_parsed", "params:data_mixing"],
            outputs="guanaco_lid",
            name="identify_languages",
        ),
        Node(
            nodes.summarise_language_distribution,
            inputs="guanaco_lid",
            outputs="language_distribution",
            name="summarise_language_distribution",
        ),
    ]
    if native:
        steps.append(
            Node(
                native_mixes.build_mixes,
                inputs=["guanaco_lid", "params:data_mixing", "params:mixes"],
                outputs={m: f"{m}.train_mix" for m in native},
                name="build_mixes",
            )
        )
    if mt:
        steps += [
            Node(
                mt_mixes.select_mt_sources,
                inputs=["guanaco_lid", "params:data_mixing", "params:mixes"],
                outputs="mt_source_examples",
                name="select_mt_sources",
            ),
            Node(
                mt_mixes.build_mt_mixes,
                inputs=["guanaco_lid", "guanaco_translations", "params:data_mixing", "params:mixes"],
                outputs={m: f"{m}.train_mix" for m in mt},
                name="build_mt_mixes",
            ),
        ]
    if native or mt:
        steps.append(
            Node(
                nodes.summarise_mixes,
                inputs={"base_model": "base_model", **{m: f"{m}.train_mix" for m in native + mt}},
                outputs="mix_summary",
                name="summarise_mixes",
            )
        )
    return Pipeline(steps)
