"""The typed ``data_mixing`` parameters and the column lists of its tables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from polyglot_kedro.config import StrictModel
from polyglot_kedro.lid import LidConfig

MIX_COLUMNS = ["id", "text", "lang", "source"]
LID_COLUMNS = ["lang", "lid_label", "lid_confidence", "keep"]
TRANSLATION_COLUMNS = ["id", "source_id", "lang", "text", "status"]


class ParsingParams(StrictModel):
    """``data_mixing.parsing``.

    ``allow_trailing_human_turn``: keep rows whose last turn is an unanswered
    ``### Human:`` turn (common in the real Guanaco data) instead of rejecting them.
    """

    allow_trailing_human_turn: bool = True


class LidParams(LidConfig):
    """``data_mixing.lid``: the LID model (every :class:`~polyglot_kedro.lid.LidConfig`
    field: ``model_path``, ``revision``, ``label_mode``, ``max_chars`` = prefix
    length or ``None`` for the whole conversation, ...) and the keep threshold.
    """

    min_confidence: float = Field(0.8, ge=0.0, le=1.0)


class MixingParams(StrictModel):
    """``data_mixing.mixing``: sizes, language order, seed, short-supply policy.

    ``on_short_supply``: ``error`` raises naming the language, the need and the
    supply; ``fill_with_base`` takes all rows of the short language and fills
    the gap with base-language rows (same total size, logged as a warning).

    ``sampler``: ``nested`` (this project's: one seeded order per language,
    every mix a prefix of it) or ``released`` (the released
    ``data_prep/prepare_guanaco_data.py`` draws, replayed with
    ``pandas.Series.sample(random_state=seed)``; see :func:`released_mix_ids`).
    ``source: mt`` mixes keep the nested draws either way (the released MT
    mixes were built another way, docs/FIDELITY.md).
    """

    total_size: int = Field(ge=1)
    per_language: int = Field(ge=1)
    language_order: list[str]
    base_language: str = "en"
    seed: int = 42
    on_short_supply: Literal["error", "fill_with_base"] = "error"
    sampler: Literal["nested", "released"] = "nested"

    @model_validator(mode="after")
    def _languages(self) -> "MixingParams":
        if len(set(self.language_order)) != len(self.language_order):
            raise ValueError(f"language_order has duplicates: {self.language_order}")
        if self.base_language in self.language_order:
            raise ValueError(f"base_language {self.base_language!r} must not be in language_order")
        return self


class DataMixingParams(StrictModel):
    """The ``data_mixing`` parameters (conf/base/parameters_data_mixing.yml)."""

    parsing: ParsingParams = ParsingParams()
    lid: LidParams = LidParams()
    mixing: MixingParams


class ShortSupplyError(ValueError):
    """A mix needs more rows of a language than the data holds."""
