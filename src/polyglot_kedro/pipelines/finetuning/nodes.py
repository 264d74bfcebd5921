"""Finetuning nodes: LoRA-tune the base model per mix with TRL, merge.

Training is TRL's ``SFTTrainer`` with a PEFT ``LoraConfig``; every knob is a
field of :class:`FinetuningParams` (``conf/base/parameters_finetuning.yml``,
paper values in ``conf/paper/``). The same ``train_adapter`` function runs
under Kedro (one process) and under ``accelerate launch`` through
``scripts/train_accelerate.py`` (data parallel, one copy per process).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from pydantic import Field, model_validator

from polyglot_kedro import modeling
from polyglot_kedro.config import ModelSpec, StrictModel, resolve_model
from polyglot_kedro.prompting import ASSISTANT, GuanacoParseError, format_guanaco, parse_guanaco

logger = logging.getLogger(__name__)

RUN_FINGERPRINT = "polyglot_run.json"


# --------------------------------------------------------------------------- parameters


class LoraParams(StrictModel):
    """PEFT ``LoraConfig`` fields."""

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    # None: the registry entry's lora_target_modules. "all-linear" excludes lm_head.
    target_modules: list[str] | Literal["all-linear"] | None = None
    bias: Literal["none", "all", "lora_only"] = "none"


class MergeParams(StrictModel):
    """Merging the adapter into the base weights, and the logits check."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    device_map: str | None = None
    max_abs_logit_diff: float = Field(1e-3, gt=0)
    check_prompts: list[str] = Field(
        default_factory=lambda: [
            "### Human: What is the capital of France?### Assistant:",
            "### Human: Schreibe ein kurzes Gedicht über den Herbst.### Assistant:",
            "### Human: ¿Cómo se prepara un café?### Assistant: Primero,",
        ],
        min_length=1,
    )


class PrecisionParams(StrictModel):
    """Training precision: the dtype the base weights are loaded in, and autocast.

    ``weights``: ``registry`` (the registry entry's ``dtype``, which is also
    what inference loads) or a dtype; on CPU every dtype loads as fp32
    (``modeling.resolve_dtype``). ``autocast``: mixed precision of the
    forward/backward pass (TrainingArguments ``bf16`` / ``fp16``); ``auto``
    is bf16 on a GPU that supports it, else none. ``fp16`` uses a gradient
    scaler and needs CUDA. The paper's released code trained fp32 weights
    with fp16 autocast (``sft_training.py``: ``torch_dtype=float32``,
    ``fp16=True``).
    """

    weights: Literal["registry", "float32", "bfloat16", "float16"] = "registry"
    autocast: Literal["auto", "none", "bf16", "fp16"] = "auto"


class FinetuningParams(StrictModel):
    """The ``finetuning:`` parameters (see ``conf/base/parameters_finetuning.yml``).

    ``text_format``: ``rendered`` re-renders the parsed turns
    (``### Human: X### Assistant: Y``); ``raw_guanaco`` trains on each row's
    ``text`` exactly as the dataset has it (the released code). ``train_eos``:
    true lets TRL append an EOS to every row and train it; false trains no EOS
    (the released code padded with EOS and masked it out of the labels).
    """

    lora: LoraParams = LoraParams()
    loss_on: Literal["all", "assistant"] = "all"
    text_format: Literal["rendered", "raw_guanaco"] = "rendered"
    train_eos: bool = True
    precision: PrecisionParams = PrecisionParams()
    learning_rate: float = Field(1e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_steps: int = Field(20, ge=1)
    max_length: int = Field(256, ge=8)
    effective_batch_size: int = Field(4, ge=1)
    per_device_batch_size: int = Field(2, ge=1)
    packing: bool = False
    gradient_checkpointing: bool = False
    # auto: paged_adamw_32bit on CUDA when bitsandbytes is importable, else adamw_torch.
    optim: str = "auto"
    seed: int = 42
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(10, ge=1)
    save_total_limit: int | None = Field(2, ge=1)
    # Checkpoint root; {model} and {mix} are filled in.
    work_dir: str = "data/06_models/checkpoints/{model}/{mix}"
    resume: bool = True
    device_map: str | None = None  # None: the registry entry's device_map
    dataloader_num_workers: int = Field(0, ge=0)
    merge: MergeParams = MergeParams()

    @model_validator(mode="after")
    def _batch(self) -> "FinetuningParams":
        if self.effective_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"effective_batch_size {self.effective_batch_size} is not a multiple of "
                f"per_device_batch_size {self.per_device_batch_size}"
            )
        # Both are the released code's loss on whole texts; masking the prompt
        # needs the parsed turns and a trained end of the reply.
        if self.loss_on == "assistant" and self.text_format == "raw_guanaco":
            raise ValueError("text_format: raw_guanaco trains on the whole text; it needs loss_on: all")
        if self.loss_on == "assistant" and not self.train_eos:
            raise ValueError("train_eos: false is the released code's whole-text loss; it needs loss_on: all")
        return self


