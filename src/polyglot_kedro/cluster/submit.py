"""Submit a grid run, show its state, resubmit one task. Used by ``kedro grid`` (``polyglot_kedro.cli``).

A grid run lives in ``<grid_dir>/<run id>/``: ``scripts/<job>.sbatch``,
``logs/``, and ``manifest.json`` (the jobs, their SLURM ids, which array index
is which mix, and the version folders each task writes). The manifest is a
record for ``status`` and ``resubmit``; ordering and waiting are SLURM's
dependencies.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io.core import generate_timestamp

from polyglot_kedro.cluster import slurm
from polyglot_kedro.cluster.config import ClusterConfig
from polyglot_kedro.cluster.plan import FINAL, RESUBMIT_ENV, Job, build_jobs, dependency_graph, render_script
from polyglot_kedro.cluster.session import GridSession, validate_run_id

MANIFEST = "manifest.json"


@dataclass
class GridRun:
    """A planned (and maybe submitted) grid run."""

    run_id: str
    env: str
    root: Path  # <grid_dir>/<run_id>
    jobs: list[Job]
    scripts: dict[str, str]  # job key -> script text
    slurm_ids: dict[str, str]
    resubmits: list[dict[str, Any]]
    params: str = ""

    @property
    def mixes(self) -> list[str]:
        return sorted({m for j in self.jobs for m in (j.mixes or [])})

    def manifest(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "env": self.env, "params": self.params,
                "jobs": [j.to_dict() for j in self.jobs], "slurm_ids": self.slurm_ids,
                "resubmits": self.resubmits}  # fmt: skip

    def save(self) -> None:
        tmp = self.root / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.manifest(), indent=2), encoding="utf-8")
        tmp.replace(self.root / MANIFEST)

    @classmethod
    def load(cls, root: Path) -> GridRun:
        path = root / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"no grid run manifest at {path}")
        data = json.loads(path.read_text(encoding="utf-8"))
        jobs = [Job.from_dict(j) for j in data["jobs"]]
        scripts = {j.key: (root / "scripts" / f"{j.key}.sbatch").read_text() for j in jobs}
        return cls(data["run_id"], data["env"], root, jobs, scripts, data["slurm_ids"], data["resubmits"],
                   data.get("params", ""))  # fmt: skip


def kedro_executable(cfg: ClusterConfig) -> str:
    """The kedro the jobs run: ``cluster.kedro`` or the one installed beside this Python."""
    return cfg.kedro or str(Path(sys.executable).parent / "kedro")


def plan(cfg: ClusterConfig, pipelines: Any, catalog: Any, *, env: str, project_path: Path, params: str = "",
         run_id: str | None = None) -> GridRun:  # fmt: skip
    """Jobs and scripts of a new grid run (nothing is written or submitted)."""
    run_id = validate_run_id(run_id or generate_timestamp())
    root = (project_path / cfg.grid_dir / run_id).resolve()
    jobs = build_jobs(cfg, pipelines, catalog, run_id)
    scripts = {j.key: render_script(j, cfg, env=env, run_id=run_id, project_path=project_path.resolve(),
                                    kedro=kedro_executable(cfg), log_dir=root / "logs", params=params)
               for j in jobs}  # fmt: skip
    return GridRun(run_id, env, root, jobs, scripts, {}, [], params)


def _deps_for(job: Job, ids: dict[str, str]) -> list[tuple[str, str]]:
    return [(d.kind, ids[d.job]) for d in job.depends]


def dry_run_text(run: GridRun) -> str:
    """Every job script, its sbatch command line and the dependency graph (what ``--dry-run`` prints)."""
    placeholder = {j.key: f"<{j.key}>" for j in run.jobs}
    parts = [f"# grid run {run.run_id} (env {run.env}): {len(run.mixes)} mixes {run.mixes}, {len(run.jobs)} jobs",
             "", "## dependency graph", dependency_graph(run.jobs), ""]  # fmt: skip
    for job in run.jobs:
        dep = slurm.dependency_arg(_deps_for(job, placeholder))
        parts += [f"## {job.key}: sbatch --parsable{' ' + dep if dep else ''} {run.root}/scripts/{job.key}.sbatch",
                  run.scripts[job.key]]  # fmt: skip
    return "\n".join(parts)


def check_session_class() -> None:
    """Refuse to submit when settings.SESSION_CLASS would not pin the save version."""
    from kedro.framework.project import settings

    if not issubclass(settings.SESSION_CLASS, GridSession):
        raise RuntimeError(
            "settings.SESSION_CLASS is not polyglot_kedro.cluster.session.GridSession: the grid's jobs would each "
            "save under their own timestamp and downstream --load-versions would not find them. Add "
            "`SESSION_CLASS = GridSession` to settings.py."
        )


def submit(run: GridRun) -> dict[str, str]:
    """Write the scripts and manifest, then sbatch every job in order with its dependencies."""
    (run.root / "scripts").mkdir(parents=True, exist_ok=True)
    (run.root / "logs").mkdir(parents=True, exist_ok=True)
    for key, text in run.scripts.items():
        (run.root / "scripts" / f"{key}.sbatch").write_text(text, encoding="utf-8")
    run.save()
    submitted: list[str] = []
    try:
        for job in run.jobs:
            dep = slurm.dependency_arg(_deps_for(job, run.slurm_ids))
            run.slurm_ids[job.key] = slurm.sbatch(str(run.root / "scripts" / f"{job.key}.sbatch"),
                                                  [dep] if dep else [])  # fmt: skip
            submitted.append(run.slurm_ids[job.key])
            run.save()
    except slurm.SlurmError:
        slurm.cancel(submitted)  # no half-submitted grid left waiting on a job that never comes
        raise
    return run.slurm_ids


def find_run(grid_dir: Path, run_id: str | None) -> GridRun:
    """The grid run ``run_id``, or the newest one under ``grid_dir``."""
    if run_id:
        return GridRun.load(grid_dir / validate_run_id(run_id))
    runs = sorted(p.parent for p in grid_dir.glob(f"*/{MANIFEST}"))
    if not runs:
        raise FileNotFoundError(f"no grid run under {grid_dir} (submit one with `kedro grid submit`)")
    return GridRun.load(runs[-1])


def _latest_ids(run: GridRun, job: Job, mix: str | None) -> tuple[str, str]:
    """The SLURM id of (job, mix)'s latest submission and the task id string to query/update."""
    idx = job.indices[job.mixes.index(mix)] if job.mixes and mix else None
    for r in reversed(run.resubmits):
        if r["job"] == job.key and r.get("mix") == mix:
            return r["slurm_id"], (f"{r['slurm_id']}_{idx}" if idx is not None else r["slurm_id"])
    base = run.slurm_ids.get(job.key, "")
    return base, (f"{base}_{idx}" if idx is not None and base else base)


