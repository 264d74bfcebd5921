"""`kedro grid` against a real one-node SLURM (Debian's slurmctld/slurmd; see conftest.slurm).

* the reduced grid (two mixes) finishes as SLURM jobs and its report's
  aggregates equal those of one sequential ``kedro run`` with the same seeds;
* a failed task resubmitted alone completes the grid, and a training task
  sent USR1 mid-run requeues and resumes from its checkpoint, redoing no step;
* the whole embedded default grid (slow).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from polyglot_kedro.cluster import slurm as sl

from .conftest import (KEDRO, TWO_MIXES, grid_project, kedro, manifest, submitted_run_id,  # fmt: skip
                       wait_for_grid, wait_until)

AGGREGATES = Path("data/08_reporting/aggregates.csv")


def _versions(project: Path, rel: Path) -> list[str]:
    return sorted(p.name for p in (project / rel).iterdir() if p.is_dir())


def _aggregates(project: Path, version: str | None = None) -> pd.DataFrame:
    version = version or _versions(project, AGGREGATES)[-1]
    df = pd.read_csv(project / AGGREGATES / version / AGGREGATES.name)
    keys = [c for c in ("model", "mix", "task", "lang", "prompt_setting", "metric") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)


def _assert_grid_equals_sequential(tmp_path: Path, env: str, files: dict[str, str], timeout: float,
                                   cancel_grids: list) -> None:  # fmt: skip
    grid = grid_project(tmp_path / "grid", env, files)
    seq = grid_project(tmp_path / "seq", env, files)
    # the sequential reference runs beside the grid (same machine, same seeds)
    clean = {k: v for k, v in os.environ.items() if k not in ("KEDRO_ENV", "POLYGLOT_GRID_RUN_ID")}
    reference = subprocess.Popen([KEDRO, "run", "--env", env], cwd=seq, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=clean)  # fmt: skip
    try:
        run_id = submitted_run_id(kedro(grid, "grid", "submit", "--env", env, timeout=300))
        cancel_grids.append((grid, run_id))
        wait_for_grid(grid, run_id, timeout)
        # Read the jobs' states now: without accounting, slurmctld forgets a finished
        # job after MinJobAge, and the sequential reference may finish much later.
        man = manifest(grid, run_id)
        states = {key: sl.task_states(job_id) or {0: sl.job_state(job_id)} for key, job_id in man["slurm_ids"].items()}
        out, _ = reference.communicate(timeout=timeout)
    finally:
        if reference.poll() is None:
            reference.kill()
    assert reference.returncode == 0, out[-4000:]

    for key, job_states in states.items():
        assert set(job_states.values()) == {"COMPLETED"}, (key, job_states)
    # one save version for the whole grid: every versioned output of the grid carries the run id
    assert _versions(grid, AGGREGATES) == [run_id]
    for path in (grid / "data").rglob("*"):
        if path.is_dir() and path.name[:4].isdigit() and "T" in path.name and "09_grid" not in path.parts:
            assert path.name == run_id, path
    pd.testing.assert_frame_equal(_aggregates(grid, run_id), _aggregates(seq))


@pytest.mark.slow  # ~15 min on 2 loaded cores (a grid and a sequential run side by side): make test-all
@pytest.mark.usefixtures("slurm")
def test_reduced_grid_matches_one_sequential_run(tmp_path, cancel_grids):
    _assert_grid_equals_sequential(tmp_path, "ci_grid", {"parameters.yml": TWO_MIXES}, 3600, cancel_grids)


@pytest.mark.slow
@pytest.mark.usefixtures("slurm")
def test_embedded_default_grid_matches_one_sequential_run(tmp_path, cancel_grids):
    _assert_grid_equals_sequential(tmp_path, "grid_default", {"parameters.yml": "{}\n"}, 5400, cancel_grids)


ONE_MIX = "mixes:\n  multi2: null\n  multi3: null\n  multi6: null\n  guanaco: null\n"
# Long enough (on 2 busy cores) to signal the task between two checkpoints.
SLOW_TRAINING = "finetuning:\n  max_steps: 240\n  save_steps: 20\n  save_total_limit: 3\n"
# The finetuning task fails at start until the test opens its gate: a failure the resubmit can fix.
GATED = """cluster:
  jobs:
    finetuning:
      setup: ['test -e "$POLYGLOT_TEST_GATE/$MIX" || { echo "[test] gate closed for $MIX"; exit 3; }']
