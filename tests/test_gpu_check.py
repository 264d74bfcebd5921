"""The GPU check's CPU fallback (benchmarks/gpu_check.py, issue 21) and its paper-env overrides.

The fallback runs the same steps as on a GPU (the project's train_lora,
merge_adapter, engines and inference node) on a tiny Llama; these tests check
the table has every row, that its numbers agree with what the steps wrote to
disk, and that the smoke run's ``--params`` still name real paper parameters.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402

FAST_STEPS = ["install", "base_model", "train_fp16", "train_bf16", "merge", "generation", "inference_node"]


def _run(tmp_path: Path, steps: list[str], data: Path) -> dict:
    out = tmp_path / "results"
    cmd = [sys.executable, str(SCRIPT), "--engine", "transformers", "--work-dir", str(tmp_path / "work"),
           "--keep-work", "--out-dir", str(out), "--data-dir", str(data),
           # a generous guard: this test checks the steps, not the speed of a shared CI box
           "--budget-s", "900", "--only", *steps]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (js,) = out.glob("gpu-*-cpu-*.json")
    (md,) = out.glob("gpu-*-cpu-*.md")
    result = json.loads(js.read_text())
    result["_md"] = md.read_text()
    return result


def _rows(result: dict) -> dict[tuple[str, str], dict]:
    return {(r["step"], r["figure"]): r for r in result["rows"]}


@pytest.fixture(scope="module")
def fallback(tmp_path_factory, shared_data) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("gpu_check")
    return _run(tmp, FAST_STEPS, shared_data), tmp / "work"


def test_table_has_every_row_of_every_step(fallback):
    result, _ = fallback
    rows = _rows(result)
    for step, spec in gpu_check.STEPS.items():
        for name, unit in spec["figures"]:
            assert (step, name) in rows, f"missing row {step}.{name}"
            assert rows[(step, name)]["unit"] == unit
            assert f"| {step} | {name} |" in result["_md"]
    assert result["mode"] == "cpu" and result["device"].startswith("cpu-")
    assert rows[("total", "wall_s")]["value"] > 0
    # Not selected here: skipped with the reason, never a typed number.
    assert rows[("paper_smoke", "wall_s")]["status"] == "skipped"
    assert rows[("paper_smoke", "wall_s")]["value"] is None


def test_cpu_steps_ran_and_fp16_is_skipped_with_its_reason(fallback):
    rows = _rows(fallback[0])
    for step in ["install", "base_model", "train_bf16", "merge", "generation", "inference_node"]:
        for name, _ in gpu_check.STEPS[step]["figures"]:
            r = rows[(step, name)]
            assert r["status"] == "ok", r
            assert isinstance(r["value"], (int, float)), r
    fp16 = rows[("train_fp16", "tokens_per_s")]
    assert fp16["status"] == "skipped" and "CUDA" in fp16["note"] and fp16["value"] is None


def test_numbers_agree_with_what_the_steps_wrote(fallback):
    """Figures are measured: they match the files and models the steps produced."""
    result, work = fallback
    rows = _rows(result)
    plan = result["plan"]
    # base_model: the parameter count of the saved random Llama, counted again here.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(work / "random_llama")
    assert rows[("base_model", "params")]["value"] == round(sum(p.numel() for p in model.parameters()) / 1e9, 4)
    assert model.config.hidden_size == plan["shape"]["hidden_size"]
    # merge: the logit difference the merge node wrote beside the merged weights.
    (check,) = work.glob("merge/**/polyglot_merge_check.json")
    assert rows[("merge", "max_abs_logit_diff")]["value"] == json.loads(check.read_text())["max_abs_logit_diff"]
    assert rows[("merge", "max_abs_logit_diff")]["value"] <= json.loads(check.read_text())["tolerance"]
    # train: two separately measured figures are consistent (tokens per step = batch x seq).
    tps, sps = rows[("train_bf16", "tokens_per_s")]["value"], rows[("train_bf16", "s_per_step")]["value"]
    assert tps * sps == pytest.approx(plan["effective_batch"] * plan["seq"], rel=0.05)
    proj = rows[("train_bf16", "paper_run_h")]
    assert proj["value"] == pytest.approx(2000 * 16 * plan["seq"] / tps / 3600, rel=0.01)
    assert proj["ratio"] == pytest.approx(proj["value"] / 8.0, rel=0.01)
    assert 0 < rows[("train_bf16", "mfu_6n")]["value"]
    # inference node: one row per prompt, written as partitions.
    assert rows[("inference_node", "rows")]["value"] == len(plan["node_langs"]) * plan["node_limit"]
    assert len(list(work.glob("partitions/**/*.parquet"))) == len(plan["node_langs"])
    # generation: batching helps even on CPU, and the ratio is of the two measured rates.
    b8, best = rows[("generation", "tokens_per_s_b8")], rows[("generation", "tokens_per_s_best")]
    assert best["ratio"] == pytest.approx(best["value"] / b8["value"], rel=0.02)


def _has_path(tree: dict, dotted: str) -> bool:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_smoke_params_name_existing_paper_parameters_and_validate():
    """A renamed paper parameter breaks the smoke run's --params here, not on the GPU."""
    from polyglot_kedro.config import resolve_model
    from polyglot_kedro.pipelines.data_mixing.params import DataMixingParams
    from polyglot_kedro.pipelines.finetuning.params import FinetuningParams
    from polyglot_kedro.pipelines.inference.nodes import InferenceParams
    from polyglot_kedro.pipelines.judging.nodes import JudgingParams
    from polyglot_kedro.pipelines.translation.nodes import TranslationParams

    paper = gpu_check._paper_params()
    items = gpu_check.smoke_params("/tmp/model", "/tmp/work", cpu=True, engine="transformers")
    added = {"models.llama2_7b.local_path"}  # a new field of the swapped registry entry
    for item in items:
        key = item.split("=", 1)[0]
        assert "," not in item, f"{item}: kedro splits --params on commas"
        assert key in added or _has_path(paper, key), f"--params {key} names no paper parameter"
    merged = OmegaConf.to_container(OmegaConf.merge(paper, OmegaConf.from_dotlist(items)))
    spec = resolve_model(merged["models"], merged["model"])
    assert spec.source == "local" and spec.local_path == "/tmp/model"
    FinetuningParams.model_validate(merged["finetuning"])
    InferenceParams.model_validate(merged["inference"])
    DataMixingParams.model_validate(merged["data_mixing"])
    TranslationParams.model_validate(merged["translation"])
    JudgingParams.model_validate(merged["judging"])
    assert merged["inference"]["engine"] == "transformers"
    # On a GPU the paper's own engine and precision stay.
    gpu_items = gpu_check.smoke_params("/tmp/model", "/tmp/work", cpu=False)
    assert not any(i.startswith(("inference.engine=", "finetuning.precision")) for i in gpu_items)