def _outputs_done(job: Job, mix: str) -> bool:
    outs = job.outputs.get(mix, [])
    return bool(outs) and all(Path(p).exists() for p in outs)


def states(run: GridRun) -> list[dict[str, str]]:
    """One row per (job, mix): SLURM's state while it knows the task, else whether the task's outputs exist."""
    rows = []
    ids = [i for j in run.jobs for m in (j.mixes or [None]) for i in [_latest_ids(run, j, m)[0]]]
    queued = slurm.queue_states(sorted(set(ids)))
    known: dict[str, dict[int, str]] = {}
    for job in run.jobs:
        for mix in job.mixes or [None]:
            base, task = _latest_ids(run, job, mix)
            state, reason = queued.get(task, queued.get(base, ("", "")))
            if not state and base:
                if job.mixes:
                    idx = job.indices[job.mixes.index(mix)]
                    state = known.setdefault(base, slurm.task_states(base)).get(idx, "")
                else:
                    state = slurm.job_state(base) or ""
            done = _outputs_done(job, mix or "")
            if not state:
                state = "COMPLETED (outputs present)" if done else "UNKNOWN (gone from SLURM, outputs missing)"
            rows.append({"job": job.key, "mix": mix or "-", "slurm_id": task, "state": state,
                         "reason": reason if reason not in ("None", "") else "",
                         "outputs": "present" if done else "missing"})  # fmt: skip
    return rows


