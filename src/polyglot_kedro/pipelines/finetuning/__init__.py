"""Finetuning: LoRA training per mix (TRL + PEFT), merge and logit check."""

from polyglot_kedro.pipelines.finetuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