"""


@pytest.mark.slow  # a whole grid with a failure, a resubmit and a requeue: make test-all
@pytest.mark.usefixtures("slurm")
def test_failed_task_resubmitted_alone_and_requeued_training_resumes(tmp_path, cancel_grids):
    gate = tmp_path / "gate"
    gate.mkdir()
    project = grid_project(tmp_path / "p", "ci_resume", {"parameters.yml": ONE_MIX,
                           "parameters_finetuning.yml": SLOW_TRAINING, "parameters_cluster.yml": GATED})  # fmt: skip
    env = {"POLYGLOT_TEST_GATE": str(gate)}
    run_id = submitted_run_id(kedro(project, "grid", "submit", "--env", "ci_resume", timeout=300, env=env))
    cancel_grids.append((project, run_id))
    man = manifest(project, run_id)
    ft = next(j for j in man["jobs"] if j["key"] == "finetuning")
    idx = ft["indices"][ft["mixes"].index("mono")]
    first = f"{man['slurm_ids']['finetuning']}_{idx}"
    wait_until(lambda: sl.task_states(man["slurm_ids"]["finetuning"]).get(idx) == "FAILED", 600, f"{first} to fail")
    # downstream waits forever on the failed task until it is resubmitted
    inf_task = f"{man['slurm_ids']['inference']}_{idx}"
    wait_until(lambda: sl.queue_states([inf_task]).get(inf_task, ("", ""))[1] == "DependencyNeverSatisfied", 120,
               "inference to see the failed dependency")  # fmt: skip

    (gate / "mono").touch()
    result = kedro(project, "grid", "resubmit", "finetuning", "mono", "--env", "ci_resume", timeout=300, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    new_id = manifest(project, run_id)["resubmits"][-1]["slurm_id"]
    task = f"{new_id}_{idx}"

    ckpt = project / "data" / "06_models" / "checkpoints" / "tiny_llama" / "mono"
    wait_until(lambda: (ckpt / "checkpoint-20" / "trainer_state.json").is_file(), 600, "the first checkpoint")
    subprocess.run(["scancel", "--signal=USR1", "--batch", task], check=True)
    # the handler requeues the task: SLURM counts a restart
    wait_until(lambda: "Restarts=1" in subprocess.run(["scontrol", "-o", "show", "job", task], capture_output=True,
                                                      text=True).stdout, 120, "the requeue")  # fmt: skip
    states_at_kill = {p.name: json.loads((p / "trainer_state.json").read_text())
                      for p in ckpt.glob("checkpoint-*") if (p / "trainer_state.json").is_file()}  # fmt: skip
    last = max(states_at_kill, key=lambda n: int(n.split("-")[1]))
    assert int(last.split("-")[1]) < 240, "training finished before the signal: nothing to resume"

    wait_for_grid(project, run_id, 3600)  # generous: a loaded 2-core machine runs this 10x slower than an idle one
    metrics_path = project / "data" / "08_reporting" / "training_metrics" / "mono.json" / run_id / "mono.json"
    metrics = json.loads(metrics_path.read_text())
    assert metrics["resumed_from_checkpoint"] is True
    assert metrics["global_step"] == 240
    assert metrics["tokens_seen"] > 0
    # only the steps after the last checkpoint ran again: their tokens, no more
    assert metrics["tokens_this_session"] == metrics["tokens_seen"] - states_at_kill[last]["num_input_tokens_seen"]
    log = (project / "data" / "09_grid" / run_id / "logs" / f"finetuning_{new_id}_{idx}.out").read_text()
    assert "USR1: stopping the step, requeueing" in log and "restart 1" in log
    # the grid completed: the final job ran after the re-pointed chain
    assert _versions(project, AGGREGATES) == [run_id]
    assert sl.job_state(man["slurm_ids"]["final"]) == "COMPLETED"
    status = kedro(project, "grid", "status", "--env", "ci_resume", timeout=300)
    assert status.returncode == 0, status.stderr[-2000:]
    rows = [line.split() for line in status.stdout.splitlines() if line.startswith(("prepare", "finetuning", "inference", "final"))]
    assert rows and all(r[-1] == "present" for r in rows), status.stdout
