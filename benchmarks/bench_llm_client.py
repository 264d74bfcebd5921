"""Throughput of the LLM client against the local test server with a fixed injected latency.

For each concurrency level: requests/s with an empty cache, against the ideal
concurrency / latency (target >= 0.8 x ideal); then a rerun on the same cache,
which must send 0 requests.

    python benchmarks/bench_llm_client.py [--latency 0.2] [--levels 1 4 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import figure, with_figures  # noqa: E402
from llm_server import LLMTestServer  # noqa: E402

from polyglot_kedro.llm import ChatRequest, build_client  # noqa: E402


def bench(latency: float, levels: list[int], per_worker: int) -> list[dict]:
    rows = []
    with LLMTestServer(latency_s=latency) as server, tempfile.TemporaryDirectory() as tmp:
        for c in levels:
            n = max(8, per_worker * c)
            cfg = {"backend": "openai", "model": "bench", "base_url": server.base_url,
                   "max_concurrency": c, "cache_dir": f"{tmp}/c{c}"}  # fmt: skip
            reqs = [ChatRequest(f"{c}-{i}", [{"role": "user", "content": f"c{c} item {i}"}]) for i in range(n)]
            client = build_client(cfg, stage="bench")  # set-up is not part of the timing
            server.reset_counts()
            t0 = time.perf_counter()
            results = client.run(reqs)
            wall = time.perf_counter() - t0
            sent = server.total
            client = build_client(cfg, stage="bench")
            server.reset_counts()
            t1 = time.perf_counter()
            rerun = client.run(reqs)
            rerun_wall = time.perf_counter() - t1
            ideal = c / latency
            rows.append({
                "concurrency": c, "requests": n, "ok": sum(r.ok for r in results), "sent": sent,
                "wall_s": round(wall, 3), "req_per_s": round(n / wall, 2), "ideal_req_per_s": round(ideal, 2),
                "ratio": round(n / wall / ideal, 3),
                "rerun_sent": server.total, "rerun_cached": sum(r.cached for r in rerun),
                "rerun_wall_s": round(rerun_wall, 3),
            })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.2, help="injected server latency (s)")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--per-worker", type=int, default=8, help="requests per worker at each level")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = bench(args.latency, args.levels, args.per_worker)
    cols = ["concurrency", "requests", "ok", "wall_s", "req_per_s", "ideal_req_per_s", "ratio", "rerun_sent", "rerun_cached", "rerun_wall_s"]
    print(f"latency {args.latency}s; target ratio >= 0.8")
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>14}" for c in cols))
    if args.json:
        figs = []
        for r in rows:
            figs.append(figure("llm_client", f"req/s at concurrency {r['concurrency']}", r["req_per_s"], "req/s",
                               ratio=r["ratio"], ratio_of="measured / ideal (concurrency / latency)",
                               note=f"{r['requests']} requests, injected latency {args.latency}s, local server"))
            figs.append(figure("llm_client", f"cached rerun requests sent (concurrency {r['concurrency']})",
                               r["rerun_sent"], "requests", note=f"{r['rerun_cached']} of {r['requests']} from the cache"))
        args.json.write_text(json.dumps(with_figures({"latency_s": args.latency, "rows": rows}, figs), indent=2))


if __name__ == "__main__":
    main()
