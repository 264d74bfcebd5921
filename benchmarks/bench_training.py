"""LoRA training throughput on the tiny model: tokens/s and peak memory, packing off/on.

    python benchmarks/bench_training.py [--steps 30] [--rows 64] [--json out.json]

Each variant runs in its own process (so peak RSS is its own), through the
finetuning node's ``train_lora`` with the conf/base parameters, on the shared
Guanaco eval file when present (else a synthetic set).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
from pathlib import Path

from common import figure, with_figures

REPO = Path(__file__).resolve().parents[1]
GUANACO = REPO.parent / "shared" / "data" / "guanaco" / "openassistant_best_replies_eval.jsonl"


def _rows(n: int):
    import pandas as pd

    from polyglot_kedro.prompting import GuanacoParseError, parse_guanaco

    def ok(text: str) -> bool:  # data_mixing rejects malformed rows; do the same here
        try:
            parse_guanaco(text)
        except GuanacoParseError:
            return False
        return True

    if GUANACO.is_file():
        texts = [t for t in (json.loads(line)["text"] for line in GUANACO.read_text().splitlines()) if ok(t)][:n]
    else:
        texts = [f"### Human: Question {i}? ### Assistant: " + "answer " * (10 + i % 50) for i in range(n)]
    return pd.DataFrame({"id": [f"g{i:05d}" for i in range(len(texts))], "text": texts})


def _run(variant: dict) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from scripts.train_accelerate import load_parameters

    from polyglot_kedro import modeling
    from polyglot_kedro.config import resolve_model
    from polyglot_kedro.pipelines.finetuning.nodes import train_lora

    params = load_parameters(str(REPO / "conf"), "base", [])
    spec = resolve_model(params["models"], "tiny_llama")
    mix = _rows(variant["rows"])
    with tempfile.TemporaryDirectory() as tmp:
        base = modeling.prepare_base_model(spec, list(mix["text"]), Path(tmp) / "base")
        ft = {**params["finetuning"], "max_steps": variant["steps"], "save_steps": 10**6, "packing": variant["packing"],
              "max_length": variant["max_length"], "work_dir": f"{tmp}/ckpt/{{model}}/{{mix}}", "resume": False,
              "logging_steps": max(1, variant["steps"] // 10)}
        _, m = train_lora(mix, str(base), "tiny_llama", params["models"], ft, mix_name="bench")
    return {**variant, "tokens_seen": m["tokens_this_session"], "wall_s": round(m["wall_seconds"], 2),
            "tokens_per_s": round(m["tokens_per_second"], 1), "peak_rss_mib": round(m["peak_rss_mib"], 1),
            "final_loss": m["loss_curve"][-1]["loss"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    results = []
    for packing in (False, True):
        variant = {"packing": packing, "steps": args.steps, "rows": args.rows, "max_length": args.max_length}
        with ctx.Pool(1) as pool:
            results.append(pool.apply(_run, (variant,)))
    cols = ["packing", "steps", "max_length", "tokens_seen", "wall_s", "tokens_per_s", "peak_rss_mib", "final_loss"]
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in results:
        print(" | ".join(f"{r[c]!s:>12}" for c in cols))
    if args.json:
        off, on = results
        note = f"tiny_llama LoRA, {args.steps} steps, {args.rows} rows, max_length {args.max_length}, CPU"
        figs = []
        for r in results:
            label = "on" if r["packing"] else "off"
            figs.append(figure("training", f"tokens/s packing {label}", r["tokens_per_s"], "tok/s",
                               ratio=r["tokens_per_s"] / off["tokens_per_s"], ratio_of="this / packing off", note=note))
            figs.append(figure("training", f"peak RSS packing {label}", r["peak_rss_mib"], "MiB",
                               ratio=r["peak_rss_mib"] / off["peak_rss_mib"], ratio_of="this / packing off",
                               note="ru_maxrss of the training process (model load included)"))
        args.json.write_text(json.dumps(with_figures({"benchmark": "bench_training", "model": "tiny_llama",
                                                      "results": results}, figs), indent=2))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(REPO))  # `scripts` is a folder of the repo, not a package on the path
    main()
