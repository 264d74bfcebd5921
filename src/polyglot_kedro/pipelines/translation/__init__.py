"""Translation of evaluation prompts and (for MT mixes) Guanaco training examples."""

from polyglot_kedro.pipelines.translation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
