"""Finetuning: base model preparation, LoRA training per mix (TRL + PEFT), merge."""

from polyglot_kedro.pipelines.finetuning.pipeline import create_model_pipeline, create_pipeline

__all__ = ["create_model_pipeline", "create_pipeline"]
