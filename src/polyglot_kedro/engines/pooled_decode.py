"""The pooled transformers scheduler's own decode loop (``TransformersEngine(pool_jobs=True)``).

``model.generate`` on a CPU wastes most of the machine on a small decoder
(benchmarks/bench_demo_generation.py measures it): every row of a batch is
padded to the batch's longest prompt in the prefill; rows that finished keep
being computed; the KV cache is concatenated anew at every step (a copy of the
whole cache per layer and token); the grouped-query attention of Llama-style
models is expanded to all heads whenever there is a padding mask; and sampling
sorts and draws over the whole vocabulary although top-k keeps 50 tokens.
This loop does the same computation without those costs:

- **Batches planned by tokens.** Rows are sorted by prompt length (longest
  first) and cut into decode batches of at most ``max_rows`` rows and
  ``max_batch_tokens`` padded tokens (rows x (longest prompt + budget)), so
  long prompts decode in small batches and short ones in large ones.
- **Prefill in length groups.** Within a decode batch the prompts are
  prefilled in groups of similar length (a new group when a prompt is shorter
  than ``PREFILL_RATIO`` of the group's longest, or the group would exceed
  ``prefill_tokens``); each group's keys and values are written, left-padded,
  into one cache buffer reserved for the whole generation
  (:class:`ReservedLayer`: ``update`` writes in place, nothing is
  concatenated).
- **Grouped-query attention kept grouped** (:data:`GQA_ATTENTION`): the same
  ``scaled_dot_product_attention`` with ``enable_gqa``, numerically the same
  result as expanding the heads.
- **Finished rows leave the batch** (EOS or a stop string).
- **Sampling over the top-k tokens.** The OpenAI/vLLM frequency penalty on
  the generated tokens' counts (scattered onto the logits, no vocabulary-wide
  count table), top-k, temperature, top-p within those k (the
  smallest set of most probable tokens whose probability reaches ``top_p``),
  then one draw per row from a ``torch.Generator`` seeded per decode batch:
  the same distribution as transformers' warpers, drawn differently, so a
  sampled output differs from ``generate``'s for the same seed. Greedy
  (temperature 0) takes the arg-max of the penalised logits.

Reproducible: the same prompts, settings and seed give the same batches, the
same generators and so the same outputs run to run.
"""

from __future__ import annotations

import functools
import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from polyglot_kedro.engines.base import SamplingSpec

GQA_ATTENTION = "sdpa_gqa"
PREFILL_RATIO = 0.8  # a prefill group holds prompts of at least 80% of its longest's length


def _sdpa_gqa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers' sdpa attention, with grouped-query attention left to torch (``enable_gqa``).

    transformers expands the key/value heads to all query heads whenever a
    mask is given (its CUDA kernels need that); on CPU torch's kernel takes
    the grouped heads and the mask directly and gives the same numbers.
    """
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    dtype = query.dtype
    if query.device.type == "cpu" and dtype != torch.float32:
        # bf16 linear layers, fp32 attention: torch's bf16 SDPA for CPU is slower than its fp32 one
        query, key, value = query.float(), key.float(), value.float()
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling,
        is_causal=bool(query.shape[2] > 1 and attention_mask is None and causal),
        enable_gqa=key.shape[1] != query.shape[1],
    )  # fmt: skip
    return out.to(dtype).transpose(1, 2).contiguous(), None


@functools.cache
def register_gqa_attention() -> str:
    """Register :data:`GQA_ATTENTION` with transformers (once) and return its name."""
    AttentionInterface.register(GQA_ATTENTION, _sdpa_gqa)
    AttentionMaskInterface.register(GQA_ATTENTION, sdpa_mask)
    return GQA_ATTENTION


class ReservedLayer(DynamicLayer):
    """A cache layer whose buffer holds the whole generation: ``update`` writes in place.

    ``keys``/``values`` are views of the first ``length`` positions of the
    buffer, as transformers' dynamic layer would hold them.
    """

    def __init__(self, batch: int, heads: int, capacity: int, head_dim: int, dtype: torch.dtype, device):
        super().__init__()
        self._k = torch.zeros(batch, heads, capacity, head_dim, dtype=dtype, device=device)
        self._v = torch.zeros_like(self._k)
        self.dtype, self.device, self.is_initialized = dtype, device, True
        self._n = 0
        self._views()

    def _views(self) -> None:
        self.keys, self.values = self._k[:, :, : self._n], self._v[:, :, : self._n]

    def fill(self, rows: slice, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        """Write a prefill group's keys/values, right-aligned at ``length`` (left padding stays zero)."""
        n = keys.shape[-2]
        self._k[rows, :, length - n : length] = keys
        self._v[rows, :, length - n : length] = values
        self._n = length
        self._views()

    def update(self, key_states, value_states, *args, **kwargs):
        end = self._n + key_states.shape[-2]
        if end > self._k.shape[-2]:
            raise RuntimeError(f"reserved KV cache full: {end} > {self._k.shape[-2]} positions")
        self._k[:, :, self._n : end] = key_states
        self._v[:, :, self._n : end] = value_states
        self._n = end
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._n

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._k, self._v = self._k[indices], self._v[indices]
        self._views()


