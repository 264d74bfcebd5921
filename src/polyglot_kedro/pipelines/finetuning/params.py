"""The typed ``finetuning:`` parameters and how the effective batch splits over processes."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from polyglot_kedro.config import StrictModel


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


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
