"""HubOrLocalDataset: local formats, errors, read-only, the Hub branch."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ROWS = [{"id": "x1", "lang": "de", "instruction": "Sag hallo"}, {"id": "x2", "lang": "en", "instruction": "Say hi"}]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_roundtrip_of_written_rows(tmp_path):
    ds = HubOrLocalDataset(source=str(_write_jsonl(tmp_path / "p.jsonl", ROWS)))
    pd.testing.assert_frame_equal(ds.load(), pd.DataFrame(ROWS))
    assert ds.exists()


def test_broken_jsonl_line_is_named(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", ROWS)
    path.write_text(path.read_text() + '{"id": "x3", "lang": \n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"p\.jsonl, line 3: invalid JSON"):
        HubOrLocalDataset(source=str(path)).load()


def test_json_array_and_json_lines_in_json_suffix(tmp_path):
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps(ROWS), encoding="utf-8")
    pd.testing.assert_frame_equal(HubOrLocalDataset(source=str(arr)).load(), pd.DataFrame(ROWS))
    lines = _write_jsonl(tmp_path / "l.json", ROWS)
    pd.testing.assert_frame_equal(HubOrLocalDataset(source=str(lines)).load(), pd.DataFrame(ROWS))


def test_tsv_with_names(tmp_path):
    path = tmp_path / "dev-de.tsv"
    path.write_text('Er "schläft".\tEr ist wach.\tcontradiction\nA\tB\tneutral\n', encoding="utf-8")
    ds = HubOrLocalDataset(source=str(path), load_args={"names": ["premise", "hypothesis", "label"]})
    df = ds.load()
    assert df.to_dict("records")[0] == {"premise": 'Er "schläft".', "hypothesis": "Er ist wach.", "label": "contradiction"}
    assert len(df) == 2


def test_squad_flattened(tmp_path):
    squad = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Bern is the capital.", "qas": [
            {"id": "q1", "question": "Capital?", "answers": [{"answer_start": 0, "text": "Bern"}]}]}]}]}
    path = tmp_path / "xquad.de.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    df = HubOrLocalDataset(source=str(path), format="squad").load()
    assert df.to_dict("records") == [
        {"id": "q1", "title": "T", "context": "Bern is the capital.", "question": "Capital?", "answers": ["Bern"]}
    ]
    path.write_text(json.dumps({"data": [{"paragraphs": [{"qas": [{"id": "q", "question": "?", "answers": []}]}]}]}), encoding="utf-8")
    with pytest.raises(DatasetError, match="missing field 'context'"):
        HubOrLocalDataset(source=str(path), format="squad").load()


def test_read_only_and_describe(tmp_path):
    ds = HubOrLocalDataset(source=str(_write_jsonl(tmp_path / "p.jsonl", ROWS)), revision="abc")
    with pytest.raises(DatasetError, match="read-only"):
        ds.save(pd.DataFrame(ROWS))
    assert ds._describe()["revision"] == "abc"
    with pytest.raises(DatasetError, match="unknown format"):
        HubOrLocalDataset(source="x", format="csv")
    odd = tmp_path / "p.txt"
    odd.write_text("x")
    with pytest.raises(DatasetError, match="cannot infer format"):
        HubOrLocalDataset(source=str(odd)).load()


def test_hub_branch_calls_load_dataset(monkeypatch):
    import datasets

    calls = {}

    def fake_load_dataset(source, **kwargs):
        calls.update(source=source, **kwargs)
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = HubOrLocalDataset(source="org/some-dataset", split="test", revision="r1", load_args={"name": "de"})
    pd.testing.assert_frame_equal(ds.load(), pd.DataFrame(ROWS))
    assert calls == {"source": "org/some-dataset", "split": "test", "revision": "r1", "name": "de"}
    assert not ds.exists()


def test_hub_failure_is_a_dataset_error(monkeypatch):
    import datasets

    def fail(source, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(DatasetError, match="not a local file and could not be loaded from the Hub"):
        HubOrLocalDataset(source="org/missing").load()


def test_real_shared_files():
    guanaco = SHARED / "guanaco" / "openassistant_best_replies_eval.jsonl"
    xquad = SHARED / "xquad" / "xquad.de.json"
    if not (guanaco.is_file() and xquad.is_file()):
        pytest.skip(f"shared data not found under {SHARED}")
    g = HubOrLocalDataset(source=str(guanaco)).load()
    assert len(g) == 518 and list(g.columns) == ["text"]
    x = HubOrLocalDataset(source=str(xquad), format="squad").load()
    assert len(x) == 1190 and x["id"].is_unique and x["answers"].map(len).min() >= 1


# --------------------------------------------------------------------------- per-language sources


def test_per_language_files_get_lang_and_parallel_ids(tmp_path):
    for lang, word in (("en", "Hello"), ("de", "Hallo")):
        (tmp_path / f"p_{lang}.jsonl").write_text(
            "\n".join(json.dumps({"prompt": f"{word} {i}"}) for i in range(3)) + "\n", encoding="utf-8"
        )
    ds = HubOrLocalDataset(
        source={"en": str(tmp_path / "p_en.jsonl"), "de": str(tmp_path / "p_de.jsonl")},
        rename={"prompt": "instruction"},
    )
    data = ds.load()
    assert list(data.columns) == ["id", "lang", "instruction"]
    assert data["lang"].tolist() == ["en"] * 3 + ["de"] * 3
    assert data.groupby("lang")["id"].apply(list).to_dict() == {"de": ["00000", "00001", "00002"],
                                                                 "en": ["00000", "00001", "00002"]}
    assert ds.exists()


def test_value_map_recodes_and_names_unmapped_values(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"label": 0}\n{"label": 2}\n', encoding="utf-8")
    mapping = {"label": {0: "entailment", 1: "neutral", 2: "contradiction"}}
    assert HubOrLocalDataset(source=str(path), value_map=mapping).load()["label"].tolist() == [
        "entailment", "contradiction"]
    path.write_text('{"label": 0}\n{"label": 7}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"column 'label' has values \['7'\] not in value_map"):
        HubOrLocalDataset(source=str(path), value_map=mapping).load()
    with pytest.raises(DatasetError, match="rename names missing column"):
        HubOrLocalDataset(source=str(path), rename={"nope": "x"}).load()


def test_per_language_hub_configs_and_squad_answers(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(source, **kwargs):
        calls.append((source, kwargs))
        lang = kwargs["name"].split(".")[-1]
        return datasets.Dataset.from_list([{"id": f"q-{lang}", "context": "c", "question": "q",
                                            "answers": {"text": ["a", "b"], "answer_start": [0, 2]}}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    hub = {"source": "google/xquad", "split": "validation", "format": "squad"}
    ds = HubOrLocalDataset(source={lang: {**hub, "load_args": {"name": f"xquad.{lang}"}} for lang in ("en", "de")})
    data = ds.load()
    assert data["lang"].tolist() == ["en", "de"] and data["id"].tolist() == ["q-en", "q-de"]
    assert data["answers"].tolist() == [["a", "b"], ["a", "b"]]
    assert [c[1]["name"] for c in calls] == ["xquad.en", "xquad.de"]
    assert all(c[1]["split"] == "validation" for c in calls)


def test_real_xquad_and_xnli_files_per_language(shared_data):
    xquad = HubOrLocalDataset(
        source={lang: str(shared_data / "xquad" / f"xquad.{lang}.json") for lang in ("en", "de")}, format="squad"
    ).load()
    assert xquad.groupby("lang").size().to_dict() == {"de": 1190, "en": 1190}
    assert set(xquad.columns) >= {"id", "lang", "context", "question", "answers"}
    xnli = HubOrLocalDataset(
        source={lang: str(shared_data / "xnli" / f"dev-{lang}.tsv") for lang in ("en", "bg")},
        load_args={"names": ["premise", "hypothesis", "label"]},
    ).load()
    assert xnli.groupby("lang").size().to_dict() == {"bg": 2490, "en": 2490}
    assert set(xnli["label"]) == {"entailment", "neutral", "contradiction"}
    assert xnli[xnli["lang"] == "en"]["id"].tolist() == xnli[xnli["lang"] == "bg"]["id"].tolist()


# --------------------------------------------------------------------------- URLs (fsspec)


@pytest.fixture
def http_dir(tmp_path):
    """A real local HTTP server over ``tmp_path``; yields its base URL."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # keep test output quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_per_language_urls_load_like_local_files(http_dir):
    # The paper's AlpacaEval translations are JSON lines named .json, one file per language.
    folder, base = http_dir
    for lang, word in (("en", "Say hi"), ("de", "Sag hallo")):
        _write_jsonl(folder / f"alpaca_eval_instructions_{lang}.json", [{"instruction": f"{word} {i}"} for i in range(3)])
    source = {lang: f"{base}/alpaca_eval_instructions_{lang}.json" for lang in ("en", "de")}
    ds = HubOrLocalDataset(source=source)
    frame = ds.load()
    assert frame["lang"].tolist() == ["en"] * 3 + ["de"] * 3
    assert frame["id"].tolist() == ["00000", "00001", "00002"] * 2
    assert frame.loc[frame["lang"] == "de", "instruction"].tolist() == [f"Sag hallo {i}" for i in range(3)]
    assert ds.exists()
    assert not HubOrLocalDataset(source=f"{base}/missing.json").exists()


def test_url_errors_name_the_url_and_line(http_dir):
    import fsspec

    folder, base = http_dir
    (folder / "bad.jsonl").write_text('{"instruction": "ok"}\n{"instruction": \n', encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"{base}/bad\.jsonl, line 2: invalid JSON"):
        HubOrLocalDataset(source=f"{base}/bad.jsonl").load()
    with pytest.raises(DatasetError, match=rf"{base}/absent\.jsonl: cannot read"):
        HubOrLocalDataset(source=f"{base}/absent.jsonl").load()
    with fsspec.open("memory://hub-or-local/rows.tsv", "wb") as fh:
        fh.write(b"premise\thypothesis\nA\tB\n")
    frame = HubOrLocalDataset(source="memory://hub-or-local/rows.tsv").load()
    assert frame.to_dict("records") == [{"premise": "A", "hypothesis": "B"}]
