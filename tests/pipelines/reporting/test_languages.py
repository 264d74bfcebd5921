"""Which languages each mix was finetuned on."""

from __future__ import annotations

import pandas as pd
import pytest

from polyglot_kedro.pipelines.reporting.languages import finetuning_languages


def test_finetuning_languages(mixes, data_mixing_params, mix_summary, language_distribution):
    specs = {**mixes, "guanaco": {"kind": "full"}, "base": {"kind": "untuned"},
             "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"}}
    summary = pd.concat([mix_summary, pd.DataFrame({"mix": ["guanaco"], "rows": [99], "languages": [3],
                                                    "mean_tokens": [1.0], "en": [80], "es": [10], "ru": [9]})])
    langs, notes = finetuning_languages(specs, data_mixing_params, summary, None)
    assert langs["mono"] == {"en"} and langs["multi2"] == {"en", "es"} and langs["multi3"] == {"en", "es", "ru"}
    assert langs["mt_multi2"] == {"en", "es"} and langs["base"] == set() and langs["guanaco"] == {"en", "es", "ru"}
    assert notes == []
    _, notes = finetuning_languages(specs, data_mixing_params, mix_summary, None)
    assert "guanaco" in notes[0]
    dist = pd.DataFrame({"mix": ["guanaco"] * 3, "lang": ["en", "zh", "fr"], "rows": [5, 2, 0]})
    langs, notes = finetuning_languages(specs, data_mixing_params, mix_summary, dist)
    assert langs["guanaco"] == {"en", "zh"} and notes == []


def test_finetuning_languages_needs_language_order(mixes):
    with pytest.raises(ValueError, match="no mixing.language_order"):
        finetuning_languages(mixes, {"mixing": {}})
    with pytest.raises(ValueError, match="mix 'multi9': n_languages 9"):
        finetuning_languages({"multi9": {"kind": "multi", "n_languages": 9}}, {"mixing": {"language_order": ["es"]}})
