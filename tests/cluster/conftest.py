"""A real one-node SLURM for the grid tests, and small project copies to submit from."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from polyglot_kedro.cluster import slurm as sl
from polyglot_kedro.grid import load_mixes

from ..conftest import REPO_ROOT, copy_project
from . import local_slurm

KEDRO = str(Path(sys.executable).with_name("kedro"))


def only_mixes(*keep: str) -> str:
    """A parameters.yml that drops every mix of the embedded default but ``keep`` (a null entry removes a mix).

    Read from conf/base at call time, so mixes added to the default grid are dropped too.
    """
    drop = sorted(set(load_mixes(REPO_ROOT, env="base")) - set(keep))
    missing = set(keep) - set(load_mixes(REPO_ROOT, env="base"))
    assert not missing, f"not mixes of conf/base: {sorted(missing)}"
    text = "mixes:\n" + "".join(f"  {m}: null\n" for m in drop)
    # judge noise on the kept mixes of conf/base's list (a dropped mix there is a start-up error)
    base = yaml.safe_load((REPO_ROOT / "conf/base/parameters_judging.yml").read_text())
    noise = base["judging"]["chat"]["judge_noise"]
    if noise.get("enabled") and noise.get("mixes") is not None:
        kept = [m for m in noise["mixes"] if m in keep]
        text += "judging:\n  chat:\n    judge_noise:\n" + (f"      mixes: {kept}\n" if kept else "      enabled: false\n")
    return text


# The reduced grid of the CLI tests and the slow whole-grid test: two mixes of the embedded default.
TWO_MIXES = only_mixes("mono", "multi2")


@pytest.fixture(scope="session")
def slurm():
    """A running local SLURM; started here (as root, installing the packages if needed) and stopped after."""
    was_up = local_slurm.is_up()
    if not was_up:
        why = local_slurm.start()
        if why:
            pytest.skip(f"no local SLURM: {why}")
    yield
    if not was_up:
        local_slurm.stop()


def kedro(project: Path, *args: str, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    full.pop("KEDRO_ENV", None)
    full.pop("POLYGLOT_GRID_RUN_ID", None)
    return subprocess.run([KEDRO, *args], cwd=project, env=full, capture_output=True, text=True, timeout=timeout)


def grid_project(dest: Path, env: str, files: dict[str, str]) -> Path:
    """A project copy with an extra config environment ``env`` made of ``files`` (name -> YAML text)."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_project(dest)
    (dest / "conf" / env).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (dest / "conf" / env / name).write_text(text)
    return dest


@pytest.fixture
def cancel_grids():
    """Collects (project, run id) of submitted grids; cancels whatever of them is still queued after the test."""
    grids: list[tuple[Path, str]] = []
    yield grids
    for project, run_id in grids:
        try:
            sl.cancel(list(sl.queue_states(all_ids(manifest(project, run_id)))))
        except (OSError, sl.SlurmError):
            pass


def submitted_run_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    m = re.search(r"grid run (\S+) \(env", result.stdout)
    assert m, result.stdout[-2000:]
    return m.group(1)


def manifest(project: Path, run_id: str) -> dict:
    return json.loads((project / "data" / "09_grid" / run_id / "manifest.json").read_text())


def all_ids(man: dict) -> list[str]:
    return list(man["slurm_ids"].values()) + [r["slurm_id"] for r in man["resubmits"]]


def wait_until(predicate, timeout: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_for_grid(project: Path, run_id: str, timeout: float) -> None:
    """Until no job of the grid is pending or running; fails early when all that is left can never start.

    A job may show DependencyNeverSatisfied for a while and still run: a requeued
    task's rerun points its dependents back at itself (``cluster.requeue``). The
    grid is stuck only when every job still queued waits on a failed one.
    """

    def settled():
        active = sl.queue_states(all_ids(manifest(project, run_id)))
        stuck = {k: v for k, v in active.items() if v[1] == "DependencyNeverSatisfied"}
        assert not active or len(stuck) < len(active), \
            f"jobs waiting on a failed job: {stuck}; logs: {_log_tails(project, run_id)}"
        return not active

    wait_until(settled, timeout, f"grid run {run_id} to finish ({project})", poll=2)


def _log_tails(project: Path, run_id: str) -> str:
    logs = sorted((project / "data" / "09_grid" / run_id / "logs").glob("*.out"))
    return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]) for p in logs)
