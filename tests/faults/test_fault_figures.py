"""The fault figures are honest: a retry after a client timeout may have been billed.

A real API bills a request the server went on answering after the client's
timeout (and one it answered with status 200 whose body broke on the way), so
the retry of such a request is "possibly billed twice" -- reported apart from
requests re-sent without any fault, which must not happen at all.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from polyglot_kedro.llm import ChatRequest, build_client

from .conftest import billing_figures, judge_endpoint

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_retry_after_timeout_counts_as_possibly_billed_twice(judge_server, tmp_path):
    plans = {"q 0": ["timeout"], "q 1": ["429"], "q 2": ["malformed"], "q 3": ["500", "timeout"], "q 4": []}
    judge_server.faults = {k: list(v) for k, v in plans.items()}  # the server consumes its copy
    endpoint = judge_endpoint(judge_server.base_url, tmp_path / "cache", timeout_s=0.5)
    judge_server.hang_s = 1.0
    results = build_client(endpoint, stage="judging").run(
        [ChatRequest(k, [{"role": "user", "content": k}]) for k in plans]
    )
    assert all(r.ok for r in results)
    figures = billing_figures(judge_server.counts, plans)
    # q 0, q 2 and the second attempt of q 3 reached a server that did (or may have done) the work
    assert figures == {"resent_without_fault": 0, "possibly_billed_twice": 3}
    # a request sent again although its answer had arrived is billed twice for sure
    assert billing_figures({"a": 3}, {"a": ["429"]}) == {"resent_without_fault": 1, "possibly_billed_twice": 1}


def _run_all():
    sys.path.insert(0, str(BENCHMARKS))  # run_all imports its sibling `common`
    try:
        spec = importlib.util.spec_from_file_location("run_all_under_test", BENCHMARKS / "run_all.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_fault_table_reports_possibly_billed_twice_apart_from_resends():
    figures = {
        "test_a": {"faults_injected": 4, "items_completed": 10, "resent_without_fault": 0, "possibly_billed_twice": 2,
                   "items_lost": 0},
        "test_b": {"resent_without_fault": 0, "possibly_billed_twice": 1, "items_completed": 5, "items_lost": 0},
    }  # fmt: skip
    rows = {r["figure"]: r for r in _run_all().fault_rows(figures, {"seconds": 1.0, "passed": 2, "xfailed": 0, "failed": 0})}
    billed = [r for name, r in rows.items() if name.startswith("requests possibly billed twice")]
    resent = [r for name, r in rows.items() if name.startswith("requests re-sent without a fault")]
    assert len(billed) == 1 and billed[0]["value"] == 3 and "timeout" in billed[0]["note"]
    assert len(resent) == 1 and resent[0]["value"] == 0 and resent[0]["note"] == "must be 0"
    assert not any("duplicate paid" in name for name in rows)  # the old, flattering figure is gone
