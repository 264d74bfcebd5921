"""Run every benchmark and the fault-injection suite; print one table; write results/.

    make bench        # or: .venv/bin/python benchmarks/run_all.py [--quick] [--only lid mixing ...]

Each benchmark runs as a subprocess with ``--json`` (the common row format of
``benchmarks/common.py``), several times where it is cheap; a figure's value is
the median over the runs, and so is its ratio (a comparison measured inside
the same run: ours/other LID, batched/one-at-a-time, packing on/off, measured
vs ideal requests/s). ``pytest tests/faults`` runs once with
``POLYGLOT_FAULT_FIGURES`` set, and its counters become rows too.

Writes ``benchmarks/results/latest.json`` and ``latest.md`` plus a timestamped
copy of each. Timings on a shared machine are noisy: the load average at the
start and the end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import read_figures

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
SHARED = REPO.parent / "shared" / "data"

# name, script arguments, repetitions (--quick: 1), timeout per run (s)
BENCHES: list[tuple[str, list[str], int, int]] = [
    ("lid", ["bench_lid.py", "--n", "10000", "--repeat", "3"], 3, 300),
    ("mixing", ["bench_mixing.py", "--rows", "10000"], 3, 300),
    ("llm_client", ["bench_llm_client.py", "--latency", "0.2", "--levels", "1", "4", "16"], 3, 300),
    ("generation", ["bench_generation.py", "--prompts", "16", "--new-tokens", "32", "--batch-size", "16"], 1, 600),
    # the demo's chat generation, old vs new settings on SmolLM2-135M (skips, a row says why, without data/06_models/base_model)
    # (make demo's whole generation workload of one mix: 319 prompts; old 3-6 min, new ~0.5 min in bf16, ~2 min in fp32, on 2 cores)
    ("demo_generation", ["bench_demo_generation.py", "--rounds", "1"], 1, 1800),
    ("training", ["bench_training.py", "--steps", "30", "--rows", "64"], 1, 600),
    ("pipeline", ["bench_pipeline.py"], 1, 1500),
    ("cluster", ["bench_cluster.py"], 1, 3600),  # local one-node SLURM; skips (a row says why) when it cannot start
]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1"}  # fmt: skip


def _failed(name: str, why: str) -> dict:
    return {"benchmark": name, "figure": "(benchmark failed)", "value": None, "unit": "", "ratio": None,
            "ratio_of": None, "note": why}  # fmt: skip


def run_bench(name: str, argv: list[str], reps: int, timeout: int, tmp: Path) -> tuple[list[list[dict]], float, str]:
    """Run one benchmark ``reps`` times; its figure rows per run, total seconds, and its last output."""
    runs: list[list[dict]] = []
    t0 = time.perf_counter()
    tail = ""
    for rep in range(reps):
        out = tmp / f"{name}-{rep}.json"
        cmd = [sys.executable, str(HERE / argv[0]), *argv[1:], "--json", str(out)]
        print(f"[{time.strftime('%H:%M:%S')}] {name} run {rep + 1}/{reps}: {' '.join(cmd[1:])}", flush=True)
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            runs.append([_failed(name, f"timed out after {timeout}s")])
            break
        tail = (proc.stdout or "")[-3000:]
        if proc.returncode != 0 or not out.is_file():
            last = ((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()[-1:] or [""]
            runs.append([_failed(name, f"exit {proc.returncode}: {last[0][:300]}")])
            print(tail + (proc.stderr or "")[-3000:], flush=True)
            break
        runs.append(read_figures(out))
    return runs, time.perf_counter() - t0, tail


def fault_rows(figures: dict[str, dict], summary: dict) -> list[dict]:
    """Benchmark-table rows from the fault suite's counters (tests/faults/conftest.py)."""
    rows = []

    def row(name, value, unit, note=""):
        rows.append({"benchmark": "faults", "figure": name, "value": value, "unit": unit, "ratio": None,
                     "ratio_of": None, "note": note})  # fmt: skip

    def total(key):
        return sum(int(v[key]) for v in figures.values() if isinstance(v.get(key), (int, float)) and not isinstance(v.get(key), bool))

    row("tests passed / xfailed (documented bugs) / failed", f"{summary['passed']} / {summary['xfailed']} / {summary['failed']}",
        "tests", f"pytest tests/faults, {summary['seconds']:.0f}s")  # fmt: skip
    row("faults injected (all tests)", total("faults_injected"), "count")
    row("items completed (all tests)", total("items_completed"), "count")
    row("requests re-sent without a fault (all tests)", total("resent_without_fault"), "count", "must be 0")
    # Not 0 by design: a retry after a client timeout (or a 200 whose body broke, or a re-send of what was
    # in flight at a kill) may be billed on top of the first attempt -- real APIs bill timed-out requests.
    row("requests possibly billed twice (all tests)", total("possibly_billed_twice"), "count",
        "retries after a client timeout or a broken 200 body, re-sends of requests in flight at a kill")
    row("items lost (all tests)", total("items_lost"), "count", "must be 0")
    f = figures.get("test_judging_run_survives_flaky_endpoint")
    if f:
        row("flaky judge: fault rate over calls", f["fault_rate"], "fraction",
            f"{f['faults_injected']} faults {f['fault_kinds']} in {f['calls']} calls, {f['items']} items")
        row("flaky judge: items completed", f"{f['items_completed']}/{f['items']}", "items")
        row("flaky judge: requests possibly billed twice", f.get("possibly_billed_twice"), "requests",
            "retries after a client timeout or a broken 200 body")
        row("flaky judge: cached rerun requests", f["rerun_requests"], "requests")
    f = figures.get("test_judging_killed_and_restarted")
    if f:
        row("SIGKILL judging: finished before kill -> restart requests",
            f"{f['finished_before_kill']} -> {f['restart_requests']}", "requests",
            f"{f['items']} items, killed after {f['killed_after_completed']} completed (seed {f['kill_seed']}); "
            f"in flight at kill and re-sent: {f['inflight_at_kill_resent']}, "
            f"possibly billed twice: {f.get('possibly_billed_twice', '?')}")  # fmt: skip
    f = figures.get("test_training_killed_after_checkpoint_resumes")
    if f:
        row("SIGKILL training after checkpoint-2: steps redone", f["steps_redone"], "steps",
            f"resumed={f['resumed']}, steps after restart {f['steps_after_restart']}")
    f = figures.get("test_fake_api_key_leaves_no_trace")
    if f:
        row("fake API key: hits in logs + output files", f["key_hits_in_logs"] + f["key_hits_in_files"], "hits",
            f"{f['files_searched']} files (parquet, csv, json, sqlite cache, run.log) + captured logs")
    missing = [v for k, v in figures.items() if k.startswith("test_missing_column")]
    if missing:
        kinds = sorted({v["error_type"] for v in missing})
        row("missing column: stages whose error names the column", f"{sum(v['names_column'] for v in missing)}/{len(missing)}",
            "stages", f"error types {kinds}")  # fmt: skip
    return rows


