"""data_mixing: language-identified Guanaco and the Mono / Multi-i / MT training mixes."""

from polyglot_kedro.pipelines.data_mixing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
