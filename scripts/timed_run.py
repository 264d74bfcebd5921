"""Run a command and record its wall time and the machine's load beside its results.

Usage:
    python scripts/timed_run.py OUT.json -- COMMAND [ARGS ...]

Writes ``OUT.json``: the command, its exit status, start and end (UTC), wall
seconds, the CPU count and the 1-minute load average at start and end, the
git commit and whether the tree had uncommitted changes. ``make demo`` writes
``data/08_reporting/run_time.json`` this way; copied into a committed results
bundle, ``scripts/demo_results.py`` cites it, so the README's wall time comes
from a file, not from memory. Exits with the command's status.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, command = Path(argv[0]), argv[2:]
    started, load0, t0 = dt.datetime.now(dt.timezone.utc), os.getloadavg()[0], time.perf_counter()
    status = subprocess.call(command)
    record = {
        "command": " ".join(command), "exit_status": status,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - t0, 1), "cpus": os.cpu_count(),
        "loadavg_1min_start": round(load0, 2), "loadavg_1min_end": round(os.getloadavg()[0], 2),
        "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain")),
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{record['command']}: exit {status}, {record['wall_s']} s wall on {record['cpus']} CPUs -> {out}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