def run_faults(tmp: Path) -> tuple[list[dict], float]:
    target = tmp / "fault_figures.json"
    print(f"[{time.strftime('%H:%M:%S')}] faults: pytest tests/faults", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:cacheprovider"], cwd=REPO,
                          env={**_env(), "POLYGLOT_FAULT_FIGURES": str(target)}, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    seconds = time.perf_counter() - t0
    last = (proc.stdout or "").strip().splitlines()[-1:] or [""]
    summary = {"seconds": seconds, "passed": 0, "xfailed": 0, "failed": 0}
    for part in last[0].replace("=", "").split(","):
        words = part.split()
        if len(words) >= 2 and words[0].isdigit() and words[1] in summary:
            summary[words[1]] = int(words[0])
    if not target.is_file():
        print(proc.stdout[-3000:], proc.stderr[-2000:])
        return [_failed("faults", f"exit {proc.returncode}: {last[0]}")], seconds
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
    return fault_rows(json.loads(target.read_text()), summary), seconds


def combine(runs: list[list[dict]]) -> list[dict]:
    """Median value and ratio per (benchmark, figure) over the runs, in first-seen order."""
    order: list[tuple[str, str]] = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        for r in run:
            key = (r["benchmark"], r["figure"])
            if key not in groups:
                order.append(key)
                groups[key] = []
            groups[key].append(r)
    out = []
    for key in order:
        rs = groups[key]
        nums = [r["value"] for r in rs if isinstance(r["value"], (int, float)) and not isinstance(r["value"], bool)]
        ratios = [r["ratio"] for r in rs if isinstance(r.get("ratio"), (int, float))]
        value = statistics.median(nums) if nums else rs[0]["value"]
        if nums and all(isinstance(v, int) for v in nums) and float(value).is_integer():
            value = int(value)
        spread = f"min {min(nums):g}, max {max(nums):g}" if len(nums) > 1 else ""
        out.append({**rs[0], "value": value, "runs": len(rs),
                    "ratio": statistics.median(ratios) if ratios else None, "spread": spread})  # fmt: skip
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.0f}"
    return str(v)


