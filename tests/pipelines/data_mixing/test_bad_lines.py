"""One bad line does not stop a Guanaco source: it is a rejected row naming its line (issue 15)."""

from __future__ import annotations

import pytest
from kedro.io.core import DatasetError

from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset
from polyglot_kedro.pipelines.data_mixing.nodes import parse_guanaco_rows

from .conftest import make_params

GOOD = '{"text": "### Human: Hi there### Assistant: Hello!"}'


def _source(tmp_path, lines):
    path = tmp_path / "guanaco.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_truncated_line_list_line_and_misspelt_field_are_rejected_rows(tmp_path):
    src = _source(tmp_path, [GOOD, '{"text": "### Human: cut', GOOD, '["a", "list"]', '{"txt": "### Human: a### Assistant: b"}', GOOD])
    raw = HubOrLocalDataset(source=src, on_bad_line="reject").load()
    parsed, rejected = parse_guanaco_rows(raw, make_params())
    # Ids follow the source rows, so a bad line shifts no later id.
    assert parsed["id"].tolist() == ["g00000", "g00002", "g00005"]
    reasons = dict(zip(rejected["row"], rejected["reason"]))
    assert sorted(reasons) == [1, 3, 4]
    assert reasons[1].startswith("line 2: invalid JSON (") and "column" in reasons[1]
    assert reasons[3] == "line 4: expected a JSON object, got list"
    assert reasons[4] == "line 5: missing or null field 'text' (the row has: txt)"


def test_error_policy_stops_at_the_first_bad_line_naming_file_and_line(tmp_path):
    src = _source(tmp_path, [GOOD, '{"text": "### Human: cut'])
    with pytest.raises(DatasetError, match=r"guanaco\.jsonl, line 2: invalid JSON"):
        HubOrLocalDataset(source=src).load()
    with pytest.raises(DatasetError, match="on_bad_line must be"):
        HubOrLocalDataset(source=src, on_bad_line="skip")


def test_the_embedded_guanaco_source_rejects_bad_lines():
    from pathlib import Path

    import yaml

    catalog = yaml.safe_load((Path(__file__).resolve().parents[3] / "conf" / "base" / "catalog_raw.yml").read_text())
    assert catalog["guanaco_raw"]["on_bad_line"] == "reject"
