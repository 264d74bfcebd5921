"""Typed parameter objects shared by several stages.

Each node builds its parameter object first thing (``X.model_validate(params)``)
so that a typo in YAML fails at start-up with the field's name, not an hour
into a run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """Base for parameter objects: unknown keys are errors.

    Errors name the field, never its value (``hide_input_in_errors``): a key
    pasted under a wrong name must not reach the log.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class TinyModelConfig(StrictModel):
    """Architecture of the locally built Llama-style test model."""

    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 1024
    vocab_size: int = 2048
    tokenizer_min_frequency: int = 2
    seed: int = 0

    @model_validator(mode="after")
    def _head_dim(self) -> "TinyModelConfig":
        # vLLM's CPU attention backend rejects head_dim < 32.
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        if self.hidden_size // self.num_attention_heads < 32:
            raise ValueError("head_dim (hidden_size / num_attention_heads) must be >= 32 for vLLM's CPU backend")
        return self


class ModelSpec(StrictModel):
    """One entry of the model registry (``conf/base/parameters_models.yml``)."""

    name: str
    source: Literal["hub", "local", "tiny", "gguf_wheel"]
    hub_id: str | None = None
    revision: str | None = None
    local_path: str | None = None
    gguf_package: str | None = None
    gguf_file: str | None = None
    tiny: TinyModelConfig | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    lora_target_modules: list[str] | Literal["all-linear"] = "all-linear"
    tensor_parallel_size: int = Field(1, ge=1)
    device_map: str | None = None
    trust_remote_code: bool = False
    # guanaco: the paper's "### Human: ...### Assistant:" (default); chat_template:
    # the tokenizer's own template, for inference and training (prompting.PROMPT_FORMATS).
    prompt_format: Literal["guanaco", "chat_template"] = "guanaco"
    max_model_len: int = Field(2048, ge=64)
    notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _renamed_prompt_template(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt_template" in data:
            raise ValueError(f"model {data.get('name')!r}: prompt_template is now prompt_format "
                             "(guanaco or chat_template)")  # fmt: skip
        return data

    @model_validator(mode="after")
    def _source_fields(self) -> "ModelSpec":
        need = {"hub": "hub_id", "local": "local_path", "gguf_wheel": "gguf_file", "tiny": "tiny"}[self.source]
        if getattr(self, need) in (None, ""):
            raise ValueError(f"model {self.name!r}: source {self.source!r} needs field {need!r}")
        if self.source == "tiny" and self.prompt_format == "chat_template":
            raise ValueError(f"model {self.name!r}: prompt_format chat_template, but a tiny model's tokenizer "
                             "has no chat template; use prompt_format: guanaco")  # fmt: skip
        return self


class UnknownModelError(KeyError):
    """Raised when ``params:model`` names no registry entry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def resolve_model(models: dict[str, Any], name: str) -> ModelSpec:
    """Return the validated registry entry ``name``.

    Args:
        models: the ``models`` parameter (registry name -> entry dict).
        name: the ``model`` parameter.

    Returns:
        The typed model spec.

    Raises:
        UnknownModelError: ``name`` is not in the registry; the message lists
            the valid names.
    """
    if name not in models:
        raise UnknownModelError(
            f"Unknown model {name!r}. Valid models (conf/base/parameters_models.yml): "
            + ", ".join(sorted(models))
        )
    entry = dict(models[name] or {})
    entry.setdefault("name", name)
    try:
        return ModelSpec.model_validate(entry)
    except ValueError as exc:
        raise ValueError(f"Invalid registry entry for model {name!r}: {exc}") from exc


class MixSpec(StrictModel):
    """One training mix of the experiment grid.

    ``kind``: ``mono`` (base language only), ``multi`` (``n_languages`` - 1 of
    ``language_order`` swapped in), ``full`` (every Guanaco row),
    ``untuned`` (no finetuning: the base model itself, as a reference row).
    ``source``: where the non-English examples of a multi mix come from,
    ``native`` Guanaco rows or ``mt`` (machine translations of English rows).

    Appendix mixes of the paper's grid (its released
    ``data_prep/prepare_guanaco_data.py``):

    - ``exclude`` (multi, native): languages left out of the first
      ``n_languages - 1`` of ``language_order``; the base language fills their
      place. Leave-one-out Multi-6 with ca is ``{kind: multi, n_languages: 7,
      exclude: [de]}`` over ``language_order: [es, ru, de, zh, fr, ca]``
      (2,200 en + 5 x 200); the released "leave English out" file is plain
      ``{kind: multi, n_languages: 7}`` (2,000 en + 6 x 200).
    - ``filter`` (full): ``lid`` keeps the rows above the LID confidence
      threshold; ``none`` takes every parsed row, as the paper's Guanaco
      baseline did.
    - ``ids_file`` (mono): the mix is exactly the rows whose index in
      ``guanaco_raw`` is listed in this file (one ``"id":N`` or bare ``N`` per
      line, a path or any fsspec URL), e.g. the released Mono list ``ml1_ids``.

    The model dimension of the grid (Fig. 7, model size):

    - ``model``: the registry key (``params:models``) this mix is finetuned
      and evaluated on; ``null`` is the run's ``params:model``. Each model a
      mix names gets its own base model (``<model>.base_model``, prepared once).
    - ``label``: the mix's name in result rows (their ``mix`` column);
      ``null`` is the mix's own name. The same recipe on two models shares a
      label (``mono_s: {kind: mono, model: tiny_llama_small, label: mono}``),
      so tables and figures pair it across models; ``(model, label)`` must be
      unique (:func:`check_mix_models`).
    """

    kind: Literal["mono", "multi", "full", "untuned"]
    n_languages: int = Field(1, ge=1)
    source: Literal["native", "mt"] = "native"
    exclude: list[str] = Field(default_factory=list)
    filter: Literal["lid", "none"] = "lid"
    ids_file: str | None = None
    model: str | None = None
    label: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "MixSpec":
        if self.kind == "multi" and self.n_languages < 2:
            raise ValueError("a multi mix needs n_languages >= 2")
        if self.kind != "multi" and self.source == "mt":
            raise ValueError("source: mt only applies to multi mixes")
        if self.exclude and (self.kind != "multi" or self.source == "mt"):
            raise ValueError("exclude only applies to native multi mixes")
        if len(set(self.exclude)) != len(self.exclude):
            raise ValueError(f"exclude has duplicates: {self.exclude}")
        if self.filter != "lid" and self.kind != "full":
            raise ValueError("filter only applies to full mixes (mono/multi always take LID-kept rows)")
        if self.ids_file is not None and self.kind != "mono":
            raise ValueError("ids_file only applies to mono mixes")
        return self

    def added_languages(self, language_order: list[str], mix: str = "?") -> list[str]:
        """The languages a ``mono``/``multi`` mix swaps in beside the base language.

        The one rule for "which languages does multi-i hold": the first
        ``n_languages - 1`` of ``language_order`` (none for mono), less
        ``exclude``. Data mixing builds the mix with it and reporting hatches
        the bars with it.

        Raises:
            ValueError: ``language_order`` is too short for ``n_languages``, or
                ``exclude`` names a language the mix would not hold anyway.
        """
        if self.kind != "multi":
            return []
        if self.n_languages - 1 > len(language_order):
            raise ValueError(
                f"mix {mix!r}: n_languages {self.n_languages} needs {self.n_languages - 1} languages in "
                f"data_mixing.mixing.language_order, which has {len(language_order)}"
            )
        first = list(language_order[: self.n_languages - 1])
        stray = [lang for lang in self.exclude if lang not in first]
        if stray:
            raise ValueError(
                f"mix {mix!r}: exclude {stray} not among the first {self.n_languages - 1} languages of "
                f"data_mixing.mixing.language_order {first}"
            )
        return [lang for lang in first if lang not in self.exclude]


def mix_specs(mixes: dict[str, Any]) -> dict[str, MixSpec]:
    """Validate the ``mixes`` parameter, naming the offending mix on error.

    A mix set to ``null`` is dropped: an environment removes a mix of
    ``conf/base`` that way (parameters merge softly).
    """
    out = {}
    for name, spec in (mixes or {}).items():
        if spec is None:
            continue
        try:
            out[name] = MixSpec.model_validate(spec)
        except ValueError as exc:
            raise ValueError(f"Invalid spec for mix {name!r} in parameters 'mixes': {exc}") from exc
    return out


#: MixSpec fields that say where a mix runs or what it is called, not what data it trains on.
_PLACEMENT_FIELDS = {"model", "label"}


def mix_label(name: str, spec: MixSpec) -> str:
    """The ``mix`` value of ``name``'s result rows: its ``label``, else its name."""
    return spec.label or name


