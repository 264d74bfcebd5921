"""The data_mixing pipeline, run with SequentialRunner on an in-memory catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset
from polyglot_kedro.pipelines.data_mixing import create_pipeline

from .conftest import GUANACO_EVAL, make_params

REPO = Path(__file__).resolve().parents[3]
GRID = {
    "mono": {"kind": "mono"},
    "multi2": {"kind": "multi", "n_languages": 2},
    "multi3": {"kind": "multi", "n_languages": 3},
    "guanaco": {"kind": "full"},
    "mt_multi3": {"kind": "multi", "n_languages": 3, "source": "mt"},
    "base": {"kind": "untuned"},
}


def test_pipeline_nodes_follow_the_grid():
    native_only = create_pipeline(mixes={k: v for k, v in GRID.items() if v.get("source") != "mt"})
    names = {n.name for n in native_only.nodes}
    assert "select_mt_sources" not in names and "guanaco_translations" not in native_only.inputs()
    full = create_pipeline(mixes=GRID)
    assert {"select_mt_sources", "build_mt_mixes"} <= {n.name for n in full.nodes}
    assert {f"{m}.train_mix" for m in ("mono", "multi2", "multi3", "guanaco", "mt_multi3")} <= full.all_outputs()
    assert "base.train_mix" not in full.all_outputs()
    with pytest.raises(ValueError, match="mix 'bad'"):
        create_pipeline(mixes={"bad": {"kind": "mono", "source": "mt"}})


def test_pipeline_runs_on_real_guanaco(tmp_path, tokenizer_dir):
    if not GUANACO_EVAL.is_file():
        pytest.skip(f"real Guanaco file not found at {GUANACO_EVAL}")
    ids = [f"g{i:05d}" for i in range(518)]
    translations = pd.DataFrame(
        [
            {"id": f"{i}-{lang}", "source_id": i, "lang": lang, "text": f"### Human: [{lang}]### Assistant: ok",
             "status": "ok"}
            for i in ids
            for lang in ("es", "ru")
        ]
    )
    catalog = DataCatalog(
        {
            "guanaco_raw": HubOrLocalDataset(source=str(GUANACO_EVAL)),
            "guanaco_translations": MemoryDataset(translations),
            "base_model": MemoryDataset(tokenizer_dir),
            "params:data_mixing": MemoryDataset(make_params(total_size=20, per_language=3)),
            "params:mixes": MemoryDataset(GRID),
        }
    )
    pipe = create_pipeline(mixes=GRID)
    # outputs go to files as in conf/base/catalog_data_mixing.yml (paths under tmp_path):
    # the runner releases in-memory intermediates, and this checks the catalog entries too
    conf = yaml.safe_load((REPO / "conf" / "base" / "catalog_data_mixing.yml").read_text())
    files = DataCatalog.from_config(
        {k: {**v, "filepath": str(tmp_path / v["filepath"])} for k, v in conf.items()}
    )
    for name in pipe.all_outputs():
        catalog[name] = files.get(name)
    SequentialRunner().run(pipe, catalog)
    sizes = {m: len(catalog[f"{m}.train_mix"].load()) for m in ("mono", "multi2", "multi3", "mt_multi3")}
    assert sizes == {"mono": 20, "multi2": 20, "multi3": 20, "mt_multi3": 20}
    lid = catalog["guanaco_lid"].load()
    assert len(catalog["guanaco_rejected"].load()) + len(lid) == 518
    assert len(catalog["guanaco.train_mix"].load()) == int(lid["keep"].sum())
    mt3 = catalog["mt_multi3.train_mix"].load()
    assert mt3.groupby(["lang", "source"]).size().to_dict() == {("en", "native"): 14, ("es", "mt"): 3, ("ru", "mt"): 3}
    summary = catalog["mix_summary"].load().set_index("mix")
    assert summary.loc["mt_multi3", "mt_rows"] == 6 and summary.loc["multi3", "languages"] == "en,es,ru"
    dist = catalog["language_distribution"].load()
    assert dist["count_all"].sum() == len(lid)


def test_catalog_entries_resolve():
    loader = OmegaConfigLoader(
        conf_source=str(REPO / "conf"), base_env="base", default_run_env="local", env="local",
        config_patterns={"catalog": ["catalog_raw*", "catalog_data_mixing*"]},
    )
    catalog = DataCatalog.from_config(loader["catalog"])
    raw = catalog["guanaco_raw"]
    assert isinstance(raw, HubOrLocalDataset)
    assert raw._describe()["source"] == "data/01_raw/demo/guanaco_demo.jsonl"
    mix = catalog["multi2.train_mix"]
    assert type(mix).__name__ == "ParquetDataset"
    assert "05_model_input/train_mix/multi2.parquet" in str(mix._describe()["filepath"])
    for name in ("guanaco_parsed", "guanaco_rejected", "guanaco_lid", "mt_source_examples",
                 "language_distribution", "mix_summary", "xquad_raw", "xnli_raw", "xcsqa_raw", "chat_prompts_raw"):
        assert name in catalog


def test_params_files_validate():
    from polyglot_kedro.pipelines.data_mixing.params import DataMixingParams

    for env in ("base", "paper"):
        loader = OmegaConfigLoader(conf_source=str(REPO / "conf"), base_env="base", default_run_env=env, env=env,
                                   config_patterns={"parameters": ["parameters_data_mixing*"]})
        cfg = DataMixingParams.model_validate(loader["parameters"]["data_mixing"])
        assert cfg.mixing.total_size == (3200 if env == "paper" else 40)


def test_demo_guanaco_supports_demo_grid(mixes):
    path = REPO / "data" / "01_raw" / "demo" / "guanaco_demo.jsonl"
    if not path.is_file():
        pytest.skip(f"demo file not yet present: {path}")
    from polyglot_kedro.pipelines.data_mixing.mixes import build_mixes
    from polyglot_kedro.pipelines.data_mixing.nodes import (
        identify_languages,
        parse_guanaco_rows,
    )

    loader = OmegaConfigLoader(conf_source=str(REPO / "conf"), base_env="base", default_run_env="local",
                               config_patterns={"parameters": ["parameters_data_mixing*"]})
    params = loader["parameters"]["data_mixing"]
    parsed, _ = parse_guanaco_rows(HubOrLocalDataset(source=str(path)).load(), params)
    out = build_mixes(identify_languages(parsed, params), params, mixes)
    assert all(len(out[f"multi{i}"]) == params["mixing"]["total_size"] for i in range(2, 7))
