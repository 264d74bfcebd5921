"""A fake API key goes through a real translation run (``kedro run``, the key in the
copy's ``conf/local/credentials.yml``, as a user would keep it) and a judging run (key in the environment)
against the local server, with injected faults so the error paths log too; the HTML
report is rendered from the runs' usage ledgers (the cost table) and the run's
provenance; then every log (captured, the run's stdout/stderr,
``data/08_reporting/run.log``) and every file the runs wrote (parquet, csv, json, the
HTML report, the SQLite cache and its WAL, the MLflow store) is searched for it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset
from llm_server import LLMTestServer, make_tiny_causal_lm
from tests.conftest import copy_project

from polyglot_kedro.pipelines.judging.nodes import detect_chat_languages, judge_chat
from polyglot_kedro.pipelines.reporting.inputs import summarize_costs
from polyglot_kedro.pipelines.reporting.render import render_report
from polyglot_kedro.project_config import load_parameters

from .conftest import FAKE_KEY, RandomFaults, chat_generations, judge_endpoint, judge_reply

KEDRO = Path(sys.executable).with_name("kedro")


def _hits(root: Path, secret: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and p.name != "credentials.yml" and secret in p.read_bytes()]


def test_fake_api_key_leaves_no_trace(tmp_path, monkeypatch, caplog, fault_figures):
    project = tmp_path / "project"
    project.mkdir()
    copy_project(project)
    make_tiny_causal_lm(project / "data" / "06_models" / "base_model")  # the translation pipeline's base_model input
    secret = FAKE_KEY.encode()
    credentials = project / "conf" / "local" / "credentials.yml"
    credentials.write_text(f"llm_endpoint:\n  api_key: {FAKE_KEY}\n")
    with LLMTestServer(retry_after_s=0.01) as server:
        server.faults = RandomFaults(rate=0.3, seed=7, kinds=("429", "500", "malformed"))
        tr = "llm_endpoints.translator"
        params = ",".join([f"{tr}.backend=openai", f"{tr}.base_url={server.base_url}", f"{tr}.model=gpt-fault",
                           f"{tr}.max_retries=4",
                           f"{tr}.max_concurrency=4",
                           # an API translator cannot enforce conf/base's role-token regex
                           "translation.constrain_roles=false"])  # fmt: skip
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}
        env.pop("OPENAI_API_KEY", None)  # the key comes from credentials.yml
        env.pop("KEDRO_LOGGING_CONFIG", None)  # the project's conf/logging.yml writes data/08_reporting/run.log
        # the chat-prompt nodes only: conf/base's MT mix adds translate_guanaco, whose input data_mixing writes
        nodes = "translate_prompts,assemble_chat_prompts"
        run = subprocess.run([str(KEDRO), "run", "--pipeline", "translation", "--nodes", nodes, "--params", params],
                             cwd=project, env=env, capture_output=True, timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stdout.decode(errors="replace")[-4000:] + run.stderr.decode(errors="replace")[-4000:]
        translation_requests = server.total
        assert f"Bearer {FAKE_KEY}" in server.auth_headers  # credentials.yml reached the client
        translation_faults = sum(server.faults.planned.values())

        # judging, in-process, logs captured at DEBUG (retry messages included)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        caplog.set_level(logging.DEBUG)
        server.responder = judge_reply
        server.faults = RandomFaults(rate=0.3, seed=8, kinds=("429", "500", "malformed"))
        out = project / "data" / "07_model_output"
        gens = chat_generations(4)
        endpoint = judge_endpoint(server.base_url, project / "data" / "02_intermediate" / "llm_cache")
        endpoint.pop("base_url")
        endpoint["base_url"] = server.base_url.replace("127.0.0.1", "localhost")  # local, but the key is used
        langs = detect_chat_languages(gens, {})
        judgments, usage = judge_chat(gens, langs, None, {"chat": {"n_items": None}}, {"judge": endpoint}, mix_name="mono")
        ParquetDataset(filepath=str(out / "judgments.parquet")).save(judgments)
        CSVDataset(filepath=str(out / "usage.csv")).save(usage)
        JSONDataset(filepath=str(out / "judgments.json")).save(judgments.astype(str).to_dict("records"))
        judging_faults = sum(server.faults.planned.values())
        auth = set(server.auth_headers)

    # the HTML report over the runs' ledgers (its cost table) and provenance, as the reporting stage renders it
    costs = summarize_costs(pd.read_parquet(project / "data" / "08_reporting" / "translation_usage.parquet"), mono=usage)
    report_params = load_parameters(project / "conf")["reporting"]
    html = render_report({"figures": [], "notes": []}, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                         costs, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=["seed"]),
                         {"mono": {"kind": "mono"}}, "tiny_llama", report_params,
                         {"env": "local", "params_sha256": "-", "git_commit": None})  # fmt: skip
    report = project / "data" / "08_reporting" / "report.html"
    report.write_text(html, encoding="utf-8")
    assert "gpt-fault" in html and "judge-model" in html  # both ledgers reached the report

    assert f"Bearer {FAKE_KEY}" in auth  # the key really was sent: the search below means something
    assert b"translate_prompts" in (project / "data" / "08_reporting" / "run.log").read_bytes()
    assert list((project / "data" / "02_intermediate" / "llm_cache").glob("completions.sqlite*"))
    assert report.stat().st_size > 0
    # the MLflow store of the kedro run (kedro-mlflow, conf/base/mlflow.yml: sqlite:///mlflow.db + mlartifacts/)
    mlflow_store = [p for p in project.glob("mlflow.db*") if p.is_file()] + [
        p for d in ("mlruns", "mlartifacts") for p in (project / d).rglob("*") if p.is_file()]  # fmt: skip
    assert mlflow_store, sorted(p.name for p in project.iterdir())
    assert judgments["valid"].all() and len(judgments) == len(gens)
    logs = run.stdout + run.stderr + caplog.text.encode() + "\n".join(repr(r.__dict__) for r in caplog.records).encode()
    file_hits = _hits(tmp_path, secret)
    fault_figures(translation_requests=translation_requests, faults_injected=translation_faults + judging_faults,
                  files_searched=sum(1 for p in tmp_path.rglob("*") if p.is_file()) - 1,
                  key_hits_in_files=len(file_hits), key_hits_in_logs=logs.count(secret))  # fmt: skip
    assert translation_faults + judging_faults > 0
    assert secret not in logs
    assert file_hits == []
