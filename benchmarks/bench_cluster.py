"""The embedded default grid as SLURM jobs on the local one-node cluster vs one sequential ``kedro run``.

Both run in the same benchmark run, one after the other (no contention
between them), each in a fresh copy of the project (``copy_project`` of
tests/conftest.py). Figures:

* makespan of ``kedro grid submit`` (submission to the last job's end) and the
  sequential wall time, with their ratio (sequential / grid: >1 means the grid
  is faster; up to ~2x with 2 CPUs running two mixes at once);
* per-job overhead: a task's wall time minus the time Kedro spent running its
  nodes (process start, imports, session, catalog: paid once per job);
* queueing delay: from the end of a task's last dependency to its start.

The local SLURM is started when absent (root; tests/cluster/local_slurm.py)
and stopped after if this script started it.

    python benchmarks/bench_cluster.py [--json out.json] [--env ENV | --mixes MIX ...] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import figure, with_figures

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.cluster import local_slurm  # noqa: E402
from tests.cluster.conftest import only_mixes  # noqa: E402
from tests.cluster.grid_logs import task_times  # noqa: E402
from tests.conftest import copy_project  # noqa: E402

from polyglot_kedro.cluster import slurm  # noqa: E402

KEDRO = str(Path(sys.executable).with_name("kedro"))
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "PYTHONUNBUFFERED": "1"}  # fmt: skip
ENV.pop("POLYGLOT_GRID_RUN_ID", None)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def grid_timings(root: Path, man: dict, t_submit: float) -> tuple[dict, float, list[float], list[float]]:
    """Per-task times from a finished grid run's logs: tasks, makespan from ``t_submit``, overheads, queueing delays.

    Overhead: a task's wall time minus the time Kedro ran its nodes. Queueing delay: from
    the end of a task's last dependency (per index for ``aftercorr``) to its start.
    """
    tasks = {p.stem: task_times(p) for p in sorted((root / "logs").glob("*.out"))}
    missing = {k: t for k, t in tasks.items() if t["start"] is None or t["end"] is None}
    if missing:
        raise SystemExit(f"task logs without a start or done stamp: {sorted(missing)} in {root / 'logs'}")
    makespan = max(t["end"] for t in tasks.values()) - t_submit
    overheads = [t["end"] - t["start"] - t["nodes_s"] for t in tasks.values()]
    ends = {}
    for job in man["jobs"]:
        for i in job["indices"] or [None]:
            name = f"{job['key']}_{man['slurm_ids'][job['key']]}" + (f"_{i}" if i is not None else "")
            ends[(job["key"], i)] = tasks[name]
    delays = []
    for job in man["jobs"]:
        for i in job["indices"] or [None]:
            ups = [ends[(d["job"], i if d["kind"] == "aftercorr" else j)]["end"]
                   for d in job["depends"] for j in ([i] if d["kind"] == "aftercorr" else
                                                     (next(x for x in man["jobs"] if x["key"] == d["job"])["indices"] or [None]))]  # fmt: skip
            if ups:
                delays.append(ends[(job["key"], i)]["start"] - max(ups))
    return tasks, makespan, overheads, delays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--env", default="local", help="config env of both runs (default: the embedded default)")
    ap.add_argument("--mixes", nargs="+", help="keep only these mixes of the embedded default (a config env "
                    "'bench_cluster' written into both copies; default: every mix)")
    ap.add_argument("--timeout", type=float, default=3000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    bench = "cluster"
    was_up = local_slurm.is_up()
    why = None if was_up else local_slurm.start()
    if why:
        figs = [figure(bench, "grid makespan", None, "s", note=f"skipped: {why}")]
        print(f"skipped: {why}")
        if args.json:
            args.json.write_text(json.dumps(with_figures({"skipped": why}, figs), indent=2))
        return
    tmp = Path(tempfile.mkdtemp(prefix="polyglot_bench_cluster_"))
    try:
        seq, grid = copy_project(_mk(tmp / "seq")), copy_project(_mk(tmp / "grid"))
        if args.mixes:
            args.env = "bench_cluster"
            for copy in (seq, grid):
                (copy / "conf" / args.env).mkdir()
                (copy / "conf" / args.env / "parameters.yml").write_text(only_mixes(*args.mixes))
        load = {"seq_start": _load()}
        t0 = time.time()
        proc = subprocess.run([KEDRO, "run", "--env", args.env], cwd=seq, env=ENV, capture_output=True, text=True,
                              timeout=args.timeout)  # fmt: skip
        seq_wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"sequential kedro run failed: {(proc.stdout + proc.stderr)[-3000:]}")
        load["seq_end"] = _load()
        print(f"sequential kedro run: {seq_wall:.1f}s (load average {load['seq_start']} -> {load['seq_end']})")

        t_submit = time.time()
        proc = subprocess.run([KEDRO, "grid", "submit", "--env", args.env], cwd=grid, env=ENV, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        m = re.search(r"grid run (\S+) \(env", proc.stdout)
        if proc.returncode != 0 or not m:
            raise SystemExit(f"kedro grid submit failed: {(proc.stdout + proc.stderr)[-3000:]}")
        submit_s = time.time() - t_submit
        root = grid / "data" / "09_grid" / m.group(1)
        man = json.loads((root / "manifest.json").read_text())
        ids = list(man["slurm_ids"].values())
        deadline = time.time() + args.timeout
        while slurm.queue_states(ids):  # SLURM orders and runs the jobs; this only waits for the last one
            if time.time() > deadline:
                raise SystemExit(f"grid did not finish in {args.timeout:.0f}s")
            time.sleep(2)
        failed = {k: s for k, i in man["slurm_ids"].items() for s in [slurm.task_states(i) or {0: slurm.job_state(i)}]
                  if set(s.values()) != {"COMPLETED"}}  # fmt: skip
        load["grid_end"] = _load()
        if failed:
            raise SystemExit(f"grid jobs did not all complete: {failed}; logs in {root / 'logs'}")

        # Same seeds, same numbers: the grid's report aggregates against the sequential run's.
        equal, equal_note = _same_aggregates(seq, grid, man["run_id"])
        print(f"aggregates: {equal_note}")
        tasks, makespan, overheads, delays = grid_timings(root, man, t_submit)
        speedup = seq_wall / makespan
        n_tasks = len(tasks)
        print(f"grid: {n_tasks} tasks, makespan {makespan:.1f}s (submit {submit_s:.1f}s), sequential {seq_wall:.1f}s, "
              f"ratio sequential/grid {speedup:.2f}; per-task overhead median {statistics.median(overheads):.1f}s; "
              f"queueing delay median {statistics.median(delays):.1f}s")  # fmt: skip
        mixes = sorted({m for j in man["jobs"] for m in j["mixes"] or []})
        note = (f"env {args.env}, {len(mixes)} mixes {' '.join(mixes)}, {len(man['jobs'])} jobs / {n_tasks} tasks, "
                f"{os.cpu_count()} CPUs, local one-node SLURM; 1-min load average {load['seq_start']} -> "
                f"{load['seq_end']} (sequential), -> {load['grid_end']} (grid end)")
        figs = [
            figure(bench, "sequential kedro run wall time", round(seq_wall, 1), "s", note=note),
            figure(bench, "grid makespan (submit to last job end)", round(makespan, 1), "s",
                   ratio=speedup, ratio_of="sequential / grid", note=note),
            figure(bench, "kedro grid submit (planning + sbatch)", round(submit_s, 1), "s"),
            figure(bench, "per-task overhead (wall - node time), median", round(statistics.median(overheads), 1), "s",
                   note=f"min {min(overheads):.1f}, max {max(overheads):.1f}: process start, imports, session, catalog"),
            figure(bench, "queueing delay after dependencies, median", round(statistics.median(delays), 1), "s",
                   note=f"max {max(delays):.1f}"),
            figure(bench, "grid aggregates equal to the sequential run's", int(equal), "bool", note=equal_note),
        ]  # fmt: skip
        if args.json:
            payload = {"sequential_s": seq_wall, "makespan_s": makespan, "submit_s": submit_s, "loadavg_1min": load,
                       "run_id": man["run_id"], "mixes": mixes, "aggregates_equal": equal,
                       "aggregates_note": equal_note, "tasks": tasks}
            args.json.write_text(json.dumps(with_figures(payload, figs), indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
        if not was_up:
            local_slurm.stop()


def _same_aggregates(seq: Path, grid: Path, run_id: str) -> tuple[bool, str]:
    """Whether the grid's ``aggregates.csv`` (its run id's version) equals the sequential run's (its only version)."""
    import pandas as pd

    rel = Path("data/08_reporting/aggregates.csv")

    def load(project: Path, version: str | None) -> pd.DataFrame:
        versions = sorted(p.name for p in (project / rel).iterdir() if p.is_dir())
        df = pd.read_csv(project / rel / (version or versions[-1]) / rel.name)
        keys = [c for c in ("model", "mix", "task", "lang", "prompt_setting", "metric") if c in df.columns]
        return df.sort_values(keys).reset_index(drop=True)

    a, b = load(grid, run_id), load(seq, None)
    try:
        pd.testing.assert_frame_equal(a, b)
    except AssertionError as exc:
        return False, f"differ ({len(a)} grid rows, {len(b)} sequential rows): {str(exc).splitlines()[0][:200]}"
    return True, f"equal ({len(a)} rows, pandas.testing.assert_frame_equal)"


def _mk(p: Path) -> Path:
    p.mkdir(parents=True)
    return p


if __name__ == "__main__":
    main()
