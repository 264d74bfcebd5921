"""Fixtures for the translation tests: a scripted 'translator' server and tiny inputs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ (for llm_server)

from llm_server import LLMTestServer  # noqa: E402

_PROMPT = re.compile(r'Original: "(.*)"\n\nTranslation into (.+):$', re.S)
_GUANACO = re.compile(r"Original: \n\n(.*)\n\nTranslation into (.+):$", re.S)


def fake_translator(body: dict) -> str:
    """Tags the text with the target language; breaks role tokens on request (by marker words)."""
    user = body["messages"][-1]["content"]
    m = _GUANACO.search(user)
    if m:
        text, lang = m.groups()
        out = text.replace("<S1> ", f"<S1> [{lang}] ", 1)
        if "BREAK_ONCE" in text and body.get("seed") == 42:
            out = out.replace("<S2>", "", 1)
        if "BREAK_ALWAYS" in text:
            out = out + " <S1> again"
        if "REORDER" in text:
            out = out.replace("<S1>", "@@").replace("<S2>", "<S1>").replace("@@", "<S2>")
        return out
    m = _PROMPT.search(user)
    assert m, f"unexpected request: {user[:200]}"
    text, lang = m.groups()
    return f'"[{lang}] {text}"'


@pytest.fixture
def translator_server():
    with LLMTestServer(responder=fake_translator) as server:
        yield server


@pytest.fixture
def llm_endpoints(translator_server, tmp_path):
    return {
        "translator": {
            "backend": "openai", "model": "gpt-test", "base_url": translator_server.base_url,
            "max_concurrency": 4,
            "cache_dir": str(tmp_path / "llm_cache"),
        }
    }  # fmt: skip


@pytest.fixture
def translation_params():
    return {"prompt_languages": ["de", "el"], "eval_languages": ["en", "de", "el", "fr"]}


@pytest.fixture
def chat_prompts_raw():
    return pd.DataFrame(
        {
            "id": ["p1", "p2", "p3", "f1"],
            "lang": ["en", "en", "en", "fr"],
            "instruction": ["Name three colours.", "What is 2+2?", "Write a haiku.", "Nomme trois couleurs."],
        }
    )