def table(rows: list[dict], *, markdown: bool) -> str:
    head = ["benchmark", "figure", "value", "unit", "runs", "ratio", "ratio of"] + (["note"] if markdown else [])
    body = [[r["benchmark"], r["figure"], _fmt(r["value"]), r["unit"], str(r.get("runs", 1)), _fmt(r.get("ratio")),
             r.get("ratio_of") or ""] + ([" ".join(x for x in (r.get("note") or "", r.get("spread") and f"({r['spread']})") if x)]
                                         if markdown else []) for r in rows]  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in b) + " |" for b in body]
        return "\n".join(lines)
    widths = [min(60, max(len(h), *(len(b[i]) for b in body))) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'>' if i in (2, 4, 5) else '<'}{w}.{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*b) for b in body)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one run of everything")
    ap.add_argument("--only", nargs="+", help="benchmark names (lid mixing llm_client generation demo_generation training pipeline cluster faults)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    t_all = time.perf_counter()
    rows: list[dict] = []
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="polyglot_bench_") as tmp:
        for name, argv, reps, timeout in BENCHES:
            if args.only and name not in args.only:
                continue
            if name in ("lid",) and not SHARED.is_dir():
                rows.append({**_failed(name, f"skipped: {SHARED} absent"), "figure": "(skipped)", "runs": 0})
                continue
            runs, seconds[name], _ = run_bench(name, argv, 1 if args.quick else reps, timeout, Path(tmp))
            rows += combine(runs)
        if not args.only or "faults" in args.only:
            fr, seconds["faults"] = run_faults(Path(tmp))
            rows += [{**r, "runs": 1} for r in fr]
    wall = time.perf_counter() - t_all
    meta = {
        "started_utc": started.isoformat(timespec="seconds"), "wall_s": round(wall, 1),
        "seconds_per_benchmark": {k: round(v, 1) for k, v in seconds.items()},
        "cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(), "machine": platform.machine(), "quick": args.quick,
    }  # fmt: skip
    print()
    print(table(rows, markdown=False))
    for r in rows:
        if r["value"] is None:
            print(f"  {r['benchmark']}: {r['figure']}: {r.get('note')}")
    print(f"\nwall {wall:.0f}s ({', '.join(f'{k} {v:.0f}s' for k, v in seconds.items())}); "
          f"load average {meta['loadavg_start'][0]} at start, {meta['loadavg_end'][0]} at end on {meta['cpus']} CPUs")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    md = (f"# Benchmarks ({meta['started_utc']})\n\n`make bench` (benchmarks/run_all.py), {meta['cpus']} CPUs, load average "
          f"{meta['loadavg_start'][0]} -> {meta['loadavg_end'][0]} (shared machine: timings are noisy), "
          f"wall {wall:.0f}s. Value = median of `runs`; ratio measured in the same run.\n\n" + table(rows, markdown=True) + "\n")  # fmt: skip
    payload = json.dumps({"meta": meta, "rows": rows}, indent=2, default=str)
    written = []
    # a partial (--only) or --quick run never replaces latest.*
    for base in (stamp,) if (args.only or args.quick) else ("latest", stamp):
        (args.out / f"{base}.json").write_text(payload, encoding="utf-8")
        (args.out / f"{base}.md").write_text(md, encoding="utf-8")
        written += [args.out / f"{base}.json", args.out / f"{base}.md"]
    print("wrote " + ", ".join(str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in written))


if __name__ == "__main__":
    main()