def gradient_accumulation_steps(effective_batch_size: int, per_device_batch_size: int, world_size: int) -> int:
    """Derive gradient accumulation from the effective batch.

    ``effective = per_device * accumulation * world_size``.

    Raises:
        ValueError: the effective batch cannot be split that way; the message
            names the three numbers.
    """
    per_step = per_device_batch_size * world_size
    if effective_batch_size < per_step or effective_batch_size % per_step:
        raise ValueError(
            f"effective_batch_size {effective_batch_size} cannot be split into per_device_batch_size "
            f"{per_device_batch_size} x world_size {world_size} x an integer gradient accumulation"
        )
    return effective_batch_size // per_step


def world_size() -> int:
    """Number of data-parallel processes (``WORLD_SIZE``, set by accelerate/torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# --------------------------------------------------------------------------- data


def training_rows(
    train_mix: pd.DataFrame,
    loss_on: Literal["all", "assistant"],
    text_format: Literal["rendered", "raw_guanaco"] = "rendered",
) -> list[dict[str, str]]:
    """Turn ``train_mix`` rows into TRL dataset rows in the paper's template.

    ``raw_guanaco`` (the released code): ``{"text": text}`` with the row's
    ``text`` exactly as in the dataset (its `` ### Assistant:`` spacing kept,
    nothing added), loss on every token; needs ``loss_on: all``.
    ``rendered`` re-renders the parsed turns:
    ``all``: ``{"text": conversation}``, loss on every token.
    ``assistant``: ``{"prompt", "completion"}``, so TRL masks the prompt. The
    completion is the *last* assistant reply; the prompt is everything before
    it, ending in ``### Assistant:``. Earlier assistant turns of a multi-turn
    conversation are therefore context, not targets. A conversation ending in
    an unanswered human turn (kept by data mixing, as in real Guanaco) is
    trained on whole with ``all``; with ``assistant`` that last turn is dropped.

    Args:
        train_mix: columns ``id``, ``text`` (Guanaco format).
        loss_on: ``all`` or ``assistant``.
        text_format: ``rendered`` or ``raw_guanaco``.

    Returns:
        One dict per row, in order.

    Raises:
        ValueError: missing column, an empty or non-text row (raw), a row that
            does not parse (rendered; its id and reason), or ``raw_guanaco``
            with ``loss_on: assistant``.
    """
    missing = {"id", "text"} - set(train_mix.columns)
    if missing:
        raise ValueError(f"train_mix lacks column(s) {sorted(missing)}; has {list(train_mix.columns)}")
    if train_mix.empty:
        raise ValueError("train_mix is empty: nothing to train on")
    if text_format == "raw_guanaco":
        if loss_on != "all":
            raise ValueError("text_format raw_guanaco trains on the whole text; it needs loss_on 'all'")
        for row_id, text in zip(train_mix["id"], train_mix["text"]):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"train_mix row id={row_id!r}: text is empty or not a string ({text!r})")
        return [{"text": text} for text in train_mix["text"]]
    rows = []
    for row_id, text in zip(train_mix["id"], train_mix["text"]):
        try:
            turns = parse_guanaco(text, allow_trailing_human=True)
        except GuanacoParseError as exc:
            raise ValueError(f"train_mix row id={row_id!r}: not a Guanaco conversation ({exc.reason})") from exc
        if loss_on == "all":
            rows.append({"text": format_guanaco(turns)})
        else:
            if turns[-1].role == "human":
                turns = turns[:-1]
            rows.append({"prompt": format_guanaco(turns[:-1]) + ASSISTANT, "completion": " " + turns[-1].content})
    return rows


# --------------------------------------------------------------------------- trainer


def _resolve_optim(optim: str) -> str:
    if optim != "auto":
        return optim
    if torch.cuda.is_available() and importlib_available("bitsandbytes"):
        return "paged_adamw_32bit"
    return "adamw_torch"


def importlib_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def resolve_autocast(autocast: Literal["auto", "none", "bf16", "fp16"]) -> dict[str, bool]:
    """TrainingArguments ``bf16``/``fp16`` flags for ``finetuning.precision.autocast``.

    Raises:
        ValueError: ``bf16`` without a bf16-capable GPU, or ``fp16`` without CUDA.
    """
    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if autocast == "auto":
        return {"bf16": bf16_ok, "fp16": False}
    if autocast == "bf16" and not bf16_ok:
        raise ValueError("finetuning.precision.autocast is bf16 but no bf16-capable GPU is visible; use auto or none")
    if autocast == "fp16" and not cuda:
        raise ValueError("finetuning.precision.autocast is fp16 (mixed precision with a gradient scaler), "
                         "which needs a CUDA GPU; use auto or none here")  # fmt: skip
    return {"bf16": autocast == "bf16", "fp16": autocast == "fp16"}


def tokenize_without_eos(rows: list[dict[str, str]], tokenizer, max_length: int) -> list[dict[str, list[int]]]:
    """Pre-tokenized rows with no EOS learnt, as the released code trained.

    Each text is tokenized as the tokenizer does by default (Llama: BOS first,
    no EOS), truncated to ``max_length``; every EOS id gets label -100, as
    the released collator did with pad = EOS. TRL leaves pre-tokenized rows
    alone, so it appends no EOS.

    Raises:
        ValueError: the tokenizer has no EOS token.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("train_eos: false masks the EOS token, but the tokenizer has none")
    out = []
    for row in rows:
        ids = tokenizer(row["text"], truncation=True, max_length=max_length)["input_ids"]
        out.append({"input_ids": ids, "labels": [-100 if t == eos else t for t in ids]})
    return out


