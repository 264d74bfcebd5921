"""docs/FIDELITY.md, conf/paper/fidelity.yml and the resolved environments agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polyglot_kedro import fidelity
from polyglot_kedro.config import mix_specs

REPO = Path(__file__).resolve().parents[1]
SHARED_ML1 = REPO / ".." / "shared" / "data" / "guanaco" / "ml1_ids"


@pytest.fixture(scope="module")
def entries():
    return fidelity.load_entries()


@pytest.fixture(scope="module")
def configs():
    # "local" is what a plain `kedro run` resolves: conf/base (conf/local holds no parameters).
    return {"paper": fidelity.resolve_config("paper"), "base": fidelity.resolve_config("local"),
            "demo": fidelity.resolve_config("demo")}


def test_every_listed_value_is_what_the_environments_resolve(entries, configs):
    assert fidelity.mismatches(entries, configs) == []
    assert sum(e.key is not None for e in entries) >= 30


def test_a_wrong_or_undeclared_value_is_reported(entries, configs):
    batch = next(e for e in entries if e.key == "finetuning.effective_batch_size")
    wrong = batch.model_copy(update={"paper": 64})
    assert fidelity.mismatches([wrong], configs) == [
        "Effective batch size: conf/paper finetuning.effective_batch_size = 16, listed: 64"
    ]
    undeclared = batch.model_copy(update={"base": fidelity.missing(), "demo": fidelity.missing()})
    assert fidelity.mismatches([undeclared], configs) == [
        "Effective batch size: conf/base finetuning.effective_batch_size = 4, not listed, so expected as "
        "conf/paper: 16",
        "Effective batch size: conf/demo finetuning.effective_batch_size = 4, not listed, so expected as "
        "conf/base: 16",
    ]
    typo = batch.model_copy(update={"key": "finetuning.effective_batch"})
    assert fidelity.mismatches([typo], configs) == [
        "Effective batch size: 'finetuning.effective_batch' is not set in conf/paper"
    ]


def test_the_document_is_rendered_from_the_list(entries):
    doc = fidelity.DOC_FILE.read_text(encoding="utf-8")
    assert fidelity.generated_block(doc) == fidelity.render_tables(entries), (
        "docs/FIDELITY.md is stale: run `python -m polyglot_kedro.fidelity`"
    )


def test_pending_and_divergent_entries_say_why(entries):
    for e in entries:
        assert e.why.strip() and e.code.strip() and e.text.strip(), e.topic
        if e.status == "pending":
            assert e.why, e.topic


def test_paper_params_validate(configs):
    from polyglot_kedro.pipelines.data_mixing.params import DataMixingParams
    from polyglot_kedro.pipelines.finetuning.params import FinetuningParams

    params = configs["paper"]["parameters"]
    specs = mix_specs(params["mixes"])
    order = params["data_mixing"]["mixing"]["language_order"]
    assert specs["loo_ca"].added_languages(order, "loo_ca") == ["es", "ru", "de", "zh", "fr"]
    assert specs["multi6"].added_languages(order, "multi6") == ["es", "ru", "de", "zh", "fr"]
    DataMixingParams.model_validate(params["data_mixing"])
    ft = FinetuningParams.model_validate(params["finetuning"])
    assert (ft.effective_batch_size, ft.per_device_batch_size) == (16, 4)


def test_the_mono_id_list_is_the_released_file_at_a_pinned_commit(configs):
    ids_file = configs["paper"]["parameters"]["mixes"]["mono"]["ids_file"]
    assert re.fullmatch(
        r"https://raw\.githubusercontent\.com/ZurichNLP/multilingual-instruction-tuning/[0-9a-f]{40}/data/guanaco/ml1_ids",
        ids_file,
    ), ids_file
    if not SHARED_ML1.is_file():
        pytest.skip(f"released ml1_ids not found at {SHARED_ML1}")
    # ../shared/data/README.md names the commit its copy was taken at: the same one.
    readme = (SHARED_ML1.parents[1] / "README.md").read_text(encoding="utf-8")
    commit = ids_file.split("/")[5]
    assert f"ml1_ids @ {commit}" in readme


def test_chat_prompts_are_the_papers_files_at_pinned_commits(configs):
    sources = configs["paper"]["globals"]["sources"]["chat_prompts"]
    langs = configs["paper"]["parameters"]["translation"]["eval_languages"]
    assert sorted(sources) == sorted(langs)
    pinned = re.compile(
        r"^https://raw\.githubusercontent\.com/ZurichNLP/multilingual-instruction-tuning/[0-9a-f]{40}/"
        r"data/(alpaca_eval/)?alpaca_eval_instructions_(?P<lang>[a-z]+)\.json$"
    )
    for lang, spec in sources.items():
        match = pinned.match(spec["source"])
        assert match and match["lang"] == lang, (lang, spec)
    assert configs["paper"]["parameters"]["translation"]["prompt_languages"] == []
