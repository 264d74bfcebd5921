"""Judging: LLM-as-judge helpfulness, IO language agreement, XQuAD / X-CSQA / XNLI scores."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
