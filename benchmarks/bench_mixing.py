"""Data mixing wall time at paper scale (3,200 per mix, 200 per language) on the real Guanaco rows.

The largest real Guanaco data here is the 518-row eval split
(``../shared/data/guanaco/openassistant_best_replies_eval.jsonl``); it is
replicated to ``--rows`` rows (default 10,000, a stand-in for the 9,846-row
train split), each copy a new row (``parse_guanaco_rows`` gives ids by row).
Runs the data_mixing nodes with ``conf/paper`` parameters and the paper's grid
(mono, multi2..6, guanaco; plus the MT source selection): parse, LID, build
mixes, select MT sources, each timed.

    python benchmarks/bench_mixing.py [--rows 10000] [--repeat 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml
from common import figure, with_figures

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
GUANACO = REPO.parent / "shared" / "data" / "guanaco" / "openassistant_best_replies_eval.jsonl"


def paper_params() -> tuple[dict, dict]:
    """``data_mixing`` and ``mixes`` from conf/paper (native mixes only: MT needs translations)."""
    dm = yaml.safe_load((REPO / "conf" / "paper" / "parameters_data_mixing.yml").read_text())["data_mixing"]
    mixes = yaml.safe_load((REPO / "conf" / "paper" / "parameters.yml").read_text())["mixes"]
    return dm, mixes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=GUANACO)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.data.is_file():
        print(f"skipped: Guanaco file not found at {args.data}")
        if args.json:
            args.json.write_text(json.dumps(with_figures({"skipped": str(args.data)}, [
                figure("mixing", "wall time, paper scale", None, "s", note=f"skipped: {args.data} absent")])))
        return

    import pandas as pd

    from polyglot_kedro.pipelines.data_mixing.mixes import build_mixes
    from polyglot_kedro.pipelines.data_mixing.mt_mixes import select_mt_sources
    from polyglot_kedro.pipelines.data_mixing.nodes import (
        identify_languages,
        parse_guanaco_rows,
    )
    from polyglot_kedro.pipelines.data_mixing.params import ShortSupplyError

    dm, mixes = paper_params()
    texts = [json.loads(line)["text"] for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    raw = pd.DataFrame({"text": [texts[i % len(texts)] for i in range(args.rows)]})
    policy = dm["mixing"]["on_short_supply"]
    t = {}
    t0 = time.perf_counter()
    parsed, rejected = parse_guanaco_rows(raw, dm)
    t["parse"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lid = identify_languages(parsed, dm)
    t["lid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        built = build_mixes(lid, dm, mixes)
    except ShortSupplyError as exc:  # too few rows of a language even after replication
        print(f"short supply with on_short_supply={policy}: {exc}; retrying with fill_with_base")
        policy = "fill_with_base"
        dm = {**dm, "mixing": {**dm["mixing"], "on_short_supply": policy}}
        t0 = time.perf_counter()
        built = build_mixes(lid, dm, mixes)
    t["mixes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mt = select_mt_sources(lid, dm, mixes)
    t["mt_sources"] = time.perf_counter() - t0
    total = sum(t.values())
    kept = lid[lid["keep"]]["lang"].value_counts()
    order = dm["mixing"]["language_order"]
    supply = {lang: int(kept.get(lang, 0)) for lang in ["en", *order]}
    sizes = {m: len(df) for m, df in built.items()}

    print(f"data mixing at paper scale: {args.rows} rows (518 real eval rows replicated), "
          f"{len(parsed)} parsed, {len(rejected)} rejected; kept supply {supply}; on_short_supply={policy}")
    print(f"{'step':12s} {'seconds':>8s}")
    for k, v in t.items():
        print(f"{k:12s} {v:8.3f}")
    print(f"{'total':12s} {total:8.3f}")
    print(f"mixes: {sizes}; mt sources: {len(mt)} rows")
    if args.json:
        note = (f"{args.rows} rows = the real 518-row Guanaco eval split replicated with fresh ids (stand-in for the "
                f"9,846-row train split); paper grid {sorted(built)}; on_short_supply={policy}")
        figs = [figure("mixing", "wall time, paper scale (parse+LID+mixes+MT sources)", round(total, 3), "s", note=note)]
        figs += [figure("mixing", f"wall time step {k}", round(v, 3), "s", ratio=v / total, ratio_of="share of total")
                 for k, v in t.items()]
        figs.append(figure("mixing", "rows per second end to end", round(args.rows / total, 1), "rows/s"))
        args.json.write_text(json.dumps(with_figures({"rows": args.rows, "seconds": t, "supply": supply,
                                                      "mix_sizes": sizes, "policy": policy}, figs), indent=2))


if __name__ == "__main__":
    main()