def test_smoke_globals_point_every_source_at_a_local_file(shared_data, tmp_path):
    """Every paper source is replaced; the files `prepare` derives are named."""
    paper_sources = OmegaConf.load(REPO / "conf" / "paper" / "globals.yml")["sources"]
    local = gpu_check.smoke_globals(shared_data, gpu_check.derive_smoke_data(shared_data, tmp_path))["sources"]
    for lang_sources in (local["xnli"], local["chat_prompts"]):
        for src in lang_sources.values():
            assert Path(src if isinstance(src, str) else src["source"]).is_file()
    assert set(local) == set(paper_sources)
    blob = json.dumps(local)
    assert "hf://" not in blob and "facebook/" not in blob and "google/" not in blob


@pytest.mark.slow
def test_paper_smoke_runs_end_to_end_on_cpu(tmp_path, shared_data):
    """``kedro run --env paper`` with the smoke overrides, CPU path (transformers engine)."""
    rows = _rows(_run(tmp_path, ["paper_smoke"], shared_data))
    r = rows[("paper_smoke", "kedro_rc")]
    assert r["status"] == "ok" and r["value"] == 0, r
    assert rows[("paper_smoke", "generation_rows")]["value"] > 0
    assert rows[("paper_smoke", "xnli_items")]["value"] > 0
