"""`kedro grid` on the real registry (no SLURM needed): the dry run's jobs and dependencies, the mix list."""

from __future__ import annotations

import os
import re

import pytest

from ..conftest import SideBySide
from .conftest import KEDRO, TWO_MIXES, grid_project


@pytest.fixture(scope="module")
def grid_cli(request, tmp_path_factory):
    """The two ``kedro grid`` commands below, each on its own project copy, started side by side.

    The environment is ``conftest.kedro``'s (offline, no telemetry, no KEDRO_ENV, no grid run id).
    """

    def spec(name: str, *args: str):
        def start() -> dict:
            dest = tmp_path_factory.mktemp(name)
            project = grid_project(dest, "ci_grid", {"parameters.yml": TWO_MIXES})
            env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
            env.pop("KEDRO_ENV", None)
            env.pop("POLYGLOT_GRID_RUN_ID", None)
            args_ = [a.replace("{dest}", str(dest)) for a in args]
            return {"args": [KEDRO, *args_], "cwd": project, "env": env, "timeout": 600,
                    "extra": {"project": project, "dest": dest}}  # fmt: skip

        return start

    runs = SideBySide(request, {
        "test_dry_run_prints_every_job_and_the_graph_and_submits_nothing":
            spec("dry_run", "grid", "submit", "--env", "ci_grid", "--dry-run"),
        "test_mixes_are_the_registry_namespaces":
            spec("mixes", "grid", "mixes", "--env", "ci_grid", "-o", "{dest}/mixes.txt"),
    })  # fmt: skip
    yield runs
    runs.close()


def test_dry_run_prints_every_job_and_the_graph_and_submits_nothing(grid_cli):
    result = grid_cli.result("test_dry_run_prints_every_job_and_the_graph_and_submits_nothing")
    project = grid_cli.extra("test_dry_run_prints_every_job_and_the_graph_and_submits_nothing")["project"]
    out = result.stdout
    assert result.returncode == 0, (out + result.stderr)[-3000:]
    run_id = re.search(r"# grid run (\S+) \(env ci_grid\): 2 mixes \['mono', 'multi2'\], 4 jobs", out).group(1)
    graph = out.split("## dependency graph", 1)[1].split("## prepare:", 1)[0]
    rows = [line.split() for line in graph.strip().splitlines()]
    assert [r[0] for r in rows if not r[0].startswith("[")] == ["prepare", "finetuning", "inference", "final"]
    assert "array[2]" in graph and "after aftercorr:finetuning" in graph
    assert "[0] mono" in graph and "after finetuning[0]" in graph and "after finetuning[1]" in graph
    assert "after afterok:prepare, afterok:finetuning, afterok:inference" in graph
    # every job's script with its sbatch line; dependencies are placeholders until submission
    assert "## finetuning: sbatch --parsable --dependency=afterok:<prepare> " in out
    assert "## inference: sbatch --parsable --dependency=aftercorr:<finetuning> " in out
    assert "## final: sbatch --parsable --dependency=afterok:<prepare>:<finetuning>:<inference> " in out
    assert out.count("#!/bin/bash") == 4
    assert '--pipelines finetuning --namespaces "$MIX"' in out and "#SBATCH --requeue" in out
    assert f"mono.train_mix:{run_id}" in out and f"export POLYGLOT_GRID_RUN_ID={run_id}" in out
    assert "--pipelines judging,reporting " in out
    assert not (project / "data" / "09_grid").exists()


def test_mixes_are_the_registry_namespaces(grid_cli):
    result = grid_cli.result("test_mixes_are_the_registry_namespaces")
    dest = grid_cli.extra("test_mixes_are_the_registry_namespaces")["dest"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert (dest / "mixes.txt").read_text().split() == ["mono", "multi2"]
