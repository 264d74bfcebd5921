"""A requeued task's rerun points the jobs waiting on it back at itself (local SLURM, scripts without Kedro).

SLURM fails a job's ``afterok`` for good once it sees the job it waits on in a
terminal state that is not COMPLETED, even if that job is requeued and later
succeeds (sbatch(1), --dependency). A USR1 requeue passes through CANCELLED, so
a scheduler pass at the wrong moment strands the rest of the mix's chain (seen
once in CI). This test makes that state certain: the training task fails on its
first run (its dependents show DependencyNeverSatisfied), is requeued, and the
grid completes because the rerun re-points them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from polyglot_kedro.cluster import slurm as sl
from polyglot_kedro.cluster.config import ClusterConfig
from polyglot_kedro.cluster.plan import FINAL, Dependency, Job, render_script
from polyglot_kedro.cluster.submit import GridRun, submit

from .conftest import wait_until

pytestmark = pytest.mark.usefixtures("slurm")


def _run(root: Path) -> GridRun:
    # the first run of the training task fails; its rerun (SLURM_RESTART_COUNT > 0) succeeds
    cfg = ClusterConfig.model_validate({
        "prepare": [], "per_mix": ["finetuning", "inference"], "final": ["reporting"],
        "defaults": {"cpus": 1, "mem": "200M", "time": "00:05:00"},
        "jobs": {"finetuning": {"requeue": True,
                                "setup": ['[ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] || { echo "first run fails"; exit 3; }']}},
    })  # fmt: skip
    mixes, idx = ["m0", "m1"], [0, 1]
    jobs = [
        Job("finetuning", "finetuning", [], [], mixes, idx),
        Job("inference", "inference", [], [Dependency("finetuning", "aftercorr")], mixes, idx),
        Job(FINAL, FINAL, [], [Dependency("finetuning", "afterok"), Dependency("inference", "afterok")]),
    ]
    scripts = {j.key: render_script(j, cfg, env="base", run_id="r", project_path=root, kedro="kedro",
                                    log_dir=root / "logs") for j in jobs}  # fmt: skip
    return GridRun("r", "base", root, jobs, scripts, {}, [])


def test_a_requeued_task_repoints_the_dependents_a_failed_run_stranded(tmp_path):
    run = _run(tmp_path)
    ids = submit(run)
    ft, inf, final = ids["finetuning"], ids["inference"], ids[FINAL]
    try:
        wait_until(lambda: set(sl.task_states(ft).values()) == {"FAILED"}, 120, "both training tasks to fail")
        stranded = {f"{inf}_0", f"{inf}_1", final}
        wait_until(lambda: {k for k, v in sl.queue_states([inf, final]).items() if v[1] == "DependencyNeverSatisfied"}
                   >= stranded, 120, "SLURM to fail their dependencies")  # fmt: skip

        subprocess.run(["scontrol", "requeue", f"{ft}_0"], check=True)  # only mix m0 reruns
        wait_until(lambda: "JobState=PENDING" in subprocess.run(["scontrol", "show", "job", f"{ft}_0"],
                   capture_output=True, text=True).stdout, 60, "the requeued task to be pending")  # fmt: skip
        subprocess.run(["scontrol", "update", f"JobId={ft}_0", "StartTime=now+3"], check=True)  # see test_grid_slurm

        wait_until(lambda: sl.task_states(inf).get(0) == "COMPLETED", 120, "m0's inference to run after the rerun")
        log = (tmp_path / "logs" / f"finetuning_{ft}_0.out").read_text()
        assert f"re-pointed {inf}_0: Dependency=afterok:{ft}_0" in log, log
        # the final job now waits on every unfinished task, m1's failed training among them
        assert f"re-pointed {final}: Dependency=afterok:{ft}_0:{ft}_1:{inf}_0:{inf}_1" in log, log
        # m1 was not rerun: its chain and the final job stay stranded, as they should
        left = {f"{inf}_1": ("PENDING", "DependencyNeverSatisfied"), final: ("PENDING", "DependencyNeverSatisfied")}
        wait_until(lambda: sl.queue_states([inf, final]) == left, 60, f"only {sorted(left)} left, stranded")
        assert sl.task_states(ft) == {0: "COMPLETED", 1: "FAILED"}
    finally:
        sl.cancel([ft, inf, final])
