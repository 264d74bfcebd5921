"""Batched generation with transformers' ``generate``.

Prompts are sorted by token length (longest first) and cut into batches of
``batch_size``, so each batch pads little; padding is on the left, as
decoder-only batched generation needs (the new tokens follow every prompt
directly). Results come back in input order. Prompts that leave less than
``max_new_tokens`` of ``max_model_len`` follow the job's overflow policy
(``base.fit_prompt``).

With ``pool_jobs=True`` :meth:`TransformersEngine.generate_jobs` pools
the items of every job of one seed that share sampling settings into one
length-sorted queue and runs them through the engine's own decode loop
(``engines/pooled_decode.py``): decode batches planned by rows
(``batch_size``) and padded tokens (``max_batch_tokens``), prefill in groups
of similar length, a KV cache reserved once per batch, grouped-query
attention kept grouped, finished rows dropped, sampling over the top-k
tokens. benchmarks/bench_demo_generation.py measures it against job-by-job
``generate``. Each decode batch draws from a ``torch.Generator`` seeded with
``(seed, batch index)`` counted over the whole call, so the same jobs, seed
and settings give the same outputs run to run; an item's output does depend
on which other jobs ran in the same call (as with vLLM's scheduling), and on
``pool_jobs``. The price: a job (partition) is done only when its last item
is, and length sorting spreads each job over the whole queue, so partitions
are written near the end of the seed and a kill loses more work than job by
job (tests/faults/test_kill_restart.py expects partitions written one by one).
Rows it writes say ``engine: transformers-pooled``.
On CPU, ``cpu_dtype`` (``bfloat16``, or ``auto``: bf16 where the CPU has bf16
instructions, see ``modeling.cpu_has_native_bf16``) runs the pooled loop with
bf16 parameters: every linear layer (q/k/v/o, MLP, LM head) and the
activations between them are bf16; attention itself runs in fp32 on the
bf16-rounded q/k/v, from an fp32 KV cache (``pooled_decode._sdpa_gqa``:
torch's bf16 attention on CPU is slower than its fp32 one), and the logits
are upcast to fp32 before sampling. Buffers (RoPE's frequencies) stay fp32.
Rows then say ``engine: transformers-pooled-bf16``: bf16 rounding changes
sampled outputs, so the inference node (``engine: transformers``) never
reuses such partitions as fp32 ones, or the reverse.
Off by default (``pool_jobs=False``: jobs one after the other through
``model.generate``, batch indices restarting per job, as before).
"""

from __future__ import annotations

import logging
import time

import torch
from transformers import LogitsProcessorList, set_seed

