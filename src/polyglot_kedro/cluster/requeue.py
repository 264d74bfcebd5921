"""``python -m polyglot_kedro.cluster.requeue ROOT JOB MIX TASK``: a requeued task's rerun re-points its dependents.

Called by the sbatch script when ``SLURM_RESTART_COUNT`` > 0, before its steps
run; see ``submit.repoint_after_restart`` for why SLURM needs it. ``MIX`` is
``''`` for a single job; ``TASK`` is the task's own SLURM id (``<array>_<index>``
or the job id).
"""

from __future__ import annotations

import sys
from pathlib import Path

from polyglot_kedro.cluster.submit import GridRun, repoint_after_restart


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    root, job_key, mix, task = argv
    run = GridRun.load(Path(root))
    updates = repoint_after_restart(run, job_key, mix or None, task)
    for target, dependency in updates:
        print(f"[grid] re-pointed {target}: Dependency={dependency or '(none)'}")
    if not updates:
        print("[grid] no pending job waits on this task")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
