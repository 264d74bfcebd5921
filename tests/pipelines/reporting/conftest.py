"""Hand-made scores: 3 mixes x 4 languages x 3 seeds x 12 items; XNLI absent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polyglot_kedro.pipelines.reporting.inputs import combine_scores
from polyglot_kedro.pipelines.reporting.plateau import dose_response
from polyglot_kedro.pipelines.reporting.statistics import aggregate_scores

MIXES = {
    "mono": {"kind": "mono"},
    "multi2": {"kind": "multi", "n_languages": 2},
    "multi3": {"kind": "multi", "n_languages": 3},
}
LANGS = ["ru", "en", "es", "de"]  # deliberately not in figure order
SEEDS = [0, 42, 723]
N_ITEMS = 12


def _make_scores(mix: str, rng: np.random.Generator, *, model: str = "tiny_llama", bonus: dict | None = None) -> pd.DataFrame:
    """Tidy scores of one mix; ``bonus[lang]`` is added to helpfulness in ``lang``."""
    bonus = bonus or {}
    rows = []
    for lang in LANGS:
        for seed in SEEDS:
            for item in range(N_ITEMS):
                base = dict(model=model, mix=mix, lang=lang, seed=seed, item_id=f"i{item}", invalid_reason="", judge=None)
                h = float(np.clip(rng.integers(1, 5) + bonus.get(lang, 0), 1, 6))
                invalid = item == 0 and seed == 0 and lang == "de"  # one unparsable judgment per mix
                rows.append({**base, "task": "chat", "prompt_setting": "native", "metric": "helpfulness",
                             "score": np.nan if invalid else h, "valid": not invalid,
                             "invalid_reason": "unparsable judgment" if invalid else "", "judge": "gpt-judge-test"})
                rows.append({**base, "task": "chat", "prompt_setting": "native", "metric": "io_lang_agreement",
                             "score": float(rng.integers(0, 2)), "valid": True})
                for ps in ("en:xx", "xx:xx"):
                    rows.append({**base, "task": "xquad", "prompt_setting": ps, "metric": "xquad_f1",
                                 "score": float(rng.uniform(0, 1)), "valid": True})
                rows.append({**base, "task": "xcsqa", "prompt_setting": "xx:xx", "metric": "xcsqa_acc",
                             "score": float(rng.integers(0, 2)), "valid": True})
    return pd.DataFrame(rows)


@pytest.fixture
def mixes() -> dict:
    return {k: dict(v) for k, v in MIXES.items()}


@pytest.fixture
def scores_by_mix() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    return {
        "mono": _make_scores("mono", rng),
        "multi2": _make_scores("multi2", rng, bonus={"es": 2}),
        "multi3": _make_scores("multi3", rng, bonus={"es": 2}),
    }


@pytest.fixture
def reporting_params() -> dict:
    return {"n_boot": 200, "seed": 1, "error_bars": "ci", "error_bars_by_figure": {"fig2_helpfulness": "sd"},
            "sources": {"guanaco": "data/01_raw/demo/guanaco_demo.jsonl"}, "engine": "vllm-cpu"}


@pytest.fixture
def run_info() -> dict:
    """What the start-up hook puts into the catalog as ``run_info``."""
    return {"git_commit": "0123abc", "git_dirty": True, "env": "local", "params_sha256": "f" * 64,
            "save_version": "2026-12-01T00.00.00.000Z", "load_versions": {}, "kedro_version": "1.7.0",
            "python": "3.11.7"}


@pytest.fixture
def scores(scores_by_mix) -> pd.DataFrame:
    return combine_scores(**scores_by_mix)


@pytest.fixture
def aggregates(scores, reporting_params) -> pd.DataFrame:
    return aggregate_scores(scores, reporting_params)


@pytest.fixture
def dose(scores, mixes, language_groups, reporting_params) -> pd.DataFrame:
    return dose_response(scores, mixes, language_groups, reporting_params)


@pytest.fixture
def data_mixing_params() -> dict:
    return {"mixing": {"language_order": ["es", "ru", "de", "zh", "fr"], "base_language": "en"}}


@pytest.fixture
def language_groups() -> dict:
    return {"high": ["en", "de", "fr", "sv", "zh", "es", "ru"], "mid": ["ca", "no", "bg"], "low": ["is", "hi", "el"]}


@pytest.fixture
def mix_summary() -> pd.DataFrame:
    return pd.DataFrame({"mix": ["mono", "multi2", "multi3"], "rows": [40, 40, 40], "languages": [1, 2, 3],
                         "mean_tokens": [100.0, 101.0, 99.0], "en": [40, 36, 32], "es": [0, 4, 4], "ru": [0, 0, 4]})


@pytest.fixture
def language_distribution() -> pd.DataFrame:
    return pd.DataFrame({"lang": ["en", "es", "ru"], "rows": [72, 14, 14]})


def _usage(stage: str, cost: float) -> pd.DataFrame:
    return pd.DataFrame([{"stage": stage, "model": "judge-x", "backend": "openai", "requests": 10, "sent": 9,
                          "cached": 1, "failed": 0, "prompt_tokens": 1000, "completion_tokens": 100, "cost_usd": cost}])


@pytest.fixture
def make_scores():
    """Builder of one mix's tidy scores (see ``_make_scores``)."""
    return _make_scores


@pytest.fixture
def usage():
    """Builder of a one-row usage ledger."""
    return _usage
