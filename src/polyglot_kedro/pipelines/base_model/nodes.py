"""The node that prepares ``base_model`` (see :func:`polyglot_kedro.modeling.prepare_base_model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from polyglot_kedro import modeling
from polyglot_kedro.config import StrictModel, resolve_model
from polyglot_kedro.contracts import require_columns
from polyglot_kedro.prompting import check_prompt_format


class ModelPreparationParams(StrictModel):
    """The ``model_preparation:`` parameters (``conf/base/parameters_base_model.yml``)."""

    # One subfolder per registry name; a GGUF is converted once, a Hub model linked.
    work_dir: str = "data/06_models/prepared"


def prepare_base_model(
    guanaco_raw: pd.DataFrame,
    chat_prompts_raw: pd.DataFrame,
    model: str,
    models: dict[str, Any],
    model_preparation: dict[str, Any],
) -> str:
    """Build/convert/link the registry entry ``model`` into a folder.

    The tiny model's tokenizer is trained on the raw Guanaco texts and the raw
    chat prompts (the languages the demo trains and evaluates on); other
    entries ignore the corpus.

    Args:
        guanaco_raw: column ``text``.
        chat_prompts_raw: column ``instruction``.
        model: ``params:model``.
        models: ``params:models``.
        model_preparation: ``params:model_preparation`` (``work_dir``).

    Returns:
        The prepared folder, saved by the ``base_model`` dataset.

    Raises:
        ValueError: the entry's ``prompt_format`` is ``chat_template`` but the
            prepared tokenizer has no chat template (the message names the model).
    """
    params = ModelPreparationParams.model_validate(model_preparation)
    spec = resolve_model(models, model)
    require_columns(guanaco_raw, ["text"], "guanaco_raw")
    require_columns(chat_prompts_raw, ["instruction"], "chat_prompts_raw")
    corpus = [*guanaco_raw["text"].dropna().astype(str), *chat_prompts_raw["instruction"].dropna().astype(str)]
    out = Path(params.work_dir) / spec.name
    folder = modeling.prepare_base_model(spec, corpus, out)
    # before any training: a chat_template entry whose tokenizer has none fails here, naming the model
    check_prompt_format(modeling.load_tokenizer(folder), spec.prompt_format, spec.name)
    return str(folder)