def mix_models(mixes: dict[str, MixSpec]) -> list[str]:
    """The registry keys mixes name explicitly (``MixSpec.model``), sorted: one base model namespace each."""
    return sorted({spec.model for spec in mixes.values() if spec.model})


def mixes_by_label(mixes: dict[str, Any]) -> dict[str, MixSpec]:
    """``params:mixes`` keyed by label (the ``mix`` of result rows), for reporting.

    Mixes that share a label share a recipe (:func:`check_mix_models`), so the
    label names one spec; ``model`` and ``label`` are cleared in it. Order:
    first appearance in ``params:mixes``.

    Raises:
        ValueError: two mixes share a label but not a recipe.
    """
    out: dict[str, MixSpec] = {}
    first: dict[str, str] = {}
    for name, spec in mix_specs(mixes).items():
        label = mix_label(name, spec)
        recipe = spec.model_copy(update=dict.fromkeys(_PLACEMENT_FIELDS))
        if label in out and out[label] != recipe:
            raise ValueError(f"mixes {first[label]!r} and {name!r} share the label {label!r} but not their recipe "
                             f"(kind, n_languages, source, exclude, filter, ids_file): a label names one mix")
        out.setdefault(label, recipe)
        first.setdefault(label, name)
    return out


def check_mix_models(mixes: dict[str, MixSpec], models: dict[str, Any], default_model: str | None) -> list[str]:
    """Problems of the grid's model dimension, one message each (empty: fine).

    Every ``MixSpec.model`` must be a registry key; ``(model, label)`` must be
    unique, with ``model`` resolved to ``default_model`` (``params:model``)
    where a mix names none, or two mixes would write the same result rows; and
    mixes that share a label share a recipe (see :func:`mixes_by_label`).

    Args:
        mixes: validated specs (:func:`mix_specs`).
        models: ``params:models``.
        default_model: ``params:model``.
    """
    problems = []
    seen: dict[tuple[str | None, str], str] = {}
    for name, spec in mixes.items():
        if spec.model is not None and spec.model not in (models or {}):
            problems.append(f"mix {name!r}: Unknown model {spec.model!r}; valid models (params:models): "
                            f"{sorted(models or {})}")
        key = (spec.model or default_model, mix_label(name, spec))
        if key in seen:
            problems.append(f"mixes {seen[key]!r} and {name!r} both run as mix {key[1]!r} on model {key[0]!r}: "
                            f"give one of them another label or model")
        seen.setdefault(key, name)
    try:
        mixes_by_label({n: s.model_dump() for n, s in mixes.items()})
    except ValueError as exc:
        problems.append(str(exc))
    return problems
