"""Every stage's parameters validated at start-up, for the environment in use.

Each node builds its typed parameter object when it runs, so without this a
typo under ``reporting:`` would fail after training and inference, and a
misspelt top-level key (``llm_endpoint:`` in conf/paper) would be ignored
while the soft merge quietly kept conf/base's value. ``validate_parameters``
builds every stage's object from the run's parameters at once (the start-up
hook calls it in ``after_context_created``); any unknown key, at any level, is
an error naming the key, the file(s) it came from and the valid keys there.
"""

from __future__ import annotations

import importlib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

# Top-level parameter key -> the stage's parameter model ("module:Class").
STAGE_MODELS: dict[str, str] = {
    "model_preparation": "polyglot_kedro.pipelines.base_model.nodes:ModelPreparationParams",
    "data_mixing": "polyglot_kedro.pipelines.data_mixing.params:DataMixingParams",
    "translation": "polyglot_kedro.pipelines.translation.nodes:TranslationParams",
    "finetuning": "polyglot_kedro.pipelines.finetuning.params:FinetuningParams",
    "inference": "polyglot_kedro.pipelines.inference.nodes:InferenceParams",
    "judging": "polyglot_kedro.pipelines.judging.nodes:JudgingParams",
    "task_scoring": "polyglot_kedro.pipelines.judging.task_scoring:TaskScoringParams",
    "reporting": "polyglot_kedro.pipelines.reporting.params:ReportingParams",
    "cluster": "polyglot_kedro.cluster.config:ClusterConfig",
}
# The grid and the shared registries (validated in ``_validators``).
GRID_KEYS = ("model", "models", "mixes", "language_groups", "llm_endpoints")
_PARAM_PATTERNS = ("parameters*.yml", "parameters*.yaml", "parameters*/**/*.yml", "parameters*/**/*.yaml")


class ParameterError(ValueError):
    """One or more parameters are wrong; the message lists every problem."""


def _load(ref: str) -> type[BaseModel]:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def known_top_level_keys() -> list[str]:
    """The keys a parameters file may have at its top level."""
    return sorted({*STAGE_MODELS, *GRID_KEYS})


def _validators() -> dict[str, tuple[Any, Callable[[Any], Any]]]:
    """key -> (annotation to walk for valid keys, validate function)."""
    from polyglot_kedro.config import MixSpec, ModelSpec
    from polyglot_kedro.llm.client import LLMEndpointConfig

    out: dict[str, tuple[Any, Callable[[Any], Any]]] = {}
    for key, ref in STAGE_MODELS.items():
        cls = _load(ref)
        out[key] = (cls, lambda v, cls=cls: cls.model_validate(v if v is not None else {}))
    for key, tp in (("models", dict[str, ModelSpec]), ("mixes", dict[str, MixSpec | None]),
                    ("language_groups", dict[str, list[str]]),
                    ("llm_endpoints", dict[str, LLMEndpointConfig])):  # fmt: skip
        adapter = TypeAdapter(tp)
        if key == "models":  # an entry's name defaults to its key (config.resolve_model)
            out[key] = (tp, lambda v, a=adapter: a.validate_python(
                {n: {"name": n, **(e or {})} for n, e in (v or {}).items()}))  # fmt: skip
        else:
            out[key] = (tp, lambda v, a=adapter: a.validate_python(v or {}))
    out["model"] = (str, lambda v: TypeAdapter(str).validate_python(v))
    return out


