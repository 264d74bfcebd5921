"""Demo chat generation: the old demo settings vs the new ones, same prompts, interleaved; plus a rough roofline.

    python benchmarks/bench_demo_generation.py [--model FOLDER] [--langs es ru] [--prompts 20]
        [--new-tokens 48] [--rounds 2] [--json PATH]

Old = what ``make demo`` ran before issue 19: transformers, one job (language)
per ``generate`` call, batches of 10. New = the engine's pooled path
(``TransformersEngine.generate_jobs``: every job of the seed in shared
length-sorted batches) at conf/demo's ``inference.batch_size``. Both run the
paper's chat sampling (T 0.8, top-p 0.9, top-k 50, frequency penalty 0.2,
stop strings) on the same real prompts (``hplt_oasst_test``, the Guanaco
template), the same budget and seed, on one loaded model, alternating
old/new ``--rounds`` times so load from other processes hits both alike; each
figure is the median over the rounds. Tokens are counted, not assumed
(sampling stops early at EOS or a stop string).

Roofline: a decoder forward costs ~2 x n_params FLOP per token; achieved
GFLOP/s counts every generated token and every (unpadded) prompt token, so
padding and finished rows still computed by a batch show up as lost
efficiency. The peak is a big fp32 ``torch.matmul`` timed in the same run
(bf16 too, to show whether this CPU has fast bf16).

Without the model folder (default: ``data/06_models/base_model`` of the repo)
or the data, one row says what was skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from common import figure, with_figures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "data" / "06_models" / "base_model"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hplt_oasst_test"
DEMO_CONF = REPO / "conf" / "demo" / "parameters_inference.yml"
OLD_BATCH = 10  # the demo's batch size before issue 19


def demo_batch_size() -> int:
    """conf/demo's ``inference.batch_size``: the new setting measured here."""
    import yaml

    return int(yaml.safe_load(DEMO_CONF.read_text(encoding="utf-8"))["inference"]["batch_size"])


def load_prompts(data: Path, langs: list[str], n: int) -> dict[str, list[str]]:
    """The first ``n`` well-formed prompts per language, in the Guanaco template."""
    from polyglot_kedro.prompting import guanaco_prompt

    out = {}
    for lang in langs:
        path = data / f"test_{lang}.jsonl"
        prompts = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                prompts.append(guanaco_prompt(json.loads(line)["prompt"]))
            except (ValueError, KeyError) as e:  # the malformed line of test_hi.jsonl: skipped, said why
                print(f"skipping {path.name}:{lineno}: {e}")
            if len(prompts) == n:
                break
        if len(prompts) < n:
            raise ValueError(f"{path}: only {len(prompts)} usable prompts, {n} asked")
        out[lang] = prompts
    return out


