"""The paper's appendix mixes: Mono from an id list, leave-one-out Multi-6, unfiltered Guanaco."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from polyglot_kedro.config import MixSpec, mix_specs
from polyglot_kedro.pipelines.data_mixing import nodes as data_mixing_nodes
from polyglot_kedro.pipelines.data_mixing.mixes import build_mixes, read_id_list
from polyglot_kedro.pipelines.data_mixing.nodes import (
    identify_languages,
    parse_guanaco_rows,
)
from polyglot_kedro.pipelines.data_mixing.params import ShortSupplyError

from .conftest import make_lid, make_params

ML1_IDS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "guanaco" / "ml1_ids"


def _train_test_raw(n_train: int, n_test: int) -> pd.DataFrame:
    """Guanaco train rows followed by test rows, as the paper's id space numbers them."""
    train = [f"### Human: train question {i}### Assistant: train answer {i}" for i in range(n_train)]
    test = [f"### Human: test question {i}### Assistant: test answer {i}" for i in range(n_test)]
    return pd.DataFrame({"text": train + test})


def _lid_for(parsed: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    # A hand-made LID table: the id list decides the mix, not the language labels.
    return parsed.assign(lang=lang, lid_label=f"__label__{lang}", lid_confidence=0.9, keep=True)


# ---------------------------------------------------------------- Mono from an id list


def test_mono_from_id_list_picks_exactly_the_listed_train_and_test_rows(tmp_path):
    raw = _train_test_raw(n_train=30, n_test=10)
    listed = [27, 3, 31, 0, 14, 39, 8]  # file order, not sorted; 31 and 39 are test rows
    ids_file = tmp_path / "ml1_ids"
    ids_file.write_text("".join(f'"id":{i}\n' for i in listed))
    params = make_params(total_size=5, per_language=1)
    parsed, rejected = parse_guanaco_rows(raw, params)
    assert rejected.empty
    out = build_mixes(_lid_for(parsed), params, {"mono": {"kind": "mono", "ids_file": str(ids_file)}})
    mono = out["mono"]
    assert sorted(mono["text"]) == sorted(raw["text"].iloc[listed])
    assert mono["id"].tolist() == sorted(f"g{i:05d}" for i in listed)
    assert len(mono) == len(listed)  # the list's size, not total_size
    assert set(mono["source"]) == {"native"}


def test_id_list_accepts_bare_ids_and_blank_lines(tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text('5\n\n"id": 2\n')
    assert read_id_list(str(ids_file)) == [(1, 5), (3, 2)]


@pytest.mark.parametrize(
    "content, message",
    [
        ('"id":1\n"id":x\n', r"line 2: expected"),
        ('"id":1\n"id":1\n', r"line 2: id 1 already listed on line 1"),
        ('"row":1\n', r"line 1: expected"),
        ("-3\n", r"line 1: negative id -3"),
        ("\n", r"is empty"),
    ],
)
def test_bad_id_list_names_file_and_line(tmp_path, content, message):
    ids_file = tmp_path / "ids"
    ids_file.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_id_list(str(ids_file))
    assert str(ids_file) in str(err.value)


def test_id_beyond_the_data_is_named(tmp_path):
    raw = _train_test_raw(n_train=4, n_test=0)
    ids_file = tmp_path / "ids"
    ids_file.write_text('"id":1\n"id":9\n')
    params = make_params(total_size=2, per_language=1)
    parsed, _ = parse_guanaco_rows(raw, params)
    with pytest.raises(ValueError, match=r"'mono'.*line 2: id 9 is not a parsed row of guanaco_raw \(4 parsed rows"):
        build_mixes(_lid_for(parsed), params, {"mono": {"kind": "mono", "ids_file": str(ids_file)}})


def test_id_list_through_an_fsspec_url(tmp_path):
    import fsspec

    with fsspec.open("memory://polyglot-test/ml1_ids", "wt") as fh:
        fh.write('"id":2\n"id":0\n')
    raw = _train_test_raw(n_train=3, n_test=1)
    params = make_params(total_size=2, per_language=1)
    parsed, _ = parse_guanaco_rows(raw, params)
    out = build_mixes(_lid_for(parsed), params, {"mono": {"kind": "mono", "ids_file": "memory://polyglot-test/ml1_ids"}})
    assert out["mono"]["id"].tolist() == ["g00000", "g00002"]


def test_released_ml1_ids_parse_to_3200_train_rows():
    if not ML1_IDS.is_file():
        pytest.skip(f"released id list not found at {ML1_IDS}")
    ids = [row for _, row in read_id_list(str(ML1_IDS))]
    assert len(ids) == len(set(ids)) == 3200
    # All are train rows (Guanaco train has 9,846 rows; test ids start there).
    assert max(ids) < 9846 and min(ids) >= 0


# ---------------------------------------------------------------- leave-one-out Multi-6


def _loo_params() -> dict:
    return make_params(total_size=20, per_language=2, language_order=["es", "ru", "de", "zh", "fr", "ca"])


def _loo_lid() -> pd.DataFrame:
    return make_lid({"en": 30, "es": 4, "ru": 4, "de": 4, "zh": 4, "fr": 4, "ca": 4})


def test_leave_one_out_multi6_drops_one_language_and_fills_with_english():
    mixes = {
        "multi6": {"kind": "multi", "n_languages": 6},
        "loo_de": {"kind": "multi", "n_languages": 7, "exclude": ["de"]},
        "loo_en": {"kind": "multi", "n_languages": 7},
    }
    out = build_mixes(_loo_lid(), _loo_params(), mixes)
    loo_de = out["loo_de"]["lang"].value_counts().to_dict()
    # The released code: 2,200 en + 200 of each of the five other languages (here 20 - 5 x 2 = 10 en).
    assert loo_de == {"en": 10, "es": 2, "ru": 2, "zh": 2, "fr": 2, "ca": 2}
    # Leaving English out = every language at per_language, English shrinks by one block.
    assert out["loo_en"]["lang"].value_counts().to_dict() == {"en": 8, "es": 2, "ru": 2, "de": 2, "zh": 2, "fr": 2, "ca": 2}
    # Same rows per language as the nested grid: loo_de keeps multi6's non-German rows.
    multi6 = out["multi6"]
    kept = set(multi6.loc[~multi6["lang"].isin(["en", "de"]), "id"])
    assert kept <= set(out["loo_de"]["id"])
    assert len(out["loo_de"]) == len(out["loo_en"]) == len(multi6) == 20


def test_added_languages_honours_exclude():
    order = ["es", "ru", "de", "zh", "fr", "ca"]
    spec = MixSpec(kind="multi", n_languages=7, exclude=["de", "ca"])
    assert spec.added_languages(order, "loo") == ["es", "ru", "zh", "fr"]
    with pytest.raises(ValueError, match=r"'loo3': exclude \['ca'\] not among the first 2"):
        MixSpec(kind="multi", n_languages=3, exclude=["ca"]).added_languages(order, "loo3")


def test_appendix_fields_only_where_they_apply():
    with pytest.raises(ValueError, match=r"(?s)mix 'm'.*exclude only applies to native multi mixes"):
        mix_specs({"m": {"kind": "mono", "exclude": ["de"]}})
    with pytest.raises(ValueError, match="exclude only applies to native multi mixes"):
        mix_specs({"m": {"kind": "multi", "n_languages": 3, "source": "mt", "exclude": ["es"]}})
    with pytest.raises(ValueError, match="filter only applies to full mixes"):
        mix_specs({"m": {"kind": "multi", "n_languages": 3, "filter": "none"}})
    with pytest.raises(ValueError, match="ids_file only applies to mono mixes"):
        mix_specs({"m": {"kind": "full", "ids_file": "x"}})
    with pytest.raises(ValueError, match="duplicates"):
        mix_specs({"m": {"kind": "multi", "n_languages": 3, "exclude": ["es", "es"]}})


# ---------------------------------------------------------------- unfiltered Guanaco


def test_full_unfiltered_keeps_low_confidence_rows(lid_frame, params):
    out = build_mixes(
        lid_frame, params, {"guanaco": {"kind": "full"}, "guanaco_all": {"kind": "full", "filter": "none"}}
    )
    assert len(out["guanaco_all"]) == len(lid_frame)
    assert len(out["guanaco"]) == int(lid_frame["keep"].sum()) < len(lid_frame)
    assert out["guanaco_all"]["id"].tolist() == sorted(lid_frame["id"])


def test_lid_model_by_hub_id_reaches_the_identifier(monkeypatch, params):
    seen = {}

    class _Lid(data_mixing_nodes.LanguageIdentifier):  # the real from_config, a recording constructor
        model_path = "laurievb/OpenLID"

        def __init__(self, model, max_chars=None, **kwargs):
            seen.update(model=model, max_chars=max_chars, **kwargs)

        def predict_many(self, texts):
            return pd.DataFrame({"lang": ["en"] * len(texts), "lid_label": ["__label__eng_Latn"] * len(texts),
                                 "lid_confidence": [0.9] * len(texts)})

    monkeypatch.setattr(data_mixing_nodes, "LanguageIdentifier", _Lid)
    lid = {"model_path": "laurievb/OpenLID", "revision": "a" * 40, "label_mode": "full_label", "min_confidence": 0.8}
    parsed, _ = parse_guanaco_rows(_train_test_raw(2, 0), params)
    out = identify_languages(parsed, {**params, "lid": lid})
    assert seen == {"model": "laurievb/OpenLID", "max_chars": None, "revision": "a" * 40, "filename": None,
                    "cache_dir": None, "label_mode": "full_label"}
    assert out["keep"].all()


# ---------------------------------------------------------------- the released sampler


def _prepare_guanaco_data(lid: pd.DataFrame, total: int, per: int, order: list[str], seed: int) -> dict[str, set]:
    """A transcription of the released data_prep/prepare_guanaco_data.py @ 0d9859c1 (its three steps).

    The script hard-codes 2,200 English rows and 200 per language; they are
    total - (L - 1) * per and per here (L = number of added languages).
    """
    dataset = lid[lid["keep"]].sort_values("id").reset_index(drop=True)  # guanaco_train.json order, conf >= 0.8
    lang_datasets = {}
    for lang in ["en", *order]:
        if lang == "en":
            lang_datasets[lang] = dataset[dataset["lang"] == lang].sample(n=total - (len(order) - 1) * per,
                                                                           random_state=seed)
        elif len(dataset[dataset["lang"] == lang]) > per:
            lang_datasets[lang] = dataset[dataset["lang"] == lang].sample(n=per, random_state=seed)
    total_n = sum(len(x) for x in lang_datasets.values()) - per
    mono_dataset = dataset[dataset["lang"] == "en"].sample(n=total_n, random_state=seed)
    out = {"mono": mono_dataset}
    non_eng_langs = [lang for lang in lang_datasets if lang != "en"]
    for c, lang in enumerate(non_eng_langs):
        sub_dataset = mono_dataset.sample(n=(total_n - (c * per)), random_state=seed)
        if c > 0:
            added = pd.concat([lang_datasets[lang].sample(n=per, random_state=seed) for lang in non_eng_langs[:c]])
            sub_dataset = pd.concat([sub_dataset, added.reset_index(drop=True)]).reset_index(drop=True)
        out[f"ml{c + 1}"] = sub_dataset
    full = pd.concat(lang_datasets.values()).reset_index(drop=True)
    for lang in full["lang"].unique():
        if lang == "en":
            out[f"loo_{lang}"] = full.drop(full[full["lang"] == lang].sample(n=per, random_state=seed).index)
        else:
            out[f"loo_{lang}"] = full.drop(full[full["lang"] == lang].index)
    return {name: set(frame["id"]) for name, frame in out.items()} | {"_mono_order": list(mono_dataset["id"])}


ORDER = ["es", "ru", "de", "zh", "fr", "ca"]
RELEASED_GRID = {
    "mono": {"kind": "mono"},
    **{f"multi{i}": {"kind": "multi", "n_languages": i} for i in range(2, 7)},
    "loo_en": {"kind": "multi", "n_languages": 7},
    **{f"loo_{lang}": {"kind": "multi", "n_languages": 7, "exclude": [lang]} for lang in ORDER},
}


def _released_lid() -> pd.DataFrame:
    return make_lid({"en": 60, "es": 9, "ru": 7, "de": 8, "zh": 5, "fr": 6, "ca": 4, "it": 3}, dropped=5)


def test_released_sampler_draws_the_released_scripts_rows():
    lid = _released_lid()
    params = make_params(total_size=24, per_language=3, language_order=ORDER, sampler="released")
    want = _prepare_guanaco_data(lid, total=24, per=3, order=ORDER, seed=42)
    out = build_mixes(lid, params, RELEASED_GRID)
    assert set(out["mono"]["id"]) == want["mono"]
    for i in range(2, 7):
        assert set(out[f"multi{i}"]["id"]) == want[f"ml{i}"], i
    for lang in ["en", *ORDER]:
        assert set(out[f"loo_{lang}"]["id"]) == want[f"loo_{lang}"], lang
    assert all(len(frame) == 24 for frame in out.values())
    # This project's nested sampler draws other rows from the same table.
    nested = build_mixes(lid, make_params(total_size=24, per_language=3, language_order=ORDER), RELEASED_GRID)
    assert set(nested["multi3"]["id"]) != want["ml3"]
    # Another seed draws other rows (the draws really depend on it).
    other = build_mixes(lid, {**params, "mixing": {**params["mixing"], "seed": 7}}, RELEASED_GRID)
    assert set(other["multi3"]["id"]) != want["ml3"]


def test_released_sampler_follows_the_mono_id_list_without_the_lid(tmp_path):
    """With the released Mono list, every mix's English rows follow from it, whatever this run's LID says."""
    lid = _released_lid()
    want = _prepare_guanaco_data(lid, total=24, per=3, order=ORDER, seed=42)
    ids_file = tmp_path / "ml1_ids"
    ids_file.write_text("".join(f'"id":{int(i[1:])}\n' for i in want["_mono_order"]))
    # This run's LID calls a few of the listed English rows something else: the list wins.
    relabelled = lid.copy()
    relabelled.loc[relabelled["id"].isin(want["_mono_order"][:4]), ["lang", "keep"]] = ["it", False]
    params = make_params(total_size=24, per_language=3, language_order=ORDER, sampler="released")
    grid = {**RELEASED_GRID, "mono": {"kind": "mono", "ids_file": str(ids_file)}}
    out = build_mixes(relabelled, params, grid)
    assert set(out["mono"]["id"]) == want["mono"]
    for i in range(2, 7):
        english = set(out[f"multi{i}"].loc[out[f"multi{i}"]["id"].isin(want["mono"]), "id"])
        assert english == {i_ for i_ in want[f"ml{i}"] if i_ in want["mono"]}, i
    assert set(out["loo_en"]["id"]) & want["mono"] == want["loo_en"] & want["mono"]


def test_released_sampler_errors():
    lid = _released_lid()
    params = make_params(total_size=24, per_language=3, language_order=ORDER, sampler="released")
    with pytest.raises(ValueError, match="leaves a language out only of a mix holding all 6"):
        build_mixes(lid, params, {"m": {"kind": "multi", "n_languages": 4, "exclude": ["ru"]}})
    short = make_params(total_size=24, per_language=5, language_order=ORDER, sampler="released")
    with pytest.raises(ShortSupplyError, match="'ca' kept rows: need 5 rows, supply 4"):
        build_mixes(lid, short, {"multi7": {"kind": "multi", "n_languages": 7}})
