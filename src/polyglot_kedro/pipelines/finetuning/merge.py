"""Merge a mix's LoRA adapter into the base weights and check the merged folder's logits."""

from __future__ import annotations

import json
import logging
import shutil
from typing import Any

import torch

from polyglot_kedro import modeling
from polyglot_kedro.config import resolve_model
from polyglot_kedro.pipelines.finetuning.nodes import checkpoint_dir
from polyglot_kedro.pipelines.finetuning.params import FinetuningParams

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- merge


@torch.no_grad()
def _logits(model, tokenizer, prompts: list[str]) -> list[torch.Tensor]:
    device = next(model.parameters()).device
    out = []
    for p in prompts:
        ids = tokenizer(p, return_tensors="pt").to(device)
        out.append(model(**ids).logits[0].float().cpu())
    return out


def merge_adapter(
    adapter: str,
    base_model: str,
    model: str,
    models: dict[str, Any],
    finetuning: dict[str, Any],
    mix_name: str,
) -> str:
    """Merge the adapter into the base weights and verify the merged folder.

    The check runs ``finetuning.merge.check_prompts`` through base+adapter
    (PEFT) and through the merged folder reloaded from disk, and fails when
    the largest absolute logit difference exceeds
    ``finetuning.merge.max_abs_logit_diff``.

    Args:
        adapter: the adapter folder.
        base_model: the prepared base model folder.
        model: ``params:model``.
        models: ``params:models``.
        finetuning: ``params:finetuning``.
        mix_name: ``params:mix_name``, the namespace's mix (names the merged folder).

    Returns:
        A plain transformers folder (weights, tokenizer) for vLLM and
        transformers, saved by ``{mix}.merged_model``.

    Raises:
        ValueError: the merged model's logits differ beyond the tolerance.
    """
    from peft import PeftModel

    params = FinetuningParams.model_validate(finetuning)
    spec = resolve_model(models, model)
    mp = params.merge
    out = checkpoint_dir(params, spec.name, mix_name) / "merged"
    if out.exists():
        shutil.rmtree(out)
    tokenizer = modeling.load_tokenizer(base_model)
    base = modeling.load_causal_lm(base_model, dtype=mp.dtype, device_map=mp.device_map)
    peft_model = PeftModel.from_pretrained(base, adapter).eval()
    reference = _logits(peft_model, tokenizer, mp.check_prompts)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    del merged, peft_model, base
    reloaded = modeling.load_causal_lm(str(out), dtype=mp.dtype, device_map=mp.device_map)
    got = _logits(reloaded, tokenizer, mp.check_prompts)
    diffs = [float((a - b).abs().max()) for a, b in zip(reference, got)]
    check = {"mix": mix_name, "max_abs_logit_diff": max(diffs), "per_prompt": diffs,
             "tolerance": mp.max_abs_logit_diff, "dtype": mp.dtype, "adapter": str(adapter)}
    logger.info("Merge check for mix %s: %s", mix_name, check)
    if max(diffs) > mp.max_abs_logit_diff:
        raise ValueError(
            f"mix {mix_name}: merged model logits differ from base+adapter by {max(diffs):.3g} "
            f"> finetuning.merge.max_abs_logit_diff {mp.max_abs_logit_diff} (per prompt: {diffs})"
        )
    (out / "polyglot_merge_check.json").write_text(json.dumps(check, indent=2))
    return str(out)
