"""Inference: generations (chat, XQuAD, X-CSQA) and XNLI log-likelihood per mix."""

from polyglot_kedro.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