def checkpoint_dir(params: FinetuningParams, model_name: str, mix_name: str | None) -> Path:
    """The checkpoint root of one (model, mix) run."""
    return Path(params.work_dir.format(model=model_name, mix=mix_name or "default"))


def _run_fingerprint(spec: ModelSpec, params: FinetuningParams, rows: list[dict]) -> dict[str, Any]:
    # What must match for a checkpoint to be resumable: the whole training
    # configuration and the data. Only save/logging cadence may change.
    data = hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()
    config = params.model_dump(mode="json", exclude={"resume", "work_dir", "logging_steps", "save_steps",
                                                      "save_total_limit", "merge",
                                                      "dataloader_num_workers"})  # fmt: skip
    return {"model": spec.name, "config": config, "data_sha256": data}


def _prepare_checkpoint_dir(out: Path, fingerprint: dict, resume: bool) -> bool:
    """Create/clean the checkpoint root; return whether to resume from it."""
    checkpoints = sorted(out.glob("checkpoint-*")) if out.is_dir() else []
    if checkpoints and resume:
        stored = json.loads((out / RUN_FINGERPRINT).read_text()) if (out / RUN_FINGERPRINT).is_file() else None
        if stored != fingerprint:
            raise ValueError(
                f"checkpoints in {out} come from a different run (model, LoRA or data differ: "
                f"stored {stored}, now {fingerprint}); delete the folder or set finetuning.resume: false"
            )
        logger.info("Resuming from the last of %s", [c.name for c in checkpoints])
        return True
    if out.exists() and _is_main_process():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if _is_main_process():
        (out / RUN_FINGERPRINT).write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    return False


