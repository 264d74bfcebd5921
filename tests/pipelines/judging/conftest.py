"""Judging fixtures: tiny generations and a local OpenAI-compatible judge server."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ (for llm_server)

from llm_server import LLMTestServer  # noqa: E402

_SUBMISSION = re.compile(r"\[Submission\]: (.*?)\n\*\*\*\n\[Criterion\]", re.S)

# (item_id, lang, instruction, response, scripted judge reply)
CHAT = [
    ("c1", "en", "Explain why the sky is blue in two sentences.",
     "The sky looks blue because air molecules scatter short blue wavelengths of sunlight more than red ones.",
     '{"reasoning": "Clear and correct.", "score": 4}'),
    ("c2", "en", "Give me three tips for staying healthy during the winter.",
     "Drink water, sleep well and go for a walk every day.",
     'Sure! Here is my evaluation:\n```json\n{"reasoning": "Useful tips.", "score": 5}\n```\nI hope this helps.'),
    ("c3", "en", "Name the capital of France and describe it briefly.",
     "Paris is the capital of France and its largest city.",
     '{"score": 2, "reasoning": "The response is correct but very sh'),
    ("c4", "en", "What is the boiling point of water at sea level?",
     "Water boils at one hundred degrees Celsius at sea level.",
     '{"reasoning": "Perfect.", "score": 7}'),
    ("c5", "en", "Write a short poem about the autumn rain.",
     "The rain falls softly on the golden leaves of autumn.",
     '{"reasoning": "Nice.", "score": "5"}'),
    ("c6", "en", "How many legs does a spider have?",
     "A spider has eight legs.",
     "This response is accurate and concise, I would call it helpful."),
    ("d1", "de", "Erkläre bitte, warum der Himmel blau ist.",
     "The sky is blue because the air in the atmosphere scatters the blue part of sunlight.",
     '{"reasoning": "Helpful, but in English.", "score": 5}'),
    ("d2", "de", "Wie kocht man eine gute Tomatensuppe?",
     "Der Himmel ist blau, weil die Luftmoleküle das kurzwellige blaue Licht stärker streuen als das rote.",
     '{"reasoning": "Irrelevant.", "score": 1}'),
]
NULL = json.dumps(None)
OPTIONS = json.dumps(["town", "michigan", "sea", "car", "shop"])
REPLIES = {response: reply for _, _, _, response, reply in CHAT}
assert len(REPLIES) == len(CHAT), "scripted replies are keyed by the response: keep responses distinct"


def submission(body: dict) -> str:
    """The response the judge is asked about (or the text to translate)."""
    content = str(body["messages"][-1]["content"])
    m = _SUBMISSION.search(content)
    return m.group(1) if m else content


def judge_responder(body: dict) -> str:
    content = str(body["messages"][-1]["content"])
    if content.startswith("Translate the following text into English."):
        return "EN: " + content.rsplit("\n\n", 1)[1]
    sub = submission(body)
    return REPLIES.get(sub, REPLIES.get(sub.removeprefix("EN: "), '{"reasoning": "default", "score": 3}'))


@pytest.fixture
def judge_server():
    """The local judge server with scripted replies keyed by the judged response."""
    with LLMTestServer(responder=judge_responder, key_fn=submission) as server:
        yield server


@pytest.fixture
def llm_endpoints(judge_server, tmp_path):
    """``params:llm_endpoints`` pointing judge and translator at ``judge_server``."""
    common = {
        "backend": "openai",
        "base_url": judge_server.base_url,
        "max_concurrency": 2,
        "max_retries": 0,
        "timeout_s": 5,
        "cache_dir": str(tmp_path / "llm_cache"),
    }
    return {"judge": {**common, "model": "judge-model"}, "translator": {**common, "model": "mt-model"}}


def make_generations(mix: str = "mono", seeds: tuple[int, ...] = (0,)) -> pd.DataFrame:
    """Chat, XQuAD and X-CSQA rows in the ``generations`` contract (``contracts.GENERATION_REQUIRED``)."""
    rows = []
    for seed in seeds:
        for item_id, lang, instruction, response, _ in CHAT:
            rows.append(dict(task="chat", lang=lang, prompt_setting="native", item_id=item_id,
                             prompt=f"### Human: {instruction}### Assistant:", output=response,
                             question=instruction, options=NULL, reference=NULL))
        rows += [
            dict(task="xquad", lang="en", prompt_setting="en:en", item_id="q1",
                 prompt="### Human: Answer.\n\nPassage:\n\nThe defence allowed 308 points.\n\nQuestion:\n\n"
                        "How many points did the defence allow?\n\nNote: quote it.### Assistant: "
                        'Based on the passage, the answer to the question is "',
                 output='How many points did the defence allow?\n308" points',
                 question="How many points did the defence allow? ", options=NULL,
                 reference=json.dumps(["308", "308 points"])),
            dict(task="xquad", lang="zh", prompt_setting="en:zh", item_id="q2", prompt="### Human: ...### Assistant:",
                 output="北京。”\n", question="这所大学在哪里？", options=NULL,
                 reference=json.dumps(["北京大学"], ensure_ascii=False)),
            dict(task="xcsqa", lang="en", prompt_setting="en:en", item_id="x1", prompt="### Human: ...### Assistant: \"",
                 output='C"', question="Where do eagles live?", options=OPTIONS, reference=json.dumps("C")),
            dict(task="xcsqa", lang="en", prompt_setting="en:en", item_id="x2", prompt="### Human: ...### Assistant: \"",
                 output="none of these", question="Where is Ann Arbor?", options=OPTIONS,
                 reference=json.dumps(["B", "michigan"])),
        ]
        for r in rows[-len(CHAT) - 4 :]:
            r.update(seed=seed)
    df = pd.DataFrame(rows)
    df.insert(0, "mix", mix)
    df.insert(0, "model", "tiny_llama")
    return df


def make_xnli(seeds: tuple[int, ...] = (0,)) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        rows += [
            dict(task="xnli", lang="de", item_id="n1", seed=seed, pred="entailment", gold="entailment"),
            dict(task="xnli", lang="de", item_id="n2", seed=seed, pred="neutral", gold="contradiction"),
            dict(task="xnli", lang="en", item_id="n3", seed=seed, pred=None, gold="neutral"),
        ]
    return pd.DataFrame(rows)


@pytest.fixture
def generations() -> pd.DataFrame:
    return make_generations()


@pytest.fixture
def judging_params() -> dict:
    return {"chat": {"mode": "direct", "n_items": None, "sample_seed": 42}}
