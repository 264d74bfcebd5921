"""`kedro grid` on the real registry (no SLURM needed): the dry run's jobs and dependencies, the mix list."""

from __future__ import annotations

import re

from .conftest import TWO_MIXES, grid_project, kedro


def test_dry_run_prints_every_job_and_the_graph_and_submits_nothing(tmp_path):
    project = grid_project(tmp_path, "ci_grid", {"parameters.yml": TWO_MIXES})
    result = kedro(project, "grid", "submit", "--env", "ci_grid", "--dry-run", timeout=600)
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


def test_mixes_are_the_registry_namespaces(tmp_path):
    project = grid_project(tmp_path, "ci_grid", {"parameters.yml": TWO_MIXES})
    result = kedro(project, "grid", "mixes", "--env", "ci_grid", "-o", str(tmp_path / "mixes.txt"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "mixes.txt").read_text().split() == ["mono", "multi2"]
