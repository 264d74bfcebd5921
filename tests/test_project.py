"""The project as users drive it: the kedro CLI on a copy of the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEDRO = str(Path(sys.executable).with_name("kedro"))
STAGES = ("data_mixing", "translation", "finetuning", "inference", "judging", "reporting")


def kedro(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("KEDRO_ENV", None)
    return subprocess.run(
        [KEDRO, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_registry_lists_the_six_pipelines(project_copy):
    result = kedro(project_copy, "registry", "list")
    assert result.returncode == 0, result.stderr
    for name in (*STAGES, "__default__"):
        assert f"- {name}" in result.stdout


def test_unknown_model_fails_fast_naming_the_valid_ones(project_copy):
    result = kedro(project_copy, "run", "--pipeline", "finetuning", "--params", "model=nope", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Unknown model 'nope'" in out
    for name in ("tiny_llama", "smollm2_135m", "llama2_7b", "llama2_70b", "falcon_7b"):
        assert name in out
    assert "Running node" not in out
    assert not any((project_copy / "data" / "06_models").iterdir())


def test_viz_build_writes_the_lineage_site(project_copy):
    result = kedro(project_copy, "viz", "build", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    main = json.loads((project_copy / "build" / "api" / "main").read_text())
    node_names = {n["name"] for n in main["nodes"]}
    # Per-mix stages appear once per namespace, e.g. the mono finetuning node.
    assert any(name.startswith("mono.") or "mono" in name for name in node_names)
    assert (project_copy / "build" / "index.html").exists()