def build_trainer(
    train_mix: pd.DataFrame,
    base_model: str,
    spec: ModelSpec,
    params: FinetuningParams,
    output_dir: str | os.PathLike,
    callbacks: Sequence[Any] = (),
):
    """Build (not run) the ``SFTTrainer`` for one mix.

    Args:
        train_mix: the mix's rows (``id``, ``text``).
        base_model: prepared base model folder.
        spec: registry entry (target modules, dtype, device_map).
        params: finetuning parameters.
        output_dir: checkpoint root.
        callbacks: extra ``TrainerCallback`` objects.

    Returns:
        ``(trainer, resolved)``: the trainer and a JSON-able dict of every
        resolved argument.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    rows = training_rows(train_mix, params.loss_on, params.text_format)
    ws = world_size()
    accumulation = gradient_accumulation_steps(params.effective_batch_size, params.per_device_batch_size, ws)
    autocast = resolve_autocast(params.precision.autocast)
    target_modules = params.lora.target_modules or spec.lora_target_modules
    lora = LoraConfig(
        r=params.lora.r,
        lora_alpha=params.lora.alpha,
        lora_dropout=params.lora.dropout,
        target_modules=target_modules,
        bias=params.lora.bias,
        task_type="CAUSAL_LM",
    )
    sft = SFTConfig(
        output_dir=str(output_dir),
        seed=params.seed,
        data_seed=params.seed,
        max_steps=params.max_steps,
        learning_rate=params.learning_rate,
        lr_scheduler_type=params.lr_scheduler,
        warmup_steps=params.warmup_ratio,  # transformers 5: a float < 1 is a ratio of max_steps
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        per_device_train_batch_size=params.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        gradient_checkpointing=params.gradient_checkpointing,
        optim=_resolve_optim(params.optim),
        **autocast,
        logging_steps=params.logging_steps,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=params.save_total_limit,
        report_to="none",
        max_length=params.max_length,
        packing=params.packing,
        dataset_text_field="text",
        completion_only_loss=params.loss_on == "assistant",
        assistant_only_loss=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=params.dataloader_num_workers,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False if ws > 1 else None,
        disable_tqdm=True,
    )
    device_map = params.device_map or spec.device_map
    # Under data parallelism each process holds a whole copy; device_map would split it.
    weights = spec.dtype if params.precision.weights == "registry" else params.precision.weights
    model = modeling.load_causal_lm(base_model, dtype=weights, device_map=device_map if ws == 1 else None)
    tokenizer = modeling.load_tokenizer(base_model)
    dataset_rows = rows if params.train_eos else tokenize_without_eos(rows, tokenizer, params.max_length)
    trainer = SFTTrainer(
        model=model,
        args=sft,
        train_dataset=Dataset.from_list(dataset_rows),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=list(callbacks),
    )
    resolved = {
        "model": spec.name,
        "world_size": ws,
        # What the trainer's accelerator actually set up (2 under DDP, 1 otherwise).
        "trainer_world_size": trainer.args.world_size,
        "parallel_mode": str(trainer.args.parallel_mode),
        "gradient_accumulation_steps": accumulation,
        "device_map": device_map,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "autocast": autocast,
        "text_format": params.text_format,
        "train_eos": params.train_eos,
        "lora": {"r": lora.r, "alpha": lora.lora_alpha, "dropout": lora.lora_dropout,
                 "target_modules": sorted(lora.target_modules) if isinstance(lora.target_modules, set)
                 else lora.target_modules, "bias": lora.bias},
        "sft": {k: v for k, v in sft.to_dict().items() if _jsonable(v)},
        "params": params.model_dump(),
    }
    return trainer, resolved


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return False
    return True


def _peak_memory() -> dict[str, float]:
    # ru_maxrss is KiB on Linux: the process-wide peak, loading included.
    mem = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if sys.platform == "darwin":
        mem["peak_rss_mib"] /= 1024
    if torch.cuda.is_available():
        mem["peak_cuda_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return mem


def train_lora(
    train_mix: pd.DataFrame,
    base_model: str,
    model: str,
    models: dict[str, Any],
    finetuning: dict[str, Any],
    mix_name: str | None = None,
    *,
    callbacks: Sequence[Any] = (),
) -> tuple[str, dict[str, Any]]:
    """Train one mix's LoRA adapter; resumable. See :func:`train_adapter`.

    ``callbacks`` are extra ``TrainerCallback`` objects (tests, the accelerate script).
    """
    from transformers import set_seed

    params = FinetuningParams.model_validate(finetuning)
    spec = resolve_model(models, model)
    set_seed(params.seed)  # first: the LoRA init and the data order depend on it
    out = checkpoint_dir(params, spec.name, mix_name)
    rows = training_rows(train_mix, params.loss_on, params.text_format)
    resume = _prepare_checkpoint_dir(out, _run_fingerprint(spec, params, rows), params.resume)
    trainer, resolved = build_trainer(train_mix, base_model, spec, params, out, callbacks)
    logger.info("Finetuning %s on mix %s (%d rows); resolved arguments:\n%s",
                spec.name, mix_name, len(rows), json.dumps(resolved, indent=2, sort_keys=True, default=str))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start_tokens = 0
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    wall = time.perf_counter() - t0
    state = trainer.state
    # After a resume the trainer restores the counter from the checkpoint.
    start_tokens = int(getattr(trainer, "_initial_num_input_tokens_seen", 0) or 0)
    tokens = int(state.num_input_tokens_seen)
    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))  # only the main process writes
    if _is_main_process():
        trainer.processing_class.save_pretrained(str(adapter_dir))
    manifest = modeling.read_manifest(base_model)
    metrics = {
        "model": spec.name,
        "model_source": spec.source,
        "hub_id": spec.hub_id,
        "revision": spec.revision,
        "resolved_revision": manifest.get("resolved_sha"),
        "mix": mix_name,
        "rows": len(rows),
        "loss_on": params.loss_on,
        "loss_curve": [{"step": int(e["step"]), "loss": float(e["loss"])} for e in state.log_history if "loss" in e],
        "train_loss": float(result.training_loss),
        "global_step": int(state.global_step),
        "resumed_from_checkpoint": resume,
        "tokens_seen": tokens,
        "tokens_this_session": tokens - start_tokens,
        "wall_seconds": wall,
        "tokens_per_second": (tokens - start_tokens) / wall if wall > 0 else None,
        **_peak_memory(),
        "config": resolved,
    }
    return str(adapter_dir), metrics


def train_adapter(
    train_mix: pd.DataFrame,
    base_model: str,
    model: str,
    models: dict[str, Any],
    finetuning: dict[str, Any],
    mix_name: str,
) -> tuple[str, dict[str, Any]]:
    """LoRA-tune the base model on one mix with TRL's ``SFTTrainer``.

    Resumes from the last ``checkpoint-*`` in the mix's checkpoint folder when
    ``finetuning.resume`` is true and the checkpoints belong to the same
    model, LoRA shape and data.

    Args:
        train_mix: ``{mix}.train_mix`` (``id``, ``text``, ...).
        base_model: the prepared base model folder.
        model: ``params:model`` (registry name).
        models: ``params:models`` (the registry).
        finetuning: ``params:finetuning``.
        mix_name: ``params:mix_name``, the namespace's mix (names the checkpoint folder).

    Returns:
        The adapter folder (saved by the ``{mix}.adapter`` dataset) and the
        training metrics: ``loss_curve`` [{step, loss}], ``tokens_seen``,
        ``tokens_per_second``, ``wall_seconds``, ``peak_rss_mib``
        (``peak_cuda_allocated_mib`` on GPU), ``config`` (every resolved
        argument), ``model``, ``revision``/``resolved_revision``, ``mix``, ``rows``.
    """
    return train_lora(train_mix, base_model, model, models, finetuning, mix_name)


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
