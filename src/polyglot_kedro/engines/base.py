"""The generation-engine interface shared by the transformers and vLLM engines.

An engine turns prompts into :class:`Generation` records for one seed and one
:class:`SamplingSpec`. Both engines follow vLLM's semantics so their rows are
comparable: the frequency penalty is subtracted from the logits before
temperature/top-k/top-p, the text is cut at the first stop string (the stop
string itself is not returned), and ``finish_reason`` is ``stop`` (a stop
string or the end-of-sequence token) or ``length`` (``max_new_tokens`` hit).
The stop rule itself is ``polyglot_kedro.prompting.cut_at_stop``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

from pydantic import Field

from polyglot_kedro.config import StrictModel
from polyglot_kedro.prompting import STOP_STRINGS


class SamplingSpec(StrictModel):
    """Sampling settings of one task (OpenAI/vLLM names and meanings).

    ``temperature`` 0 means greedy decoding (used by tests). The paper samples
    constrained tasks at 0.001, which vLLM accepts as is; with transformers,
    ``do_sample`` at temperature 0.001 divides the logits by 0.001, so the
    arg-max token gets essentially all the probability mass: effectively greedy.
    """

    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=0)  # 0: no top-k cut
    frequency_penalty: float = Field(0.2, ge=-2.0, le=2.0)
    max_new_tokens: int = Field(1024, ge=1)
    stop: tuple[str, ...] = STOP_STRINGS

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), written into every output row."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Generation:
    """One completion.

    ``seconds`` is the wall time of the batch that produced it divided by the
    batch's size (engines batch, so per-item time is an amortised share).
    """

    text: str
    finish_reason: str  # "stop" or "length"
    n_output_tokens: int
    seconds: float


class Engine(ABC):
    """Generates completions from a model folder; ``name`` goes into every row."""

    name: str = "engine"

    def __init__(self, model_path: str, *, batch_size: int = 8):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = str(model_path)
        self.batch_size = batch_size

    @abstractmethod
    def generate(self, prompts: list[str], sampling: SamplingSpec, seed: int) -> list[Generation]:
        """Complete ``prompts`` (results in input order) with ``sampling`` under ``seed``."""

    def close(self) -> None:
        """Release the model and its memory (no-op where nothing is held)."""

