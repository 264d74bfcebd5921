"""What a grid task's log says about its run: the ``[grid]`` stamps of the sbatch script and Kedro's node time.

Shared by tests/cluster (dependency order) and benchmarks/bench_cluster.py (makespan, overhead).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

STAMP = re.compile(r"^\[grid\] (\S+Z) (.*)$", re.MULTILINE)
NODES_TIME = re.compile(r"Pipeline execution completed\s+(?:\S+\.py:\d+\s+)?successfully in ([\d.]+) sec")


def _ts(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def task_times(log: Path) -> dict:
    """Start and end (the ``[grid]`` lines of the last attempt; None when absent) and Kedro's node seconds.

    ``start`` is the script's first line (``job <id> task ...``), ``end`` its ``done``
    line, so a task that failed or was requeued before its end has ``end`` None for
    that attempt; ``attempts`` counts the starts.
    """
    text = log.read_text(errors="replace")
    stamps = STAMP.findall(text)
    starts = [_ts(t) for t, what in stamps if what.startswith("job ")]
    ends = [_ts(t) for t, what in stamps if what == "done"]
    end = ends[-1] if ends and (not starts or ends[-1] >= starts[-1]) else None
    return {"start": starts[-1] if starts else None, "end": end, "attempts": len(starts),
            "nodes_s": sum(float(x) for x in NODES_TIME.findall(text))}  # fmt: skip
