"""The base model: one folder built, converted or downloaded from the registry entry ``params:model``.

Not a stage of its own: every stage that reads ``base_model`` includes this
small pipeline, so it runs alone from a fresh clone and is reused when unchanged.
"""

from polyglot_kedro.pipelines.base_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