def plan_batches(lengths: list[int], budget: int, max_rows: int, max_batch_tokens: int) -> list[list[int]]:
    """Decode batches over rows already sorted longest first: at most ``max_rows`` rows and
    ``max_batch_tokens`` padded tokens (rows x (longest prompt + budget)); a row too long for the
    token limit alone still gets a batch of its own."""
    batches: list[list[int]] = []
    for i, n in enumerate(lengths):
        cur = batches[-1] if batches else None
        if cur is None or len(cur) >= max_rows or (len(cur) + 1) * (lengths[cur[0]] + budget) > max_batch_tokens:
            batches.append([i])
        else:
            cur.append(i)
    return batches


def prefill_groups(lengths: list[int], prefill_tokens: int) -> list[tuple[int, int]]:
    """``(start, stop)`` row ranges of similar length (rows sorted longest first)."""
    groups, start = [], 0
    for i in range(1, len(lengths) + 1):
        if i == len(lengths) or lengths[i] < PREFILL_RATIO * lengths[start] or (i - start + 1) * lengths[start] > prefill_tokens:
            groups.append((start, i))
            start = i
    return groups


def _penalise(logits: torch.Tensor, generated: torch.Tensor | None, s: SamplingSpec) -> torch.Tensor:
    """Subtract ``frequency_penalty`` once per occurrence of each generated token (in place)."""
    if generated is not None and s.frequency_penalty:
        logits.scatter_add_(1, generated, torch.full(generated.shape, -s.frequency_penalty, dtype=logits.dtype,
                                                     device=logits.device))  # fmt: skip
    return logits


