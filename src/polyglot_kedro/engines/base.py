"""The generation-engine interface shared by the transformers and vLLM engines.

An engine turns prompts into :class:`Generation` records for one seed and one
:class:`SamplingSpec`. Both engines follow vLLM's semantics so their rows are
comparable: the frequency penalty is subtracted from the logits before
temperature/top-k/top-p, the text is cut at the first stop string (the stop
string itself is not returned), and ``finish_reason`` is ``stop`` (a stop
string or the end-of-sequence token) or ``length`` (``max_new_tokens`` hit).
The stop rule itself is ``polyglot_kedro.prompting.cut_at_stop``.

Prompts that leave less than ``max_new_tokens`` of the context are handled by
one rule, :func:`fit_prompt`, with an explicit policy: generation cuts them
from the left and marks the row (``prompt_truncated``), a judge or translator
fails the item with the reason, or (if configured) the completion budget is
reduced and the budget used recorded. Nothing is cut silently.

Engines run *jobs* (one partition each: prompts, sampling, batch size) for one
seed through :meth:`Engine.generate_jobs`, which reports every finished item
and every finished job through callbacks, so callers can write a partition or
cache an item as soon as it exists.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

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
    finish_reason: str  # "stop" or "length"; "error" when ``error`` is set (nothing generated)
    n_output_tokens: int
    seconds: float
    n_prompt_tokens: int = 0  # as given to the model (after a cut)
    prompt_truncated: bool = False  # the prompt was cut from the left to fit
    max_new_tokens: int | None = None  # the completion budget it got (None: the sampling's)
    error: str | None = None  # why the item was not generated (overflow policy "fail")


#: What to do with a prompt that leaves less than ``max_new_tokens`` of the context.
Overflow = Literal["truncate_left", "fail", "reduce"]


@dataclass(frozen=True)
class Fit:
    """A prompt fitted to the context by :func:`fit_prompt`."""

    ids: list[int]
    max_new_tokens: int
    truncated: bool
    error: str | None


def fit_prompt(ids: list[int], max_model_len: int, max_new_tokens: int, overflow: Overflow) -> Fit:
    """Fit one tokenised prompt and its completion budget into ``max_model_len``.

    Args:
        ids: the prompt's token ids (special tokens included).
        max_model_len: the context (prompt + new tokens).
        max_new_tokens: the completion budget asked for.
        overflow: ``truncate_left`` keeps the prompt's end (generation: it holds
            the instruction and any forced answer prefix; the paper cut from the
            start too), ``fail`` returns the reason instead, ``reduce`` keeps the
            prompt and gives the completion what is left (at least one token,
            else the item fails).

    Returns:
        The :class:`Fit` (``error`` set when the item cannot run).

    Raises:
        ValueError: ``truncate_left`` with a budget that leaves no room for any prompt.
    """
    n = len(ids)
    room = max_model_len - n
    if room >= max_new_tokens:
        return Fit(list(ids), max_new_tokens, False, None)
    if overflow == "truncate_left":
        keep = max_model_len - max_new_tokens
        if keep < 1:
            raise ValueError(
                f"max_new_tokens {max_new_tokens} leaves no room for the prompt in max_model_len {max_model_len}"
            )
        return Fit(list(ids[-keep:]), max_new_tokens, True, None)
    if overflow == "reduce" and room >= 1:
        return Fit(list(ids), room, False, None)
    return Fit(
        list(ids),
        max_new_tokens,
        False,
        f"prompt of {n} tokens leaves {max(room, 0)} of the {max_new_tokens} completion tokens "
        f"(max_tokens) in the model's context of {max_model_len}",
    )


def failed_generation(fit: Fit) -> Generation:
    """The record of an item that did not run (its reason in ``error``)."""
    return Generation("", "error", 0, 0.0, len(fit.ids), False, fit.max_new_tokens, fit.error)


@dataclass
class Job:
    """One partition's prompts for :meth:`Engine.generate_jobs`.

    ``batch_size`` overrides the engine's; ``name`` labels progress and logs.
    """

    name: str
    prompts: list[str]
    sampling: SamplingSpec
    batch_size: int | None = None
    overflow: Overflow = "truncate_left"
    meta: dict = field(default_factory=dict)


#: ``on_item(job_index, item_index, generation)``: one item finished.
ItemCallback = Callable[[int, int, Generation], None]
#: ``on_job(job_index, generations)``: every item of one job finished (input order).
JobCallback = Callable[[int, list[Generation]], None]


class Engine(ABC):
    """Generates completions from a model folder; ``name`` goes into every row."""

    name: str = "engine"

    def __init__(self, model_path: str, *, batch_size: int = 8):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = str(model_path)
        self.batch_size = batch_size

    def generate(self, prompts: list[str], sampling: SamplingSpec, seed: int, **kwargs) -> list[Generation]:
        """Complete ``prompts`` (results in input order) with ``sampling`` under ``seed``.

        Prompts too long for the context are cut from the left and marked
        (``overflow="fail"`` or ``"reduce"`` instead: see :func:`fit_prompt`).
        """
        overflow = kwargs.pop("overflow", "truncate_left")
        (gens,) = self.generate_jobs([Job("prompts", list(prompts), sampling, overflow=overflow)], seed, **kwargs)
        return gens

    def generate_jobs(
        self,
        jobs: list[Job],
        seed: int,
        *,
        on_item: ItemCallback | None = None,
        on_job: JobCallback | None = None,
    ) -> list[list[Generation]]:
        """Run every job under one seed, reporting each finished item and job.

        The default runs job by job through :meth:`_generate_job` on the loaded
        model; vLLM overrides it to run all jobs in one seeded engine.

        Returns:
            One list of generations per job, in input order.
        """
        out = []
        for j, job in enumerate(jobs):
            gens = self._generate_job(job, seed) if job.prompts else []
            for i, g in enumerate(gens):
                if on_item is not None:
                    on_item(j, i, g)
            if on_job is not None:
                on_job(j, gens)
            out.append(gens)
        return out

    @abstractmethod
    def _generate_job(self, job: Job, seed: int) -> list[Generation]:
        """One job's generations in input order (engines that run job by job)."""

    def close(self) -> None:
        """Release the model and its memory (no-op where nothing is held)."""

