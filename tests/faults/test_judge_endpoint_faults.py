"""A whole judging run against a judge endpoint that fails ~20% of its calls.

The real judging pipeline (SequentialRunner, parquet outputs) talks to the
local OpenAI-compatible server, which answers 429 (Retry-After), 500, hangs
past the client timeout, or sends a broken JSON body on about a fifth of the
calls. The run must complete with exactly one valid record per item, no item
requested more often than its injected faults + 1, and a rerun on the same
cache sending nothing. Each retry after a timeout or a broken 200 body is
counted as possibly billed twice (the provider did the work).
"""

from __future__ import annotations

from collections import Counter

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from polyglot_kedro.config import MixSpec
from polyglot_kedro.pipelines.judging import create_pipeline

from .conftest import BILLABLE_FAULTS, FAULT_KINDS, RandomFaults, billing_figures, chat_generations, judge_endpoint

N_PER_LANG = 20  # 40 items


def _catalog(generations, endpoints, tmp_path) -> DataCatalog:
    return DataCatalog({
        "base_model": MemoryDataset(None),
        "params:judging": MemoryDataset({"chat": {"mode": "direct", "n_items": None}}),
        "params:llm_endpoints": MemoryDataset(endpoints),
        "params:mixes.mono": MemoryDataset(MixSpec(kind="mono").model_dump()),
        "params:mono.mix_name": MemoryDataset("mono"),  # hooks.MixNameParamsHook's input in a real run
        "params:task_scoring": MemoryDataset({}),  # the defaults (no task rows here)
        "mono.generations": MemoryDataset(generations),
        "mono.xnli_loglik": MemoryDataset(None),
        "mono.chat_judgments": ParquetDataset(filepath=str(tmp_path / "out" / "chat_judgments.parquet")),
        "mono.judging_usage": ParquetDataset(filepath=str(tmp_path / "out" / "judging_usage.parquet")),
        "mono.scores": ParquetDataset(filepath=str(tmp_path / "out" / "scores.parquet")),
    })  # fmt: skip


def test_judging_run_survives_flaky_endpoint(judge_server, tmp_path, fault_figures):
    generations = chat_generations(N_PER_LANG)
    n_items = len(generations)
    faults = RandomFaults(rate=0.25, seed=20231115)
    judge_server.faults = faults
    endpoints = {"judge": judge_endpoint(judge_server.base_url, tmp_path / "cache"),
                 "translator": judge_endpoint(judge_server.base_url, tmp_path / "cache", model="mt")}  # fmt: skip
    catalog = _catalog(generations, endpoints, tmp_path)
    SequentialRunner().run(create_pipeline(mixes={"mono": MixSpec(kind="mono")}), catalog)

    judgments = catalog.load("mono.chat_judgments")
    keys = list(zip(judgments["lang"], judgments["seed"], judgments["item_id"]))
    injected = sum(faults.planned.values())
    kinds = Counter(_kinds_used(faults))
    billing = billing_figures(judge_server.counts, faults.plans)
    billable_injected = sum(kind in BILLABLE_FAULTS for plan in faults.plans.values() for kind in plan)
    lost = n_items - int(judgments["valid"].sum())
    usage = catalog.load("mono.judging_usage").iloc[0]
    fault_rate = injected / judge_server.total

    # the rerun: everything from the cache, nothing sent
    judge_server.reset_counts()
    catalog2 = _catalog(generations, endpoints, tmp_path / "rerun")
    SequentialRunner().run(create_pipeline(mixes={"mono": MixSpec(kind="mono")}), catalog2)
    rerun_requests = judge_server.total
    rerun = catalog2.load("mono.chat_judgments")

    fault_figures(items=n_items, calls=int(usage["attempts"]), faults_injected=injected, fault_rate=round(fault_rate, 3),
                  fault_kinds=dict(kinds), items_completed=int(judgments["valid"].sum()),
                  **billing, items_lost=lost, rerun_requests=rerun_requests)  # fmt: skip

    assert set(kinds) == set(FAULT_KINDS), kinds  # every kind of fault was exercised
    assert 0.1 <= fault_rate <= 0.35, fault_rate
    assert len(keys) == n_items and len(set(keys)) == n_items  # exactly one final record per item
    assert judgments["valid"].all(), judgments.loc[~judgments["valid"], ["item_id", "invalid_reason"]]
    assert lost == 0
    assert billing["resent_without_fault"] == 0, {k: (judge_server.counts[k], faults.plans[k]) for k in judge_server.counts}
    # every timeout / broken body was retried (one fault per item, max_retries 6): each retry possibly billed twice
    assert billable_injected > 0 and billing["possibly_billed_twice"] == billable_injected
    assert int(usage["failed"]) == 0 and int(usage["sent"]) == n_items
    assert int(usage["attempts"]) == n_items + injected  # one retry per injected fault, no more
    scores = catalog.load("mono.scores")
    assert (scores["metric"] == "helpfulness").sum() == n_items
    assert rerun_requests == 0 and rerun["cached"].all() and rerun["valid"].all()


def _kinds_used(faults: RandomFaults) -> list[str]:
    # RandomFaults hands out kinds in turn: the first `injected` of the cycle
    n = sum(faults.planned.values())
    return [faults.kinds[i % len(faults.kinds)] for i in range(n)]


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_item_failing_every_attempt_is_kept_as_invalid_record(kind, judge_server, tmp_path, fault_figures):
    """An item whose every attempt fails is a record with the reason, never dropped or silently scored."""
    generations = chat_generations(3, langs=("en",))
    endpoint = judge_endpoint(judge_server.base_url, tmp_path / "cache", max_retries=1, timeout_s=0.5)
    judge_server.hang_s = 1.0
    # the judge request's last message contains the response; fault the first item on every attempt
    target = generations["output"].iloc[0]

    class Always(dict):
        def get(self, key, default=None):
            return [kind] if target in key else []

    judge_server.faults = Always()
    catalog = _catalog(generations, {"judge": endpoint, "translator": endpoint}, tmp_path)
    SequentialRunner().run(create_pipeline(mixes={"mono": MixSpec(kind="mono")}), catalog)
    j = catalog.load("mono.chat_judgments").set_index("item_id")
    assert len(j) == 3
    assert not j.loc["en000", "valid"] and "request failed" in j.loc["en000", "invalid_reason"]
    assert j.drop(index="en000")["valid"].all()
    fault_figures(kind=kind, items=3, items_completed=int(j["valid"].sum()), items_kept_invalid=int((~j["valid"]).sum()),
                  items_lost=3 - len(j))  # fmt: skip
