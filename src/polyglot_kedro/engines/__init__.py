"""Generation engines (transformers, vLLM) behind one interface; see ``base``."""

from __future__ import annotations

import logging
from typing import Literal

from polyglot_kedro.engines.base import Engine, Generation, SamplingSpec

log = logging.getLogger(__name__)

EngineKind = Literal["auto", "transformers", "vllm"]

__all__ = [
    "Engine", "EngineKind", "Generation", "SamplingSpec", "make_engine", "resolve_engine_kind",
    "transformers_engine_label", "uses_cpu_bf16",
]  # fmt: skip


def resolve_engine_kind(kind: EngineKind) -> str:
    """``auto`` becomes ``vllm`` when vLLM imports cleanly, else ``transformers`` (logged)."""
    if kind != "auto":
        return kind
    from polyglot_kedro.engines.vllm_engine import vllm_usable

    chosen = "vllm" if vllm_usable() else "transformers"
    log.info("engine: auto -> %s", chosen)
    return chosen


def uses_cpu_bf16(pool_jobs: bool, cpu_dtype: str, device: str | None = None) -> bool:
    """Whether a :class:`TransformersEngine` with these options runs the pooled loop with bf16 parameters on CPU."""
    if not pool_jobs:
        return False
    import torch

    from polyglot_kedro.modeling import resolve_cpu_dtype

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device == "cpu" and resolve_cpu_dtype(cpu_dtype) == torch.bfloat16


def transformers_engine_label(pool_jobs: bool, cpu_bf16: bool = False) -> str:
    """What rows made by a :class:`TransformersEngine` record as their engine.

    The scheduler and, on CPU, bf16 parameters (:func:`uses_cpu_bf16`) change
    sampled outputs, so both are named: ``transformers``,
    ``transformers-pooled``, ``transformers-pooled-bf16``.
    """
    if not pool_jobs:
        return "transformers"
    return "transformers-pooled-bf16" if cpu_bf16 else "transformers-pooled"


def make_engine(
    kind: EngineKind,
    model_path: str,
    *,
    batch_size: int,
    dtype: str = "auto",
    tensor_parallel_size: int = 1,
    max_model_len: int = 2048,
    vllm_options: dict | None = None,
    transformers_options: dict | None = None,
) -> Engine:
    """Build an engine on a model folder.

    Args:
        kind: ``auto``, ``transformers`` or ``vllm``.
        model_path: transformers model folder.
        batch_size: prompts per generate call.
        dtype: model dtype from the registry.
        tensor_parallel_size: vLLM only.
        max_model_len: context limit (prompt + new tokens).
        vllm_options: extra ``VLLMEngine`` keyword arguments (enforce_eager, ...).
        transformers_options: extra ``TransformersEngine`` keyword arguments (pool_jobs, ...).

    Returns:
        The engine (``engine.name`` says which).
    """
    kind = resolve_engine_kind(kind)
    if kind == "transformers":
        from polyglot_kedro.engines.transformers_engine import TransformersEngine

        return TransformersEngine(model_path, batch_size=batch_size, dtype=dtype, max_model_len=max_model_len,
                                  **(transformers_options or {}))  # fmt: skip
    if kind == "vllm":
        from polyglot_kedro.engines.vllm_engine import VLLMEngine

        return VLLMEngine(
            model_path,
            batch_size=batch_size,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            **(vllm_options or {}),
        )
    raise ValueError(f"unknown engine {kind!r}; expected auto, transformers or vllm")
