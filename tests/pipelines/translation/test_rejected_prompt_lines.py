"""A chat prompt line the loader rejects (``on_bad_line: reject``) is skipped with a warning naming file and line."""

from __future__ import annotations

import logging

from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset
from polyglot_kedro.pipelines.translation.nodes import assemble_chat_prompts

TRANSLATION = {"source_lang": "en", "prompt_languages": [], "eval_languages": ["en", "hi"],
               "language_names": {"en": "English", "hi": "Hindi"}}  # fmt: skip


def test_a_rejected_line_of_one_language_is_skipped_and_logged(tmp_path, caplog):
    en = tmp_path / "test_en.jsonl"
    hi = tmp_path / "test_hi.jsonl"
    en.write_text('{"id": "a", "prompt": "Hi"}\n{"id": "b", "prompt": "Bye"}\n', encoding="utf-8")
    hi.write_text('{"id": "a", "prompt": "नमस्ते"}\n{"id": "b", "prompt": "अलविदा""}\n', encoding="utf-8")
    raw = HubOrLocalDataset(source={"en": str(en), "hi": {"source": str(hi), "on_bad_line": "reject"}},
                            rename={"prompt": "instruction"}).load()  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="polyglot_kedro.pipelines.translation.nodes"):
        out = assemble_chat_prompts(raw, {}, TRANSLATION)
    assert out[["lang", "id"]].values.tolist() == [["en", "a"], ["en", "b"], ["hi", "a"]]
    assert out["instruction"].notna().all()
    assert f"{hi}, line 2: invalid JSON" in caplog.text
