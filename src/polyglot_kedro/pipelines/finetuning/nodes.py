"""Finetuning nodes: LoRA-tune the base model on one mix with TRL (merging is in :mod:`.merge`).

Training is TRL's ``SFTTrainer`` with a PEFT ``LoraConfig``; every knob is a
field of :class:`FinetuningParams` (``conf/base/parameters_finetuning.yml``,
paper values in ``conf/paper/``). The same ``train_lora`` function runs
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

from polyglot_kedro import modeling, tracking
from polyglot_kedro.config import ModelSpec, resolve_model
from polyglot_kedro.pipelines.finetuning.params import (
    FinetuningParams,
    gradient_accumulation_steps,
    is_main_process,
    world_size,
)
from polyglot_kedro.prompting import (
    ASSISTANT,
    GuanacoParseError,
    check_prompt_format,
    format_guanaco,
    parse_guanaco,
    turns_to_messages,
)

logger = logging.getLogger(__name__)

RUN_FINGERPRINT = "polyglot_run.json"


# --------------------------------------------------------------------------- data


def training_rows(
    train_mix: pd.DataFrame,
    loss_on: Literal["all", "assistant"],
    text_format: Literal["rendered", "raw_guanaco"] = "rendered",
    prompt_format: Literal["guanaco", "chat_template"] = "guanaco",
) -> list[dict[str, Any]]:
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

    ``prompt_format: chat_template`` (the model's registry entry) gives the
    same turns as conversational rows, which TRL renders with the tokenizer's
    own chat template -- the template inference prompts with:
    ``{"messages": [...]}`` (``all``) or ``{"prompt": [...], "completion":
    [last assistant message]}`` (``assistant``; the prompt gets the
    template's generation prompt and is masked).

    Args:
        train_mix: columns ``id``, ``text`` (Guanaco format).
        loss_on: ``all`` or ``assistant``.
        text_format: ``rendered`` or ``raw_guanaco``.
        prompt_format: ``guanaco`` or ``chat_template`` (needs ``rendered``).

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
    if prompt_format == "chat_template" and text_format != "rendered":
        raise ValueError("prompt_format chat_template re-renders the turns; it needs finetuning.text_format 'rendered'")
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
            rows.append({"messages": turns_to_messages(turns)} if prompt_format == "chat_template"
                        else {"text": format_guanaco(turns)})  # fmt: skip
        else:
            if turns[-1].role == "human":
                turns = turns[:-1]
            if prompt_format == "chat_template":
                messages = turns_to_messages(turns)
                rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
            else:
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
    if out.exists() and is_main_process():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        (out / RUN_FINGERPRINT).write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    return False


def build_trainer(
    train_mix: pd.DataFrame,
    base_model: str,
    spec: ModelSpec,
    params: FinetuningParams,
    output_dir: str | os.PathLike,
    callbacks: Sequence[Any] = (),
    run_name: str | None = None,
):
    """Build (not run) the ``SFTTrainer`` for one mix.

    Args:
        train_mix: the mix's rows (``id``, ``text``).
        base_model: prepared base model folder.
        spec: registry entry (target modules, dtype, device_map).
        params: finetuning parameters.
        output_dir: checkpoint root.
        callbacks: extra ``TrainerCallback`` objects.
        run_name: the trainer's run name (the mix: names its nested MLflow run).

    Returns:
        ``(trainer, resolved)``: the trainer and a JSON-able dict of every
        resolved argument.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    rows = training_rows(train_mix, params.loss_on, params.text_format, spec.prompt_format)
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
        # MLflow curves come through tracking.trainer_callbacks() (a nested run
        # that leaves the kedro run's own run open), not transformers' callback.
        report_to="none",
        run_name=run_name,
        max_length=params.max_length,
        packing=params.packing,
        dataset_text_field="text",
        completion_only_loss=params.loss_on == "assistant",
        assistant_only_loss=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=params.dataloader_num_workers,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False if ws > 1 else None,
        # transformers' own progress bar on a terminal; in a non-TTY log (CI, SLURM) its
        # PrinterCallback logs the loss every logging_steps instead of redrawing a bar.
        disable_tqdm=not sys.stderr.isatty(),
    )
    device_map = params.device_map or spec.device_map
    # Under data parallelism each process holds a whole copy; device_map would split it.
    weights = spec.dtype if params.precision.weights == "registry" else params.precision.weights
    model = modeling.load_causal_lm(base_model, dtype=weights, device_map=device_map if ws == 1 else None)
    tokenizer = modeling.load_tokenizer(base_model)
    if spec.prompt_format == "chat_template":  # the model's own template, as inference uses it
        check_prompt_format(tokenizer, spec.prompt_format, spec.name)
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
        callbacks: extra ``TrainerCallback`` objects (tests, the accelerate script).

    Returns:
        The adapter folder (saved by the ``{mix}.adapter`` dataset) and the
        training metrics: ``loss_curve`` [{step, loss}], ``tokens_seen``,
        ``tokens_per_second``, ``wall_seconds``, ``peak_rss_mib``
        (``peak_cuda_allocated_mib`` on GPU), ``config`` (every resolved
        argument), ``model``, ``revision``/``resolved_revision``, ``mix``, ``rows``.
    """
    from transformers import set_seed

    params = FinetuningParams.model_validate(finetuning)
    spec = resolve_model(models, model)
    set_seed(params.seed)  # first: the LoRA init and the data order depend on it
    out = checkpoint_dir(params, spec.name, mix_name)
    if spec.prompt_format == "chat_template" and not params.train_eos:
        raise ValueError(f"model {spec.name!r}: prompt_format chat_template needs finetuning.train_eos: true "
                         "(the template's end-of-turn token is how the model learns to stop; train_eos: false "
                         "reproduces the paper's Guanaco training)")  # fmt: skip
    rows = training_rows(train_mix, params.loss_on, params.text_format, spec.prompt_format)
    resume = _prepare_checkpoint_dir(out, _run_fingerprint(spec, params, rows), params.resume)
    trainer, resolved = build_trainer(train_mix, base_model, spec, params, out,
                                      [*callbacks, *tracking.trainer_callbacks()], run_name=mix_name)
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
    if is_main_process():
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
