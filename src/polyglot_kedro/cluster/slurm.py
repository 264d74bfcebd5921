"""Thin calls of SLURM's own commands (sbatch, squeue, scontrol); SLURM does all waiting and ordering."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable


class SlurmError(RuntimeError):
    """A SLURM command failed; the message carries its command line and stderr."""


def _run(argv: list[str], timeout: float = 60) -> str:
    if not shutil.which(argv[0]):
        raise SlurmError(f"{argv[0]} not found: is this a SLURM login node (slurm-client installed)?")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SlurmError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def dependency_arg(deps: Iterable[tuple[str, str]]) -> str | None:
    """``--dependency=afterok:1:2,aftercorr:3`` from (kind, job id) pairs; None when empty."""
    by_kind: dict[str, list[str]] = {}
    for kind, job_id in deps:
        by_kind.setdefault(kind, []).append(job_id)
    if not by_kind:
        return None
    return "--dependency=" + ",".join(f"{k}:{':'.join(ids)}" for k, ids in by_kind.items())


def sbatch(script: str, args: Iterable[str] = (), env: dict[str, str] | None = None) -> str:
    """Submit ``script`` (a path); returns the job id (``--parsable``)."""
    import os

    argv = ["sbatch", "--parsable", *args, script]
    if not shutil.which("sbatch"):
        raise SlurmError("sbatch not found: is this a SLURM login node (slurm-client installed)?")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SlurmError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip().split(";")[0]


def queue_states(job_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``{"<id>" or "<id>_<task>": (state, reason)}`` for the pending/running jobs among ``job_ids``."""
    ids = [j for j in job_ids if j]
    if not ids:
        return {}
    # -r: one line per array task; finished jobs are not listed by squeue.
    out = _run(["squeue", "-h", "-r", "-j", ",".join(ids), "-o", "%i|%T|%r"])
    states = {}
    for line in out.splitlines():
        job, state, reason = line.split("|", 2)
        states[job] = (state, reason)
    return states


def job_state(job_id: str) -> str | None:
    """The state SLURM still remembers for ``job_id`` (``scontrol show job``; finished jobs for MinJobAge), or None."""
    try:
        out = _run(["scontrol", "-o", "show", "job", job_id])
    except SlurmError:
        return None  # purged from slurmctld's memory (no accounting here)
    m = re.search(r"JobState=(\S+)", out)
    return m.group(1) if m else None


def task_states(array_id: str) -> dict[int, str]:
    """``{task index: state}`` SLURM still knows for the array ``array_id`` (pending, running, finished)."""
    try:
        out = _run(["scontrol", "-o", "show", "job", array_id])
    except SlurmError:
        return {}
    states: dict[int, str] = {}
    for line in out.splitlines():
        task = re.search(r"ArrayTaskId=(\S+)", line)
        state = re.search(r"JobState=(\S+)", line)
        if not (task and state):
            continue
        for idx in _expand(task.group(1)):
            states[idx] = state.group(1)
    return states


def _expand(spec: str) -> list[int]:
    """``0,2-4%2`` -> [0, 2, 3, 4]."""
    out: list[int] = []
    for part in spec.split("%")[0].split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out += list(range(int(a), int(b.split(":")[0]) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def update_dependency(job_id: str, dependency: str) -> None:
    """Re-point a pending job's (or array task's) dependency, e.g. at a resubmitted task."""
    _run(["scontrol", "update", f"JobId={job_id}", f"Dependency={dependency}"])


def cancel(job_ids: Iterable[str]) -> None:
    ids = [j for j in job_ids if j]
    if ids:
        _run(["scancel", *ids])
