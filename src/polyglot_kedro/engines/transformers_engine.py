"""Batched generation with transformers' ``generate``.

Prompts are sorted by token length (longest first) and cut into batches of
``batch_size``, so each batch pads little; padding is on the left, as
decoder-only batched generation needs (the new tokens follow every prompt
directly). Results come back in input order. Each batch is seeded with
``(seed, batch index)``, so a partition's outputs do not depend on what ran
before it in the process. Prompts that leave less than ``max_new_tokens`` of
``max_model_len`` follow the job's overflow policy (``base.fit_prompt``).
"""

from __future__ import annotations

import logging
import time

import torch
from transformers import LogitsProcessorList, set_seed

from polyglot_kedro.engines.base import Engine, Generation, Job, SamplingSpec, failed_generation, fit_prompt
from polyglot_kedro.engines.frequency_penalty import FrequencyPenaltyLogitsProcessor
from polyglot_kedro.modeling import load_causal_lm, load_tokenizer
from polyglot_kedro.prompting import cut_at_stop

log = logging.getLogger(__name__)


def batch_seed(seed: int, batch_index: int) -> int:
    """The torch seed of one batch: distinct per (seed, batch), stable across runs."""
    return (seed * 100_003 + batch_index) % (2**32)


class TransformersEngine(Engine):
    """transformers engine; the model is loaded once and reused across seeds.

    Args:
        model_path: a transformers model folder.
        batch_size: prompts per ``generate`` call.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``, resolved by
            ``modeling.resolve_dtype`` (the project's one rule: fp32 on CPU).
        max_model_len: prompt + new tokens limit; by default longer prompts are
            cut from the left and marked (their end holds the instruction's
            forced answer prefix), as the paper's inference did
            (``truncate_from_start``).
        device: ``cuda`` when available, else ``cpu`` (default).
    """

    name = "transformers"

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = 8,
        dtype: str = "auto",
        max_model_len: int = 2048,
        device: str | None = None,
    ):
        super().__init__(model_path, batch_size=batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.max_model_len = max_model_len
        # The project's loaders honour the folder manifest's trust_remote_code.
        self.tokenizer = load_tokenizer(self.model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            raise ValueError(f"tokenizer in {self.model_path} has neither a pad nor an eos token")
        self.model = load_causal_lm(self.model_path, dtype=dtype).to(self.device)
        self._eos_ids = self._eos_token_ids()

    def _eos_token_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _generate_job(self, job: Job, seed: int) -> list[Generation]:
        """Generate one completion per prompt of ``job``.

        Args:
            job: prompts (already in the model's template), sampling, overflow policy.
            seed: run seed (combined with the batch index, see module doc).

        Returns:
            One :class:`Generation` per prompt, in input order.
        """
        sampling, bs = job.sampling, job.batch_size or self.batch_size
        fits = [
            fit_prompt(self.tokenizer(p, add_special_tokens=True)["input_ids"], self.max_model_len,
                       sampling.max_new_tokens, job.overflow)
            for p in job.prompts
        ]  # fmt: skip
        out: list[Generation | None] = [failed_generation(f) if f.error else None for f in fits]
        # One max_new_tokens per generate call: items whose budget was reduced run in their own batches.
        budgets = sorted({f.max_new_tokens for f in fits if not f.error}, reverse=True)
        b = 0
        for budget in budgets:
            run = [i for i, f in enumerate(fits) if not f.error and f.max_new_tokens == budget]
            order = sorted(run, key=lambda i: len(fits[i].ids), reverse=True)
            spec = sampling if budget == sampling.max_new_tokens else sampling.model_copy(update={"max_new_tokens": budget})
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                set_seed(batch_seed(seed, b))
                b += 1
                for i, g in zip(idx, self._generate_batch([fits[i].ids for i in idx], spec)):
                    f = fits[i]
                    out[i] = Generation(
                        g.text, g.finish_reason, g.n_output_tokens, g.seconds, len(f.ids), f.truncated,
                        f.max_new_tokens if f.max_new_tokens != sampling.max_new_tokens else None,
                    )
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _generate_batch(self, batch_ids: list[list[int]], sampling: SamplingSpec) -> list[Generation]:
        enc = self.tokenizer.pad({"input_ids": batch_ids}, padding=True, return_tensors="pt").to(self.device)
        prompt_len = enc["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if sampling.frequency_penalty:
            processors.append(FrequencyPenaltyLogitsProcessor(sampling.frequency_penalty, prompt_len))
        gen_kwargs = (
            {"do_sample": False}
            if sampling.greedy
            else {
                "do_sample": True,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "top_k": sampling.top_k,
            }
        )
        t0 = time.perf_counter()
        seqs = self.model.generate(
            **enc,
            max_new_tokens=sampling.max_new_tokens,
            logits_processor=processors,
            stop_strings=list(sampling.stop) or None,
            tokenizer=self.tokenizer,
            pad_token_id=self.tokenizer.pad_token_id,
            **gen_kwargs,
        )
        seconds = (time.perf_counter() - t0) / len(batch_ids)
        return [self._finish(row[prompt_len:].tolist(), sampling, seconds) for row in seqs]

    def _finish(self, new_ids: list[int], sampling: SamplingSpec, seconds: float) -> Generation:
        n, ended = len(new_ids), False
        for j, t in enumerate(new_ids):
            if t in self._eos_ids:
                n, ended = j + 1, True
                break
        if not ended:  # rows that stopped early are followed by padding
            pad = self.tokenizer.pad_token_id
            while n and new_ids[n - 1] == pad:
                n -= 1
        text = self.tokenizer.decode(new_ids[:n], skip_special_tokens=True)
        text, stopped = cut_at_stop(text, sampling.stop)
        reason = "stop" if (ended or stopped) else "length"
        if reason == "length" and n < sampling.max_new_tokens:
            # stopped by a stop string split over tokens that decode differently; still a stop
            reason = "stop"
        return Generation(text=text, finish_reason=reason, n_output_tokens=n, seconds=seconds)

    def close(self) -> None:
        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