from polyglot_kedro.engines.base import (
    Engine,
    Fit,
    Generation,
    ItemCallback,
    Job,
    JobCallback,
    SamplingSpec,
    failed_generation,
    fit_prompt,
)
from polyglot_kedro.engines import transformers_engine_label, uses_cpu_bf16
from polyglot_kedro.engines.frequency_penalty import FrequencyPenaltyLogitsProcessor
from polyglot_kedro.engines.pooled_decode import decode_batch, plan_batches, register_gqa_attention
from polyglot_kedro.modeling import cpu_has_native_bf16, load_causal_lm, load_tokenizer
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
            ``modeling.resolve_dtype`` (fp32 on CPU, where ``cpu_dtype`` may
            then cast the pooled loop's parameters to bf16).
        max_model_len: prompt + new tokens limit; by default longer prompts are
            cut from the left and marked (their end holds the instruction's
            forced answer prefix), as the paper's inference did
            (``truncate_from_start``).
        device: ``cuda`` when available, else ``cpu`` (default).
        pool_jobs: pool the items of all jobs of one :meth:`generate_jobs`
            call that share sampling into shared length-sorted batches run by
            the engine's own decode loop (see module doc); False runs job by
            job through ``model.generate``.
        max_batch_tokens: pooled only: at most this many padded tokens
            (rows x (longest prompt + budget)) in one decode batch.
        prefill_tokens: pooled only: at most this many padded tokens in one
            prefill forward.
        cpu_dtype: pooled on CPU only: ``float32``, ``bfloat16`` (bf16
            weights, fp32 attention and KV cache) or ``auto`` (bf16 where
            the CPU has bf16 instructions); ignored on a GPU, where ``dtype``
            rules.

    Raises:
        ValueError: ``cpu_dtype`` other than float32 without ``pool_jobs``
            (``generate`` would run attention in bf16 too).
    """

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = 8,
        dtype: str = "auto",
        max_model_len: int = 2048,
        device: str | None = None,
        pool_jobs: bool = False,
        max_batch_tokens: int = 16384,
        prefill_tokens: int = 4096,
        cpu_dtype: str = "float32",
    ):
        super().__init__(model_path, batch_size=batch_size)
        if cpu_dtype != "float32" and not pool_jobs:
            raise ValueError(f"cpu_dtype {cpu_dtype!r} needs pool_jobs: only the pooled loop keeps attention in fp32")
        self.pool_jobs = pool_jobs
        self.max_batch_tokens = max_batch_tokens
        self.prefill_tokens = prefill_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.max_model_len = max_model_len
        # The project's loaders honour the folder manifest's trust_remote_code.
        self.tokenizer = load_tokenizer(self.model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            raise ValueError(f"tokenizer in {self.model_path} has neither a pad nor an eos token")
        self.model = load_causal_lm(self.model_path, dtype=dtype).to(self.device)
        # resolved once: the weights' cast and the rows' engine label cannot diverge
        self._cpu_bf16 = uses_cpu_bf16(pool_jobs, cpu_dtype, self.device)
        if self._cpu_bf16 and not cpu_has_native_bf16():
            log.warning("cpu_dtype %s: this CPU has no bf16 instructions (modeling.CPU_BF16_FLAGS), so torch "
                        "emulates bf16 matmuls, far slower than fp32; cpu_dtype: auto would run fp32 here", cpu_dtype)
        if self._cpu_bf16:
            # Parameters only: buffers such as RoPE's inv_freq stay fp32 (model.to(bf16) would round the
            # rotary frequencies and so shift every position's angle). _sdpa_gqa keeps attention fp32.
            for param in self.model.parameters():
                param.data = param.data.to(torch.bfloat16)
        log.info("transformers engine: %s, weights %s on %s", self.name, self.model.dtype, self.device)
        self._attention = self.model.config._attn_implementation  # what generate() runs with
        self._eos_ids = self._eos_token_ids()

    @property
    def name(self) -> str:  # type: ignore[override]
        """What rows record as their engine: the scheduler changes outputs, so it is named."""
        return transformers_engine_label(self.pool_jobs, self._cpu_bf16)

    def _eos_token_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _fit(self, prompt: str, sampling: SamplingSpec, overflow) -> Fit:
        ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        return fit_prompt(ids, self.max_model_len, sampling.max_new_tokens, overflow)

    def _generate_job(self, job: Job, seed: int) -> list[Generation]:
        """Generate one completion per prompt of ``job`` (batch indices start at 0).

        Args:
            job: prompts (already in the model's template), sampling, overflow policy.
            seed: run seed (combined with the batch index, see module doc).

        Returns:
            One :class:`Generation` per prompt, in input order.
        """
        (gens,) = self._run_pooled([job], seed)
        return gens

    def generate_jobs(
        self,
        jobs: list[Job],
        seed: int,
        *,
        on_item: ItemCallback | None = None,
        on_job: JobCallback | None = None,
    ) -> list[list[Generation]]:
        """Run every job under one seed; pooled into shared batches unless ``pool_jobs`` is off.

        ``on_item`` is called as each batch finishes (for its items), ``on_job``
        as soon as a job's last item is done (completion order, as with vLLM),
        with that job's generations in input order.

        Returns:
            One list of generations per job, in input order.
        """
        if not self.pool_jobs:
            return super().generate_jobs(jobs, seed, on_item=on_item, on_job=on_job)
        return self._run_pooled(jobs, seed, on_item=on_item, on_job=on_job)

    def _run_pooled(
        self,
        jobs: list[Job],
        seed: int,
        *,
        on_item: ItemCallback | None = None,
        on_job: JobCallback | None = None,
    ) -> list[list[Generation]]:
        out: list[list[Generation | None]] = [[None] * len(job.prompts) for job in jobs]
        left = [len(job.prompts) for job in jobs]

        def done(j: int, i: int, g: Generation) -> None:
            out[j][i] = g
            left[j] -= 1
            if on_item is not None:
                on_item(j, i, g)
            if left[j] == 0 and on_job is not None:
                on_job(j, out[j])  # type: ignore[arg-type]

        # Items that may share a generate call: same sampling (as JSON), batch size and
        # completion budget (one max_new_tokens per call; reduced budgets run apart).
        pools: dict[tuple[str, int, int], list[tuple[int, int, Fit]]] = {}
        specs: dict[str, SamplingSpec] = {}
        for j, job in enumerate(jobs):
            if not job.prompts and on_job is not None:
                on_job(j, [])
            key = job.sampling.to_json()
            specs[key] = job.sampling
            for i, prompt in enumerate(job.prompts):
                fit = self._fit(prompt, job.sampling, job.overflow)
                if fit.error:
                    done(j, i, failed_generation(fit))
                    continue
                pools.setdefault((key, job.batch_size or self.batch_size, fit.max_new_tokens), []).append((j, i, fit))
        b = 0
        # Larger budgets first (as job by job did), else first-seen order: deterministic batch indices.
        for (key, bs, budget), items in sorted(pools.items(), key=lambda kv: -kv[0][2]):
            sampling = specs[key]
            spec = sampling if budget == sampling.max_new_tokens else sampling.model_copy(update={"max_new_tokens": budget})
            # Stable sort: equal lengths keep job/item order, so batches are the same run to run.
            order = sorted(items, key=lambda it: len(it[2].ids), reverse=True)
            if self.pool_jobs:
                rows = plan_batches([len(f.ids) for _, _, f in order], budget, bs, self.max_batch_tokens)
                chunks = [[order[r] for r in batch] for batch in rows]
            else:
                chunks = [order[start : start + bs] for start in range(0, len(order), bs)]
            for chunk in chunks:
                ids = [f.ids for _, _, f in chunk]
                if self.pool_jobs:
                    gens = self._decode_pooled(ids, spec, batch_seed(seed, b))
                else:
                    set_seed(batch_seed(seed, b))
                    gens = self._generate_batch(ids, spec)
                b += 1
                for (j, i, f), g in zip(chunk, gens, strict=True):
                    done(j, i, Generation(
                        g.text, g.finish_reason, g.n_output_tokens, g.seconds, len(f.ids), f.truncated,
                        f.max_new_tokens if f.max_new_tokens != sampling.max_new_tokens else None,
                    ))  # fmt: skip
        return out  # type: ignore[return-value]

    def _decode_pooled(self, batch_ids: list[list[int]], sampling: SamplingSpec, seed: int) -> list[Generation]:
        """One decode batch through the own loop (``pooled_decode``), seeded by its own generator."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.model.set_attn_implementation(register_gqa_attention())
        t0 = time.perf_counter()
        try:
            new = decode_batch(self.model, self.tokenizer, batch_ids, sampling, generator, self._eos_ids,
                               prefill_tokens=self.prefill_tokens)  # fmt: skip
        finally:
            self.model.set_attn_implementation(self._attention)
        seconds = (time.perf_counter() - t0) / len(batch_ids)
        return [self._finish(ids, sampling, seconds) for ids in new]

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
