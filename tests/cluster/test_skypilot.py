"""conf/skypilot/*.yaml parse with SkyPilot's own parser (``sky.Task.from_yaml_config``); nothing is launched.

SkyPilot is not a project dependency: installing it into the project's venv
would downgrade click (skypilot 0.14 pins click<8.2) under Kedro's CLI. The
test uses ``sky`` when importable here, else the interpreter named by
``POLYGLOT_SKYPILOT_PYTHON`` (e.g. a separate venv: ``python -m venv
/tmp/sky && /tmp/sky/bin/pip install skypilot``), and skips otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SKY_DIR = Path(__file__).resolve().parents[2] / "conf" / "skypilot"
RUN_ID = "2026-12-01T09.38.23.123Z"

PARSE = """
import json, sys, yaml, sky
out = {}
for path, overrides in json.loads(sys.argv[1]).items():
    task = sky.Task.from_yaml_config(yaml.safe_load(open(path)), env_overrides=[tuple(o) for o in overrides])
    out[path] = {"name": task.name, "envs": dict(task.envs), "run": task.run,
                 "resources": [{"accelerators": r.accelerators, "use_spot": r.use_spot,
                                "job_recovery": r.job_recovery} for r in task.resources],
                 "storage": {k: [v.name, v.mode.value] for k, v in task.storage_mounts.items()}}
print(json.dumps(out))
"""


def _python() -> str:
    if importlib.util.find_spec("sky") is not None:
        return sys.executable
    other = os.environ.get("POLYGLOT_SKYPILOT_PYTHON")
    if other and Path(other).is_file():
        return other
    pytest.skip("SkyPilot is not installed (it would downgrade click in the project venv; "
                "set POLYGLOT_SKYPILOT_PYTHON to a venv's python that has it)")  # fmt: skip


def test_skypilot_tasks_parse_with_skypilots_parser():
    files = {str(SKY_DIR / "prepare.yaml"): [["GRID_RUN_ID", RUN_ID]],
             str(SKY_DIR / "mix.yaml"): [["GRID_RUN_ID", RUN_ID], ["MIX", "mono"]],
             str(SKY_DIR / "final.yaml"): [["GRID_RUN_ID", RUN_ID]]}  # fmt: skip
    proc = subprocess.run([_python(), "-c", PARSE, json.dumps(files)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tasks = {Path(k).stem: v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    assert set(tasks) == {"prepare", "mix", "final"}
    for name, task in tasks.items():
        assert task["envs"]["GRID_RUN_ID"] == RUN_ID
        # spot with recovery everywhere; data and checkpoints on one bucket
        assert all(r["use_spot"] and r["job_recovery"]["strategy"] for r in task["resources"]), name
        assert list(task["storage"].values()) == [["polyglot-kedro-data", "MOUNT_CACHED"]], name
        assert "POLYGLOT_GRID_RUN_ID=$GRID_RUN_ID" in task["run"] and "kedro grid command" in task["run"]
        assert "--run-id $GRID_RUN_ID -o /tmp/" in task["run"]
    mix = tasks["mix"]
    assert mix["envs"]["MIX"] == "mono"
    assert all(sum(r["accelerators"].values()) == 4 for r in mix["resources"])  # 4 GPUs per mix, any listed type


def test_required_envs_are_enforced_by_skypilot():
    proc = subprocess.run([_python(), "-c", PARSE, json.dumps({str(SKY_DIR / "mix.yaml"): [["GRID_RUN_ID", RUN_ID]]})],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode != 0
    assert "MIX" in proc.stderr