def resubmit(run: GridRun, job_key: str, mix: str | None) -> str:
    """Resubmit one failed task (or job) alone and re-point the jobs waiting on it.

    The task reruns from the same script (same run id, same pinned versions)
    after removing its own half-written outputs. Pending dependents are
    updated with ``scontrol update Dependency=`` so the grid completes without
    resubmitting them: the same mix's task of the next array is pointed at the
    new task, and the final job at every task of the grid that has not
    completed (the new one instead of the failed one).

    Returns:
        The new SLURM job id.
    """
    matching = [j for j in run.jobs if j.key == job_key or (j.resources_of == job_key and (mix in (j.mixes or [])))]
    if not matching:
        raise ValueError(f"no job {job_key!r} in grid run {run.run_id} (jobs: {[j.key for j in run.jobs]})")
    job = matching[0]
    if job.mixes is not None and mix not in job.mixes:
        raise ValueError(f"mix {mix!r} is not a task of job {job.key!r} (its mixes: {job.mixes})")
    if job.mixes is None:
        mix = None
    old_base, old_task = _latest_ids(run, job, mix)
    args = [f"--array={job.indices[job.mixes.index(mix)]}"] if job.mixes else []
    new = slurm.sbatch(str(run.root / "scripts" / f"{job.key}.sbatch"), args, env={RESUBMIT_ENV: "1"})
    run.resubmits.append({"job": job.key, "mix": mix, "slurm_id": new, "replaces": old_task})
    run.save()
    new_task = f"{new}_{job.indices[job.mixes.index(mix)]}" if job.mixes else new
    _repoint_dependents(run, job, mix, new_task)
    return new


def repoint_after_restart(run: GridRun, job_key: str, mix: str | None, own_task: str) -> list[tuple[str, str]]:
    """Point the pending jobs that wait on a requeued task back at it (its rerun calls this first).

    While a requeued task passes through its CANCELLED state, SLURM may test the
    ``afterok`` of the jobs waiting on it and fail it for good (sbatch(1): "Once a
    job dependency fails due to the termination state of a preceding job, the
    dependent job will never be run, even if the preceding job is requeued"):
    they would wait as DependencyNeverSatisfied forever. Seen in CI on the USR1
    requeue. The rerun re-points them exactly as ``resubmit`` does, with its
    own id as the new task.

    Returns:
        ``(job or task id, new dependency)`` for every update made.
    """
    job = next((j for j in run.jobs if j.key == job_key), None)
    if job is None:
        raise ValueError(f"no job {job_key!r} in grid run {run.run_id} (jobs: {[j.key for j in run.jobs]})")
    if job.mixes is not None and mix not in job.mixes:
        raise ValueError(f"mix {mix!r} is not a task of job {job.key!r} (its mixes: {job.mixes})")
    return _repoint_dependents(run, job, mix if job.mixes is not None else None, own_task)


def _repoint_dependents(run: GridRun, job: Job, mix: str | None, new_task: str) -> list[tuple[str, str]]:
    """Re-point the pending dependents of (job, mix) at ``new_task``; the final job at every unfinished task."""
    updates: list[tuple[str, str]] = []
    queued = slurm.queue_states([run.slurm_ids[j.key] for j in run.jobs if j.key in run.slurm_ids]
                                + [r["slurm_id"] for r in run.resubmits])  # fmt: skip
    for dep_job in run.jobs:
        if dep_job.key == FINAL or not any(d.job == job.key for d in dep_job.depends):
            continue
        for m in dep_job.mixes or [None]:
            if job.mixes and m != mix:
                continue
            _, dep_task = _latest_ids(run, dep_job, m)
            if dep_job.mixes and m is not None and job.mixes:
                target = dep_task
            else:
                target = run.slurm_ids[dep_job.key]  # a whole array (or job) waiting on prepare
            if target in queued or any(k.startswith(f"{target}_") for k in queued):
                updates.append((target, f"afterok:{new_task}"))
                slurm.update_dependency(*updates[-1])
    final = next((j for j in run.jobs if j.key == FINAL), None)
    if final and job.key != FINAL and run.slurm_ids.get(FINAL) in queued:
        waits = []
        for j in run.jobs:
            if j.key == FINAL:
                continue
            for m in j.mixes or [None]:
                base, task = _latest_ids(run, j, m)
                done = task not in queued and (_outputs_done(j, m or "") or _finished_ok(j, base, task, m))
                if not done:
                    waits.append(task)
        updates.append((run.slurm_ids[FINAL], "afterok:" + ":".join(waits) if waits else ""))
        slurm.update_dependency(*updates[-1])
    return updates


def _finished_ok(job: Job, base: str, task: str, mix: str | None) -> bool:
    if job.mixes and mix is not None:
        return slurm.task_states(base).get(job.indices[job.mixes.index(mix)]) == "COMPLETED"
    return slurm.job_state(base) == "COMPLETED"


def status_table(rows: list[dict[str, str]]) -> str:
    head = ["job", "mix", "slurm_id", "state", "reason", "outputs"]
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in head] if rows else [len(h) for h in head]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), *(fmt.format(*(r[h] for h in head)) for r in rows)])


def environment_note() -> str:
    """Where the jobs' Python comes from (printed with --dry-run)."""
    return f"python {sys.executable}; cwd {os.getcwd()}"
