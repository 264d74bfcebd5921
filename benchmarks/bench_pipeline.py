"""The embedded default ``kedro run`` end to end: wall time and peak RSS.

Runs ``kedro run`` in a fresh temporary copy of the project (config + the
embedded demo data, code from the install; ``copy_project`` of tests/conftest.py),
so the working tree's data/ is untouched and nothing is reused from an earlier
run. Peak RSS is the largest sum over the whole process tree (vLLM and
training children included), polled every 0.2 s with psutil; ``/usr/bin/time``'s
max RSS of the largest single process is reported too where available.

    python benchmarks/bench_pipeline.py [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import figure, with_figures

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import copy_project  # noqa: E402


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and all its descendants now."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temporary project (path printed)")
    ap.add_argument("--timeout", type=float, default=1500)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="polyglot_bench_"))
    project = copy_project(tmp)
    kedro = str(Path(sys.executable).with_name("kedro"))
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    log = project / "bench_run.log"
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen([*timer, kedro, "run"], cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, tree_rss(ps))
            except psutil.NoSuchProcess:
                break
            if time.perf_counter() - t0 > args.timeout:
                proc.kill()
                break
            time.sleep(0.2)
        proc.wait()
    wall = time.perf_counter() - t0
    text = log.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    time_max = int(m.group(1)) / 1024 if m else None
    ok = proc.returncode == 0
    print(f"kedro run (embedded default) in {project}: exit {proc.returncode}, wall {wall:.1f}s, "
          f"peak RSS process tree {peak / 2**20:.0f} MiB" + (f", /usr/bin/time max RSS {time_max:.0f} MiB" if time_max else ""))
    if not ok:
        print(text[-4000:])
    if args.json:
        note = "fresh copy of the project, demo data, CPU" + ("" if ok else f"; FAILED with exit {proc.returncode}")
        figs = [figure("pipeline", "kedro run wall time", round(wall, 1) if ok else None, "s", note=note),
                figure("pipeline", "kedro run peak RSS (process tree, psutil 0.2 s poll)", round(peak / 2**20, 1) if ok else None,
                       "MiB", note=note)]  # fmt: skip
        if time_max:
            figs.append(figure("pipeline", "kedro run max RSS of one process (/usr/bin/time -v)", round(time_max, 1) if ok else None,
                               "MiB", note="largest single process (the tree sum is the row above)"))  # fmt: skip
        args.json.write_text(json.dumps(with_figures({"exit": proc.returncode, "wall_s": wall}, figs), indent=2))
    if args.keep:
        print(f"kept {project}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        errors = re.findall(r"^\s*(\w+(?:Error|Exception): .*)$", text, flags=re.M)
        raise SystemExit(f"kedro run failed (exit {proc.returncode}): {errors[-1] if errors else 'see output above'}")


if __name__ == "__main__":
    main()