def _members(tp: Any) -> list[Any]:
    """The alternatives of a union (``X | None``, ``Optional[X]``), else ``[tp]``."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return [a for a in typing.get_args(tp) if a is not type(None)]
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    return [tp]


def _descend(tp: Any, part: Any) -> Any:
    """The type one step below ``tp`` along an error location part (field name, dict key, list index)."""
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            if isinstance(part, str) and part in member.model_fields:
                return member.model_fields[part].annotation
            if part == member.__name__:  # pydantic tags a union member with its class name
                return member
            continue
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if origin is dict and len(args) == 2:
            return args[1]
        if origin in (list, tuple, set) and args and isinstance(part, int):
            return args[0]
        if typing.get_origin(member) is typing.Literal:
            continue
    return None


def valid_keys(tp: Any, loc: tuple) -> list[str] | None:
    """The field names of the model at ``loc`` below ``tp`` (None if that is no model)."""
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return None
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return sorted(member.model_fields)
    return None


def key_sources(conf_source: str | Path | None, env: str | None, path: tuple) -> list[str]:
    """The parameter files of ``conf/base`` and ``conf/<env>`` that set the key at ``path``."""
    if not conf_source:
        return []
    root = Path(conf_source)
    found = []
    for folder in dict.fromkeys(("base", env or "local")):
        conf = root / folder
        files = sorted({f for p in _PARAM_PATTERNS for f in conf.glob(p)}) if conf.is_dir() else []
        for file in files:
            try:
                node: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            for part in path:
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                    node = node[part]
                else:
                    break
            else:
                found.append(f"{root.name}/{folder}/{file.relative_to(conf).as_posix()}")
    return found


def _where(conf_source, env, path: tuple) -> str:
    files = key_sources(conf_source, env, path)
    if files:
        return "in " + ", ".join(files)
    return "in no parameters file of conf/base or conf/" + str(env or "local") + " (runtime --params?)"


def validate_parameters(params: dict[str, Any], *, conf_source: str | Path | None = None,
                        env: str | None = None) -> dict[str, Any]:
    """Build every stage's parameter object from the run's parameters.

    Args:
        params: the run's resolved parameters (``context.params``).
        conf_source: the ``conf`` folder, to name the file a bad key came from.
        env: the run's environment (for the file lookup).

    Returns:
        Top-level key -> its validated object (present keys only).

    Raises:
        ParameterError: every unknown key (top level or nested: its dotted
            path, file and the valid keys at that level) and every invalid
            value (field path and reason, never the value).
    """
    validators = _validators()
    problems: list[str] = []
    for key in sorted(set(params) - set(validators)):
        problems.append(f"params:{key}: unknown top-level key ({_where(conf_source, env, (key,))}); "
                        f"valid top-level keys: {known_top_level_keys()}")  # fmt: skip
    built: dict[str, Any] = {}
    for key, (tp, validate) in validators.items():
        if key not in params:
            continue
        try:
            built[key] = validate(params[key])
        except ValidationError as exc:
            for err in exc.errors(include_input=False, include_url=False):
                loc = tuple(err["loc"])
                path = ".".join(str(p) for p in (key, *loc))
                if err["type"] == "extra_forbidden":
                    keys = valid_keys(tp, loc[:-1])
                    problems.append(f"params:{path}: unknown key ({_where(conf_source, env, (key, *loc))}); "
                                    f"valid keys there: {keys}")  # fmt: skip
                else:
                    problems.append(f"params:{path}: {err['msg']} ({_where(conf_source, env, (key, *loc))})")
        except ValueError as exc:  # a model validator's own message
            problems.append(f"params:{key}: {exc} ({_where(conf_source, env, (key,))})")
    if "model" in built and "models" in built and built["model"] not in built["models"]:
        problems.append(f"params:model: Unknown model {built['model']!r} ({_where(conf_source, env, ('model',))}); "
                        f"valid models (params:models): {sorted(built['models'])}")  # fmt: skip
    if "mixes" in built:
        from polyglot_kedro.config import check_mix_models, mix_specs

        problems += [f"params:mixes: {msg} ({_where(conf_source, env, ('mixes',))})"
                     for msg in check_mix_models(mix_specs(params["mixes"]), params.get("models") or {},
                                                 params.get("model"))]  # fmt: skip
    problems += _endpoint_references(params, built)
    noise = built["judging"].chat.judge_noise if "judging" in built else None
    noise_mixes = noise.mixes if noise is not None and noise.enabled else None
    unknown = sorted(set(noise_mixes or []) - set(params.get("mixes") or {}))
    if unknown:
        problems.append(f"params:judging.chat.judge_noise.mixes: {unknown} are not mixes of params:mixes "
                        f"({_where(conf_source, env, ('judging', 'chat', 'judge_noise', 'mixes'))}); "
                        f"valid: {sorted(params.get('mixes') or {})}")  # fmt: skip
    if problems:
        raise ParameterError(
            f"{len(problems)} parameter problem(s) for environment {env or 'local'!r}:\n  - " + "\n  - ".join(problems)
        )
    return built


def _endpoint_references(params: dict[str, Any], built: dict[str, Any]) -> list[str]:
    """Stages name endpoints of ``params:llm_endpoints``: those names must exist."""
    endpoints = set(params.get("llm_endpoints") or {})
    refs = []
    if "translation" in built:
        refs.append(("translation.endpoint", built["translation"].endpoint))
    if "judging" in built:
        chat = built["judging"].chat
        if chat.enabled:
            refs.append(("judging.chat.endpoint", chat.endpoint))
            if chat.mode == "translated":
                refs.append(("judging.chat.translator_endpoint", chat.translator_endpoint))
            if chat.judge_noise.enabled and chat.judge_noise.second.endpoint:
                refs.append(("judging.chat.judge_noise.second.endpoint", chat.judge_noise.second.endpoint))
    problems = [f"params:{where}: {name!r} is not an endpoint of params:llm_endpoints; valid: {sorted(endpoints)}"
                for where, name in refs if name not in endpoints]  # fmt: skip
    translation = built.get("translation")
    endpoint = (built.get("llm_endpoints") or {}).get(translation.endpoint) if translation else None
    if translation is not None and translation.constrain_roles and endpoint is not None and not endpoint.supports_regex:
        problems.append(
            f"params:translation.constrain_roles: endpoint {translation.endpoint!r} cannot enforce a regex while "
            "decoding; it needs backend 'inprocess', inprocess_engine 'transformers' and no json_mode/json_schema "
            "(or set translation.constrain_roles: false)"
        )
    return problems
