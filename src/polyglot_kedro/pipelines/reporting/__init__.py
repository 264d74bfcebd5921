"""Reporting: statistics, the paper's figures, tables and one HTML report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
