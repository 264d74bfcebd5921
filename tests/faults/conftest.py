"""Fixtures of the cross-stage fault-injection suite.

Each test records its figures (faults injected, items completed, requests
re-sent without a fault, requests possibly billed twice, items lost, ...) with
the ``fault_figures`` fixture. When the
environment variable ``POLYGLOT_FAULT_FIGURES`` names a file, the figures of
the whole session are written there as JSON at the end (``benchmarks/run_all.py``
reads them into the benchmark table).
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for llm_server)

from llm_server import LLMTestServer  # noqa: E402

FAULT_KINDS = ("429", "500", "timeout", "malformed")
# Faults after which the provider may have done -- and billed -- the work: the
# server goes on generating after the client's timeout, and a 200 with a broken
# body was answered. 429 and 5xx are refusals (not billed by OpenAI).
BILLABLE_FAULTS = frozenset({"timeout", "malformed"})
FIGURES_ENV = "POLYGLOT_FAULT_FIGURES"
FAKE_KEY = "sk-fault-SECRET-42"

_FIGURES: dict[str, dict] = {}


@pytest.fixture(scope="session", autouse=True)
def _write_fault_figures():
    """Write every recorded figure to ``$POLYGLOT_FAULT_FIGURES`` after the session."""
    yield
    target = os.environ.get(FIGURES_ENV)
    if target:
        Path(target).write_text(json.dumps(_FIGURES, indent=2, sort_keys=True), encoding="utf-8")


@pytest.fixture
def fault_figures(request):
    """``record(**figures)``: store this test's figures under its node name."""

    def record(**figures) -> None:
        _FIGURES.setdefault(request.node.name, {}).update(figures)

    return record


class RandomFaults(dict):
    """A fault plan for keys not known in advance (``LLMTestServer.faults`` stand-in).

    The first time the server looks a key up, it gets a plan: with probability
    ``rate`` one fault (kinds drawn in turn from ``kinds``), else none. Plans
    are remembered, so ``planned[key]`` tells how many faults that key got.
    """

    def __init__(self, rate: float, seed: int, kinds: tuple[str, ...] = FAULT_KINDS):
        super().__init__()
        self.rate = rate
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.planned: dict[str, int] = {}
        self.plans: dict[str, list[str]] = {}  # what each key was planned (the server consumes its own list)
        self._next = 0

    def get(self, key, default=None):  # called by the server under its lock
        if key not in self.planned:
            plan = []
            if self.rng.random() < self.rate:
                plan = [self.kinds[self._next % len(self.kinds)]]
                self._next += 1
            self.planned[key] = len(plan)
            self.plans[key] = list(plan)
            self[key] = plan
        return super().get(key, default)


def billing_figures(counts: dict[str, int], plans: dict[str, list[str]]) -> dict[str, int]:
    """How many requests were sent again without a fault, and how many were possibly billed twice.

    The server's fault plans are consumed in order, so key ``k``'s first
    ``len(plans[k])`` requests got those faults. A request beyond one per fault
    plus the final one is a re-send without a fault (billed twice for sure); a
    billable fault (``BILLABLE_FAULTS``) followed by another request is a
    retry the provider may have billed on top of the first attempt.

    Args:
        counts: requests the server received per key.
        plans: the faults planned per key, as planned (not the server's consumed lists).

    Returns:
        ``{"resent_without_fault": ..., "possibly_billed_twice": ...}``; the second includes the first.
    """
    resent = billed_twice = 0
    for key, n in counts.items():
        faulted = list(plans.get(key) or [])[:n]
        extra = max(0, n - len(faulted) - 1)
        resent += extra
        billed_twice += extra + sum(1 for kind in faulted[: n - 1] if kind in BILLABLE_FAULTS)
    return {"resent_without_fault": resent, "possibly_billed_twice": billed_twice}


def chat_generations(n_per_lang: int, langs: tuple[str, ...] = ("en", "de"), mix: str = "mono") -> pd.DataFrame:
    """``generations`` rows (chat only) with distinct prompts and responses."""
    texts = {
        "en": ("Explain item {i}: why is the sky blue at noon?", "Item {i}: the air scatters blue light more than red light."),
        "de": ("Erkläre Punkt {i}: warum ist der Himmel mittags blau?", "Punkt {i}: die Luft streut blaues Licht stärker als rotes."),
    }
    rows = []
    for lang in langs:
        q, a = texts[lang]
        for i in range(n_per_lang):
            rows.append(dict(model="tiny_llama", mix=mix, task="chat", lang=lang, prompt_setting="native", seed=0,
                             item_id=f"{lang}{i:03d}", prompt=f"### Human: {q.format(i=i)}### Assistant:",
                             output=a.format(i=i), question=q.format(i=i), options="null",
                             reference=None))  # fmt: skip
    return pd.DataFrame(rows)


def judge_endpoint(base_url: str, cache_dir: Path, **overrides) -> dict:
    """An OpenAI-compatible judge endpoint on the local server.

    Sampling is set to what ``judge_chat`` forces (so overrides change nothing).
    """
    cfg = {
        "backend": "openai", "model": "judge-model", "base_url": base_url, "temperature": 0.0, "seed": 42,
        "json_mode": True, "max_concurrency": 4, "max_retries": 6, "timeout_s": 1.0,
        "cache_dir": str(cache_dir),
    }  # fmt: skip
    cfg.update(overrides)
    return cfg


def judge_reply(body: dict) -> str:
    return '{"reasoning": "Correct and clear.", "score": 4}'


@pytest.fixture
def judge_server():
    """A local judge server: valid JSON verdicts, 429s say Retry-After 0.05 s, timeouts hang 2 s."""
    with LLMTestServer(responder=judge_reply, retry_after_s=0.05, hang_s=2.0) as server:
        yield server
