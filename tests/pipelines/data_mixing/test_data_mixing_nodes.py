"""Nodes of data_mixing on hand-made rows and on the real Guanaco eval split."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro_datasets.pandas import ParquetDataset

from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset
from polyglot_kedro.pipelines.data_mixing.mixes import build_mixes
from polyglot_kedro.pipelines.data_mixing.mt_mixes import (
    build_mt_mixes,
    select_mt_sources,
)
from polyglot_kedro.pipelines.data_mixing.nodes import (
    identify_languages,
    parse_guanaco_rows,
    summarise_language_distribution,
    summarise_mixes,
)
from polyglot_kedro.pipelines.data_mixing.params import ShortSupplyError

from .conftest import make_lid, make_params

# ---------------------------------------------------------------- parsing


def test_parse_rejects_bad_rows_and_keeps_valid_ones(params):
    raw = pd.DataFrame(
        {
            "text": [
                "### Human: Hi there### Assistant: Hello!",
                "",
                "just some text",
                "preamble ### Human: q### Assistant: a",
                "### Human: q### Assistant: ",
                "### Human: q1### Assistant: a1### Human: follow-up?",
                "### Human: only a question",
                None,
            ]
        }
    )
    parsed, rejected = parse_guanaco_rows(raw, params)
    assert parsed["id"].tolist() == ["g00000", "g00005"]
    assert parsed["n_turns"].tolist() == [2, 3]
    assert json.loads(parsed.loc[1, "turns"])[-1] == {"role": "human", "content": "follow-up?"}
    assert rejected["row"].tolist() == [1, 2, 3, 4, 6, 7]
    reasons = dict(zip(rejected["row"], rejected["reason"]))
    assert reasons[1] == "empty text"
    assert "no '### Human:' marker" in reasons[2]
    assert "text before the first role marker" in reasons[3]
    assert "empty assistant turn" in reasons[4]
    assert "without an assistant reply" in reasons[6]
    assert rejected.loc[rejected["row"] == 2, "text"].item() == "just some text"


def test_parse_trailing_human_turn_can_be_rejected(params):
    raw = pd.DataFrame({"text": ["### Human: q1### Assistant: a1### Human: follow-up?"]})
    strict = {**params, "parsing": {"allow_trailing_human_turn": False}}
    parsed, rejected = parse_guanaco_rows(raw, strict)
    assert parsed.empty and rejected["reason"].tolist() == ["conversation ends without an assistant reply"]


def test_parse_missing_text_column_names_the_column(params):
    with pytest.raises(ValueError, match="no 'text' column"):
        parse_guanaco_rows(pd.DataFrame({"txt": ["x"]}), params)


def test_params_typo_fails_with_field_name(lid_frame, mixes):
    bad = make_params()
    bad["mixing"]["totl_size"] = 3
    with pytest.raises(ValueError, match="totl_size"):
        build_mixes(lid_frame, bad, mixes)


# ---------------------------------------------------------------- mixes


def test_mix_sizes_and_language_counts(lid_frame, params, mixes):
    out = build_mixes(lid_frame, params, mixes)
    assert set(out) == {"mono", "multi2", "multi3", "multi4", "multi5", "multi6", "guanaco"}
    assert out["mono"]["lang"].value_counts().to_dict() == {"en": 20}
    order = params["mixing"]["language_order"]
    for i in range(2, 7):
        counts = out[f"multi{i}"]["lang"].value_counts().to_dict()
        assert counts == {"en": 20 - 3 * (i - 1), **{lang: 3 for lang in order[: i - 1]}}
    assert len(out["guanaco"]) == int(lid_frame["keep"].sum())
    assert not out["guanaco"]["id"].isin(lid_frame.loc[~lid_frame["keep"], "id"]).any()
    for frame in out.values():
        assert list(frame.columns) == ["id", "text", "lang", "source"]
        assert (frame["source"] == "native").all()
        assert frame["id"].is_unique and frame["id"].is_monotonic_increasing


def test_mixes_are_nested(lid_frame, params, mixes):
    out = build_mixes(lid_frame, params, mixes)
    chain = ["mono", "multi2", "multi3", "multi4", "multi5", "multi6"]
    for a, b in zip(chain, chain[1:]):
        small, big = out[a], out[b]
        assert set(small.loc[small["lang"] != "en", "id"]) <= set(big["id"])
        assert set(big.loc[big["lang"] == "en", "id"]) <= set(small.loc[small["lang"] == "en", "id"])
        dropped = set(small["id"]) - set(big["id"])
        assert dropped and set(small.loc[small["id"].isin(dropped), "lang"]) == {"en"}


def test_same_seed_byte_identical_parquet_other_seed_differs(tmp_path, lid_frame, params, mixes):
    def write(frame_lid, p, name):
        mix = build_mixes(frame_lid, p, mixes)["multi3"]
        ParquetDataset(filepath=str(tmp_path / name)).save(mix)
        return (tmp_path / name).read_bytes(), mix

    shuffled = lid_frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    a, mix_a = write(lid_frame, params, "a.parquet")
    b, _ = write(shuffled, params, "b.parquet")  # input order must not matter
    assert a == b
    c, mix_c = write(lid_frame, make_params(seed=7), "c.parquet")
    assert a != c
    assert set(mix_a["id"]) != set(mix_c["id"])
    assert mix_c["lang"].value_counts().to_dict() == mix_a["lang"].value_counts().to_dict()


def test_short_supply_error_names_language_need_and_supply(params, mixes):
    lid = make_lid({"en": 30, "es": 5, "ru": 2, "de": 5, "zh": 5, "fr": 5})
    with pytest.raises(ShortSupplyError, match=r"'ru' examples: need 3, supply 2"):
        build_mixes(lid, params, mixes)
    few_en = make_lid({"en": 10, "es": 5, "ru": 5, "de": 5, "zh": 5, "fr": 5})
    with pytest.raises(ShortSupplyError, match=r"mix 'mono'.*'en' examples: need 20, supply 10"):
        build_mixes(few_en, params, mixes)


def test_short_supply_fill_with_base_keeps_size_and_nesting(mixes):
    lid = make_lid({"en": 30, "es": 5, "ru": 2, "de": 5, "zh": 5, "fr": 5})
    out = build_mixes(lid, make_params(on_short_supply="fill_with_base"), mixes)
    counts = out["multi3"]["lang"].value_counts().to_dict()
    assert counts == {"en": 20 - 3 - 2, "es": 3, "ru": 2}
    assert all(len(out[f"multi{i}"]) == 20 for i in range(2, 7))
    assert set(out["multi3"].query("lang != 'en'")["id"]) <= set(out["multi4"]["id"])


def test_too_many_languages_for_order(lid_frame, params):
    with pytest.raises(ValueError, match="n_languages 7 needs 6 languages"):
        build_mixes(lid_frame, params, {"multi7": {"kind": "multi", "n_languages": 7}})


# ---------------------------------------------------------------- MT mixes

MT_MIXES = {"mono": {"kind": "mono"}, "multi3": {"kind": "multi", "n_languages": 3},
            "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"},
            "mt_multi3": {"kind": "multi", "n_languages": 3, "source": "mt"}}


def _translate(sources: pd.DataFrame, bad: int = 0) -> pd.DataFrame:
    tr = pd.DataFrame(
        {
            "id": sources["id"] + "-" + sources["target_lang"],
            "source_id": sources["id"],
            "lang": sources["target_lang"],
            "text": "[" + sources["target_lang"] + "] " + sources["text"],
            "status": "ok",
        }
    )
    tr.loc[tr.index[:bad], "status"] = "refused"
    return tr


def test_mt_sources_and_mt_mixes(lid_frame, params):
    sources = select_mt_sources(lid_frame, params, MT_MIXES)
    assert list(sources.columns) == ["id", "text", "lang", "target_lang"]
    assert sources["target_lang"].value_counts().to_dict() == {"es": 3, "ru": 3}
    assert (sources["lang"] == "en").all() and sources["id"].is_unique
    native = build_mixes(lid_frame, params, MT_MIXES)
    # the translated rows are exactly the English rows that multi3 drops from mono
    assert set(sources["id"]) == set(native["mono"]["id"]) - set(native["multi3"]["id"])

    mt = build_mt_mixes(lid_frame, _translate(sources), params, MT_MIXES)
    assert set(mt) == {"mt_multi2", "mt_multi3"}
    m3 = mt["mt_multi3"]
    assert m3["lang"].value_counts().to_dict() == native["multi3"]["lang"].value_counts().to_dict()
    assert set(m3.query("lang == 'en'")["id"]) == set(native["multi3"].query("lang == 'en'")["id"])
    assert (m3.query("lang != 'en'")["source"] == "mt").all()
    assert m3.query("source == 'mt'")["text"].str.match(r"\[(es|ru)\] ").all()
    assert set(mt["mt_multi2"].query("source == 'mt'")["id"]) <= set(m3["id"])  # nested too


def test_mt_missing_translation_error_and_fallback(lid_frame, params):
    sources = select_mt_sources(lid_frame, params, MT_MIXES)
    tr = _translate(sources, bad=1)  # first es translation not ok
    with pytest.raises(ShortSupplyError, match=r"'es' examples: need 3, supply 2 \(translations"):
        build_mt_mixes(lid_frame, tr, params, MT_MIXES)
    mt = build_mt_mixes(lid_frame, tr, make_params(on_short_supply="fill_with_base"), MT_MIXES)
    m2 = mt["mt_multi2"]
    assert len(m2) == 20 and m2["lang"].value_counts().to_dict() == {"en": 18, "es": 2}
    with pytest.raises(ValueError, match=r"lacks columns \['status'\]"):
        build_mt_mixes(lid_frame, tr.drop(columns="status"), params, MT_MIXES)


def test_mt_translations_accept_partitions(lid_frame, params):
    sources = select_mt_sources(lid_frame, params, MT_MIXES)
    tr = _translate(sources)
    parts = {lang: (lambda g=g: g) for lang, g in tr.groupby("lang")}
    a = build_mt_mixes(lid_frame, parts, params, MT_MIXES)["mt_multi3"]
    b = build_mt_mixes(lid_frame, tr, params, MT_MIXES)["mt_multi3"]
    pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------- summaries


def test_language_distribution(lid_frame):
    table = summarise_language_distribution(lid_frame)
    assert list(table.columns) == ["lang", "count_all", "share_all", "count_kept", "share_kept"]
    en = table.set_index("lang").loc["en"]
    assert (en["count_all"], en["count_kept"]) == (34, 30)
    assert table["share_all"].sum() == pytest.approx(1.0)
    assert table["share_kept"].sum() == pytest.approx(1.0)
    assert table.loc[0, "lang"] == "en"


def test_mix_summary_counts_tokens(lid_frame, params, mixes, tokenizer_dir):
    from transformers import AutoTokenizer

    out = build_mixes(lid_frame, params, mixes)
    summary = summarise_mixes(tokenizer_dir, **out).set_index("mix")
    assert summary.loc["multi3", "rows"] == 20
    assert summary.loc["multi3", "n_languages"] == 3
    assert summary.loc["multi3", "languages"] == "en,es,ru"
    assert json.loads(summary.loc["multi3", "lang_counts"]) == {"en": 14, "es": 3, "ru": 3}
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in out["mono"]["text"]]
    assert summary.loc["mono", "mean_tokens"] == pytest.approx(sum(lengths) / len(lengths))
    assert summary.loc["mono", "total_tokens"] == sum(lengths)


# ---------------------------------------------------------------- real Guanaco rows


@pytest.fixture(scope="module")
def real_lid(request):
    from .conftest import GUANACO_EVAL

    if not GUANACO_EVAL.is_file():
        pytest.skip(f"real Guanaco file not found at {GUANACO_EVAL}")
    raw = HubOrLocalDataset(source=str(GUANACO_EVAL)).load()
    parsed, rejected = parse_guanaco_rows(raw, make_params())
    return raw, parsed, rejected, identify_languages(parsed, make_params())


def test_real_guanaco_parse_and_lid(real_lid):
    raw, parsed, rejected, lid = real_lid
    assert len(raw) == 518
    assert len(parsed) + len(rejected) == 518
    assert len(parsed) > 500  # unanswered trailing Human turns are kept
    assert lid["id"].is_unique and lid["id"].str.fullmatch(r"g\d{5}").all()
    assert lid["lid_confidence"].between(0, 1).all()
    assert (lid["keep"] == (lid["lid_confidence"] >= 0.8)).all()
    assert 0 < (~lid["keep"]).sum() < len(lid)
    counts = lid.loc[lid["keep"], "lang"].value_counts()
    assert {"en", "es", "ru", "de", "zh", "fr"} <= set(counts.index)
    assert counts.index[0] in {"es", "en"}  # the eval split is mostly Spanish and English


def test_real_guanaco_mixes(real_lid, mixes):
    lid = real_lid[3]
    kept = lid.loc[lid["keep"], "lang"].value_counts()
    per = int(min(kept[["es", "ru", "de", "zh", "fr"]]))
    params = make_params(total_size=int(kept["en"]), per_language=per)
    out = build_mixes(lid, params, mixes)
    assert len(out["mono"]) == kept["en"]
    assert out["multi6"]["lang"].value_counts().to_dict() == {
        "en": int(kept["en"]) - 5 * per, **{lang: per for lang in ["es", "ru", "de", "zh", "fr"]}
    }
    with pytest.raises(ShortSupplyError, match=r"'en' examples: need"):
        build_mixes(lid, make_params(total_size=int(kept["en"]) + 1, per_language=per), mixes)