def matmul_gflops(dtype, n: int = 1024, reps: int = 3) -> float:
    """Best-of-``reps`` GFLOP/s of one ``n`` x ``n`` matmul (2 n^3 FLOP)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)  # warm-up (thread pool, allocator)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="transformers model folder (SmolLM2-135M)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of test_<lang>.jsonl")
    ap.add_argument("--langs", nargs="+", default=["es", "ru"])
    ap.add_argument("--prompts", type=int, default=20, help="per language")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-batch", type=int, default=None, help="default: conf/demo inference.batch_size")
    ap.add_argument("--rounds", type=int, default=2, help="old/new alternations")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's, = cores)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args()
    new_batch = args.new_batch or demo_batch_size()

    missing = [str(p) for p in (args.model / "config.json", args.data) if not p.exists()]
    if missing:
        why = f"skipped: {', '.join(missing)} absent (make demo builds the base model folder)"
        print(why)
        if args.json:
            rows = [figure("demo_generation", "(skipped)", None, "", note=why)]
            Path(args.json).write_text(json.dumps(with_figures({"skipped": why}, rows), indent=2), encoding="utf-8")
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from polyglot_kedro.engines import SamplingSpec
    from polyglot_kedro.engines.base import Job
    from polyglot_kedro.engines.transformers_engine import TransformersEngine

    load_start = os.getloadavg()[0]
    prompts = load_prompts(args.data, args.langs, args.prompts)
    sampling = SamplingSpec(temperature=0.8, top_p=0.9, top_k=50, frequency_penalty=0.2, max_new_tokens=args.new_tokens)
    engine = TransformersEngine(str(args.model), batch_size=OLD_BATCH, dtype="float32")
    n_params = sum(p.numel() for p in engine.model.parameters())
    settings = {"old": (False, OLD_BATCH), "new": (True, new_batch)}

    def run(name: str) -> dict:
        pool, bs = settings[name]
        engine.pool_jobs = pool
        jobs = [Job(lang, p, sampling, batch_size=bs) for lang, p in prompts.items()]
        t = time.perf_counter()
        out = engine.generate_jobs(jobs, args.seed)
        wall = time.perf_counter() - t
        gens = [g for gs in out for g in gs]
        new_tok = sum(g.n_output_tokens for g in gens)
        prompt_tok = sum(g.n_prompt_tokens for g in gens)
        r = {"setting": name, "pool_jobs": pool, "batch_size": bs, "wall_s": round(wall, 2), "new_tokens": new_tok,
             "prompt_tokens": prompt_tok, "tokens_per_s": new_tok / wall,
             "gflops": 2 * n_params * (new_tok + prompt_tok) / wall / 1e9, "loadavg": os.getloadavg()[0]}  # fmt: skip
        print(f"{name}: pool_jobs={pool} batch {bs}: {new_tok} new tokens ({prompt_tok} prompt) in {wall:.1f} s "
              f"= {r['tokens_per_s']:.1f} tok/s, {r['gflops']:.1f} GFLOP/s (load {r['loadavg']:.1f})", flush=True)  # fmt: skip
        return r

    runs = [run(name) for _ in range(args.rounds) for name in ("old", "new")]
    peak32 = matmul_gflops(torch.float32)
    # this CPU has no avx512_bf16/AMX: bf16 matmul is emulated and slow, hence the small size
    peak16 = matmul_gflops(torch.bfloat16)
    load_end = os.getloadavg()[0]
    med = {k: {f: statistics.median(r[f] for r in runs if r["setting"] == k) for f in ("tokens_per_s", "gflops")}
           for k in settings}  # fmt: skip
    ratio = med["new"]["tokens_per_s"] / med["old"]["tokens_per_s"]
    size = (f"{len(args.langs)} langs ({' '.join(args.langs)}) x {args.prompts} real prompts, {args.new_tokens} new tokens, "
            f"seed {args.seed}, paper chat sampling, {args.model.name}, {n_params / 1e6:.0f}M params fp32, "
            f"torch threads {torch.get_num_threads()}, median of {args.rounds} interleaved rounds, "
            f"load average {load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    old_s, new_s = f"transformers per job, batch {OLD_BATCH}", f"transformers pooled over jobs, batch {new_batch}"
    rows = [
        figure("demo_generation", f"tokens/s old demo ({old_s})", round(med["old"]["tokens_per_s"], 1), "tok/s", note=size),
        figure("demo_generation", f"tokens/s new demo ({new_s})", round(med["new"]["tokens_per_s"], 1), "tok/s",
               ratio=ratio, ratio_of="new / old demo settings", note=size),
        figure("demo_generation", "achieved GFLOP/s new (2 x params x (new + prompt tokens))",
               round(med["new"]["gflops"], 1), "GFLOP/s", ratio=med["new"]["gflops"] / peak32,
               ratio_of="achieved / fp32 matmul peak", note="prompt tokens unpadded; padding and finished rows are lost work"),
        figure("demo_generation", "achieved GFLOP/s old", round(med["old"]["gflops"], 1), "GFLOP/s",
               ratio=med["old"]["gflops"] / peak32, ratio_of="achieved / fp32 matmul peak"),
        figure("demo_generation", "matmul peak fp32 (1024^2, best of 3)", round(peak32, 1), "GFLOP/s"),
        figure("demo_generation", "matmul peak bf16 (1024^2, best of 3)", round(peak16, 1), "GFLOP/s",
               ratio=peak16 / peak32, ratio_of="bf16 / fp32"),
    ]  # fmt: skip
    print(f"new / old = {ratio:.2f}; matmul peak fp32 {peak32:.1f} GFLOP/s, bf16 {peak16:.1f}; {size}")
    if args.json:
        payload = {"runs": runs, "n_params": n_params, "peak_gflops": {"float32": peak32, "bfloat16": peak16},
                   "loadavg": [load_start, load_end]}  # fmt: skip
        Path(args.json).write_text(json.dumps(with_figures(payload, rows), indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