def next_token_probs(
    logits: torch.Tensor, generated: torch.Tensor | None, s: SamplingSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampling distribution: ``(probs, token ids)``, ``[rows, k]`` each, most probable first.

    Frequency penalty, temperature, top-k, then top-p within those k: a token
    is dropped when the more probable ones already reach ``top_p`` (the first
    always stays); ``probs`` is left unnormalised after that cut.

    Args:
        logits: ``[rows, vocab]`` next-token logits (changed in place by the penalty).
        generated: ``[rows, steps]`` the tokens generated so far (None: none yet);
            each occurrence subtracts ``frequency_penalty`` once, so a token's logit drops by
            penalty x its count, as OpenAI and vLLM define it.
    """
    _penalise(logits, generated, s)
    if 0 < s.top_k < logits.shape[-1]:
        vals, idx = torch.topk(logits, s.top_k, dim=-1)  # sorted, most probable first
    else:
        vals, idx = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(vals / s.temperature, dim=-1)
    if s.top_p < 1.0:
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= s.top_p, 0.0)
    return probs, idx


def sample_next(logits: torch.Tensor, generated: torch.Tensor | None, s: SamplingSpec, generator: torch.Generator) -> torch.Tensor:
    """One token per row: the arg-max of the penalised logits (greedy), else one draw from :func:`next_token_probs`."""
    if s.greedy:
        return _penalise(logits, generated, s).argmax(-1)
    probs, idx = next_token_probs(logits, generated, s)
    return idx.gather(1, torch.multinomial(probs, 1, generator=generator)).squeeze(1)


@torch.inference_mode()
def decode_batch(
    model,
    tokenizer,
    batch_ids: list[list[int]],
    sampling: SamplingSpec,
    generator: torch.Generator,
    eos_ids: set[int],
    *,
    prefill_tokens: int = 4096,
) -> list[list[int]]:
    """Generate up to ``sampling.max_new_tokens`` tokens for each prompt (sorted longest first).

    Returns:
        Per row, the new token ids; a row ends at an EOS token (kept) or as
        soon as its text contains a stop string.
    """
    device = model.device
    lengths = [len(x) for x in batch_ids]
    n_rows, width = len(batch_ids), max(lengths)
    budget = sampling.max_new_tokens
    layers: list[ReservedLayer] = []
    mask = torch.zeros(n_rows, width, dtype=torch.long, device=device)
    first_logits = []
    for start, stop in prefill_groups(lengths, prefill_tokens):
        enc = tokenizer.pad({"input_ids": batch_ids[start:stop]}, padding=True, return_tensors="pt").to(device)
        am = enc["attention_mask"]
        group = DynamicCache()
        out = model(input_ids=enc["input_ids"], attention_mask=am, position_ids=(am.cumsum(-1) - 1).clamp(min=0),
                    past_key_values=group, use_cache=True, logits_to_keep=1)  # fmt: skip
        if not layers:
            k = group.layers[0].keys
            # on CPU the cache is fp32 whatever the weights' dtype: attention runs in fp32 (see _sdpa_gqa)
            kv_dtype = torch.float32 if k.device.type == "cpu" else k.dtype
            layers = [ReservedLayer(n_rows, k.shape[1], width + budget, k.shape[-1], kv_dtype, device) for _ in group.layers]
        for layer, g in zip(layers, group.layers, strict=True):
            layer.fill(slice(start, stop), g.keys, g.values, width)
        mask[start:stop, width - am.shape[1] :] = am
        first_logits.append(out.logits[:, -1, :])
        del group, out
    cache = Cache(layers=layers)
    logits = torch.cat(first_logits).float()
    position = torch.tensor(lengths, device=device)  # the next token's position, per row
    alive = list(range(n_rows))
    generated: torch.Tensor | None = None  # [alive rows, steps]: the penalty's counts
    new: list[list[int]] = [[] for _ in range(n_rows)]
    stops = tuple(sampling.stop)
    for step in range(budget):
        tokens = sample_next(logits, generated, sampling, generator)
        keep = []
        for r, t in enumerate(tokens.tolist()):
            row = new[alive[r]]
            row.append(t)
            if t in eos_ids or (stops and any(s in tokenizer.decode(row, skip_special_tokens=True) for s in stops)):
                continue
            keep.append(r)
        if not keep or step == budget - 1:
            break
        if len(keep) < len(alive):
            sel = torch.tensor(keep, device=device)
            cache.batch_select_indices(sel)
            mask, position, tokens, alive = mask[sel], position[sel], tokens[sel], [alive[r] for r in keep]
            generated = generated[sel] if generated is not None else None
        generated = tokens[:, None] if generated is None else torch.cat([generated, tokens[:, None]], dim=1)
        mask = torch.cat([mask, mask.new_ones(len(keep), 1)], dim=1)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=position[:, None],
                    past_key_values=cache, use_cache=True)  # fmt: skip
        position = position + 1
        logits = out.logits[:, -1, :].float()
    return new
