"""Generation throughput: transformers batched vs one at a time, and vLLM (CPU or GPU).

Same prompts, same lengths for every engine: each row generates exactly
``--new-tokens`` tokens per prompt (no stop strings; the tiny random model
rarely emits EOS, and output tokens are counted, not assumed).

    python benchmarks/bench_generation.py [--model FOLDER] [--prompts 16]
        [--new-tokens 32] [--batch-size 16] [--no-vllm] [--json PATH]

Without ``--model`` a tiny random Llama is built in a temp folder. vLLM gets
two rows: one timed around the whole call (child process and engine start-up
included, one engine per seed as in the pipeline), one over its
``LLM.generate`` calls only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time

from common import figure, with_figures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _prompts(n: int) -> list[str]:
    topics = ["the sea", "Panthers defence", "a red apple", "Zürich", "Москва", "北京", "la playa", "Athens"]
    return [f"### Human: Write about {topics[i % len(topics)]} (item {i}).### Assistant:" for i in range(n)]


def _row(name: str, gens, wall: float) -> dict:
    tokens = sum(g.n_output_tokens for g in gens)
    return {"engine": name, "prompts": len(gens), "output_tokens": tokens, "wall_s": round(wall, 3), "tokens_per_s": round(tokens / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="transformers model folder (default: tiny random Llama)")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--no-vllm", action="store_true")
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args()

    from polyglot_kedro.engines import SamplingSpec
    from polyglot_kedro.engines.tiny_model import build_tiny_llama
    from polyglot_kedro.engines.transformers_engine import TransformersEngine

    tmp = tempfile.TemporaryDirectory()
    model = args.model or str(build_tiny_llama(tmp.name, hidden_size=128))
    prompts = _prompts(args.prompts)
    # vLLM: min_tokens is not exposed by our SamplingSpec; no stop strings and
    # a random model make every row run to max_new_tokens in practice.
    sampling = SamplingSpec(temperature=0.8, top_p=0.9, top_k=50, frequency_penalty=0.2, max_new_tokens=args.new_tokens, stop=())
    rows = []
    eng = TransformersEngine(model, batch_size=args.batch_size, dtype=args.dtype, max_model_len=1024)
    eng.generate(prompts[:2], sampling, seed=0)  # warm-up
    t0 = time.perf_counter()
    rows.append(_row(f"transformers batched (bs={args.batch_size})", eng.generate(prompts, sampling, seed=0), time.perf_counter() - t0))
    eng.batch_size = 1
    t0 = time.perf_counter()
    rows.append(_row("transformers one at a time", eng.generate(prompts, sampling, seed=0), time.perf_counter() - t0))
    eng.close()
    if not args.no_vllm and importlib.util.find_spec("vllm") is not None:
        from polyglot_kedro.engines.vllm_engine import VLLMEngine

        v = VLLMEngine(model, batch_size=args.batch_size, dtype=args.dtype, max_model_len=1024)
        t0 = time.perf_counter()
        gens = v.generate(prompts, sampling, seed=0)
        wall = time.perf_counter() - t0
        rows.append(_row("vllm (incl. engine start)", gens, wall))
        gen_s = sum(g.seconds for g in gens)  # per-item shares of the generate calls
        rows.append(_row("vllm (generate calls only)", gens, gen_s))
    print(f"{'engine':42s} {'prompts':>7s} {'tokens':>7s} {'wall_s':>8s} {'tok/s':>8s}")
    for r in rows:
        print(f"{r['engine']:42s} {r['prompts']:7d} {r['output_tokens']:7d} {r['wall_s']:8.2f} {r['tokens_per_s']:8.1f}")
    if args.json:
        one = next(r for r in rows if r["engine"] == "transformers one at a time")
        note = f"{args.prompts} prompts x {args.new_tokens} new tokens, {args.model or 'tiny random Llama (hidden 128)'}, CPU"
        figs = [figure("generation", f"tokens/s {r['engine']}", r["tokens_per_s"], "tok/s",
                       ratio=r["tokens_per_s"] / one["tokens_per_s"], ratio_of="this / transformers one at a time",
                       note=note) for r in rows]
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(with_figures({"new_tokens": args.new_tokens, "model": args.model or "tiny random Llama (hidden 128)", "rows": rows}, figs), f, indent=2)


if __name__ == "__main__":  # vLLM spawns processes
    main()
