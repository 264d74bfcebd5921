"""SIGKILL mid-run, then restart: finished work is kept, nothing is paid twice, nothing is lost.

* judging: a child process judges against the local server and is killed
  with SIGKILL once a random number of requests have completed; the restart
  must not request any item whose answer reached the cache, and must end
  with one valid record per item;
* finetuning: a child process trains with ``train_lora`` and is killed with
  SIGKILL after ``checkpoint-2`` is written; the restart resumes from it
  (steps 3.. only) and reaches ``max_steps``;
* inference: a child process generates a paper-sized grid (34 partitions per
  seed, 3 seeds) on a tiny model and is killed with SIGKILL after a random
  number of partitions were written; the restart regenerates only the others
  and leaves every finished partition file untouched.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from transformers import TrainerCallback

from polyglot_kedro import modeling
from polyglot_kedro.config import resolve_model
from polyglot_kedro.llm import ChatRequest, build_client
from polyglot_kedro.pipelines.finetuning.nodes import train_lora

from .conftest import chat_generations, judge_endpoint
from .infer_child import REGISTRY as INFER_REGISTRY
from .infer_child import grid_inputs, inference_params
from .judge_child import run_judging

HERE = Path(__file__).resolve().parent
CHILD_ENV = {**os.environ, "PYTHONPATH": str(HERE), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _wait(predicate, proc: subprocess.Popen, deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while not predicate():
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"child exited ({proc.returncode}) before {what}:\n{out[-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_judging_killed_and_restarted(judge_server, tmp_path, fault_figures):
    n_items = 30
    judge_server.latency_s = 0.1
    generations = chat_generations(n_items // 2)
    generations.to_parquet(tmp_path / "generations.parquet")
    endpoint = judge_endpoint(judge_server.base_url, tmp_path / "cache", max_concurrency=2)
    config = {"generations": str(tmp_path / "generations.parquet"), "out": str(tmp_path / "judgments.parquet"),
              "endpoints": {"judge": endpoint, "translator": endpoint}}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    seed = random.randrange(10**6)
    kill_after = random.Random(seed).randint(3, n_items - 6)  # completed requests before the kill

    proc = subprocess.Popen([sys.executable, str(HERE / "judge_child.py"), str(tmp_path / "config.json")],
                            env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    _wait(lambda: sum(judge_server.completed.values()) >= kill_after, proc, 120, f"{kill_after} completed requests")
    _kill9(proc)
    assert not (tmp_path / "judgments.parquet").exists()  # killed mid-run, no output

    # which requests had reached the cache (the client's own cache key of each request body)
    client = build_client(endpoint, stage="judging")
    with sqlite3.connect(tmp_path / "cache" / "completions.sqlite") as conn:
        stored = {row[0] for row in conn.execute("SELECT cache_key FROM completions")}
    first_run = {b["messages"][-1]["content"]: client.cache_key(ChatRequest("", b["messages"])) for b in judge_server.bodies}
    finished = {k for k, ck in first_run.items() if ck in stored}
    completed_first = set(judge_server.completed)
    first_counts = dict(judge_server.counts)

    judge_server.reset_counts()
    judgments = run_judging(config)  # the restart
    resent = set(judge_server.counts)
    duplicates = len(resent & finished)
    inflight_resent = len(resent & (completed_first - finished))  # answered by the server, not yet stored at the kill
    # Every request that reached the server before the kill and is sent again may be billed twice
    # (a provider finishes, and bills, a request whose client died), answered or not by then.
    billed_twice = len(resent & (set(first_counts) - finished))
    lost = n_items - int(judgments["valid"].sum())
    fault_figures(kill_seed=seed, items=n_items, killed_after_completed=kill_after, finished_before_kill=len(finished),
                  restart_requests=judge_server.total, resent_without_fault=duplicates,
                  possibly_billed_twice=billed_twice, inflight_at_kill_resent=inflight_resent, items_completed=int(judgments["valid"].sum()),
                  items_lost=lost)  # fmt: skip

    assert len(finished) >= 1 and len(finished) < n_items
    assert duplicates == 0, resent & finished
    assert inflight_resent <= billed_twice <= n_items - len(finished)
    assert judge_server.total == len(resent) == n_items - len(finished)  # the rest, each once
    assert len(judgments) == n_items and judgments["item_id"].is_unique
    assert lost == 0 and judgments["valid"].all()
    assert int(judgments["cached"].sum()) == len(finished)


# --------------------------------------------------------------------------- training

REGISTRY = {
    "tiny_llama": {
        "source": "tiny",
        "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                 "num_key_value_heads": 2, "max_position_embeddings": 512, "vocab_size": 512,
                 "tokenizer_min_frequency": 1},
        "lora_target_modules": "all-linear",
    }
}  # fmt: skip
TEXTS = [f"### Human: Question number {i}: what is {i} plus {i}? ### Assistant: It is {2 * i}." for i in range(12)]


class _Steps(TrainerCallback):
    def __init__(self):
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_training_killed_after_checkpoint_resumes(tmp_path, fault_figures):
    mix = pd.DataFrame({"id": [f"g{i:05d}" for i in range(len(TEXTS))], "text": TEXTS})
    mix.to_parquet(tmp_path / "mix.parquet")
    base = modeling.prepare_base_model(resolve_model(REGISTRY, "tiny_llama"), TEXTS * 4, tmp_path / "base")
    params = {"lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "learning_rate": 3e-3, "lr_scheduler": "constant",
              "warmup_ratio": 0.0, "max_steps": 5, "max_length": 64, "effective_batch_size": 2,
              "per_device_batch_size": 2, "logging_steps": 1, "save_steps": 2, "save_total_limit": 3,
              "work_dir": str(tmp_path / "ckpt" / "{model}" / "{mix}")}  # fmt: skip
    marker = tmp_path / "saved-2"
    config = {"mix": str(tmp_path / "mix.parquet"), "base": str(base), "registry": REGISTRY, "params": params,
              "marker": str(marker), "pause_at": 2}  # fmt: skip
    (tmp_path / "train.json").write_text(json.dumps(config))
    proc = subprocess.Popen([sys.executable, str(HERE / "train_child.py"), str(tmp_path / "train.json")],
                            env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    _wait(marker.exists, proc, 240, "checkpoint-2")
    _kill9(proc)
    root = tmp_path / "ckpt" / "tiny_llama" / "m"
    assert sorted(p.name for p in root.glob("checkpoint-*")) == ["checkpoint-2"]
    assert not (root / "adapter").exists()

    steps = _Steps()
    adapter, metrics = train_lora(mix, str(base), "tiny_llama", REGISTRY, params, mix_name="m", callbacks=[steps])
    fault_figures(killed_after_checkpoint=2, resumed=metrics["resumed_from_checkpoint"],
                  steps_after_restart=steps.steps, global_step=metrics["global_step"],
                  steps_redone=sum(s <= 2 for s in steps.steps))  # fmt: skip
    assert metrics["resumed_from_checkpoint"] is True
    assert steps.steps == [3, 4, 5]  # continued after the checkpoint, nothing redone
    assert metrics["global_step"] == 5
    assert [p["step"] for p in metrics["loss_curve"]] == [1, 2, 3, 4, 5]
    assert (Path(adapter) / "adapter_config.json").is_file()


# --------------------------------------------------------------------------- inference


def _partitions(work_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in work_dir.rglob("*.parquet")}


@pytest.mark.parametrize("engine", ["transformers", pytest.param("vllm", marks=[pytest.mark.vllm, pytest.mark.slow])])
def test_inference_killed_mid_run_keeps_finished_partitions(tmp_path, fault_figures, monkeypatch, engine):
    from polyglot_kedro.engines.tiny_model import build_tiny_llama
    from polyglot_kedro.pipelines.inference import nodes

    if engine == "vllm" and not vllm_importable():
        pytest.skip("vllm not installed")
    model = str(build_tiny_llama(tmp_path / "tiny"))
    work = tmp_path / "partitions"
    seeds = [0, 42, 723] if engine == "transformers" else [0]  # one vLLM engine start per seed
    total = 34 * len(seeds)
    (tmp_path / "infer.json").write_text(json.dumps({"model": model, "work_dir": str(work), "engine": engine, "seeds": seeds}))
    seed = random.randrange(10**6)
    # vLLM: inside the first task (chat, 13 partitions), which once was written only when its child returned
    kill_after = random.Random(seed).randint(3, total - 10 if engine == "transformers" else 8)
    proc = subprocess.Popen([sys.executable, str(HERE / "infer_child.py"), str(tmp_path / "infer.json")],
                            env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    _wait(lambda: len(list(work.rglob("*.parquet"))) >= kill_after, proc, 600, f"{kill_after} partitions")
    _kill9(proc)
    finished = _partitions(work)
    # written one by one as each finishes (not a task's or a seed's worth at once)
    assert kill_after <= len(finished) <= kill_after + 4 and len(finished) < total

    jobs: list[str] = []
    real = nodes.make_engine

    def counting(*args, **kwargs):
        eng = real(*args, **kwargs)
        run = eng.generate_jobs

        def generate_jobs(js, seed, **kw):
            jobs.extend(j.name for j in js)
            return run(js, seed, **kw)

        eng.generate_jobs = generate_jobs
        return eng

    monkeypatch.setattr(nodes, "make_engine", counting)
    params = inference_params(str(work), engine, seeds)
    out = nodes.generate_outputs(model, nodes.build_eval_prompts(*grid_inputs(), params), params, "tiny_kill",
                                 INFER_REGISTRY, mix_name="m")  # fmt: skip
    after = _partitions(work)
    fault_figures(engine=engine, kill_seed=seed, partitions=total, killed_after=kill_after,
                  finished_before_kill=len(finished), regenerated=len(jobs),
                  finished_rewritten=sum(after[p] != t for p, t in finished.items()))  # fmt: skip
    assert len(jobs) == total - len(finished) and len(set(jobs)) == len(jobs)  # only the unfinished, each once
    assert all(after[p] == t for p, t in finished.items())  # finished partitions are not redone
    assert len(after) == total and len(out) == total and out["output"].notna().all()


def vllm_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None
