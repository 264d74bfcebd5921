"""Demo chat generation: the old demo settings vs conf/demo's, same prompts, interleaved; plus a rough roofline.

    python benchmarks/bench_demo_generation.py [--model FOLDER] [--langs en es ...] [--start 11]
        [--prompts N] [--new-tokens 48] [--rounds 1] [--json PATH]

Old = what ``make demo`` ran before issue 19: transformers ``generate``, one
job (language) after the other, batches of 10, fp32. New = conf/demo's
``inference`` settings (``batch_size`` and ``transformers``: the pooled
scheduler and its own decode loop, engines/pooled_decode.py, with its
``cpu_dtype``: bf16 weights where the CPU has bf16 instructions). Where new
runs bf16, a third setting runs new's scheduler with fp32 weights, so the
scheduler's gain and bf16's are measured apart. Each setting runs on its own
engine, loaded once from the same folder. All run the
paper's chat sampling (T 0.8, top-p 0.9, top-k 50, frequency penalty 0.2,
stop strings) on the same real prompts: conf/demo's prompt files and
languages (globals.yml), by default exactly the prompts ``make demo``
generates (conf/demo's ``items``: 11-50, 319 prompts), in the Guanaco template, with the same budget and seed, on one loaded model,
alternating old/new ``--rounds`` times so load from other processes hits
both alike; each figure is the median over the rounds. Tokens are counted,
not assumed (sampling stops early at EOS or a stop string).

Roofline: a decoder forward costs ~2 x n_params FLOP per generated token
and 2 x (n_params - LM head) per prompt token (only the last prompt
position's logits are computed); achieved GFLOP/s counts every generated
token and every (unpadded) prompt token, so
padding and finished rows still computed by a batch show up as lost
efficiency. The peaks are a big fp32 and a big bf16 ``torch.matmul`` timed
in the same run; each setting's achieved GFLOP/s is divided by the peak of
its weights' dtype.

Fidelity: bf16 weights change the numbers, so the run also compares the
first generated token's distribution of the two engines' models on every
prompt of the workload (top-1 agreement, KL in nats); with fp32 on both
sides it is 1 and 0.

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
DEMO_CONF = REPO / "conf" / "demo" / "parameters_inference.yml"
DEMO_GLOBALS = REPO / "conf" / "demo" / "globals.yml"
OLD_BATCH = 10  # the demo's batch size before issue 19
DEMO_MODEL = "smollm2_135m"  # conf/demo's model (its folder manifest's name)


def demo_settings() -> dict:
    """conf/demo's ``inference`` block: the new settings measured here."""
    import yaml

    return yaml.safe_load(DEMO_CONF.read_text(encoding="utf-8"))["inference"]


def demo_sources() -> dict[str, dict]:
    """conf/demo's chat prompt files per language (``globals.yml``), as ``{source, format, on_bad_line}``."""
    import yaml

    raw = yaml.safe_load(DEMO_GLOBALS.read_text(encoding="utf-8"))["sources"]["chat_prompts"]
    return {lang: v if isinstance(v, dict) else {"source": v} for lang, v in raw.items()}


def load_prompts(langs: list[str], start: int, stop: int) -> dict[str, list[str]]:
    """Prompts ``start`` .. ``stop`` (1-based, inclusive, file order; fewer where a file has fewer)
    per language from conf/demo's files, as inference selects them (a malformed line is skipped,
    said why), in the Guanaco template."""
    from polyglot_kedro.prompting import guanaco_prompt

    sources = demo_sources()
    out = {}
    for lang in langs:
        path = (REPO / sources[lang]["source"]).resolve()
        prompts = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
                prompts.append(guanaco_prompt(row.get("prompt", row.get("instruction"))))
            except (ValueError, TypeError) as e:  # the malformed line of test_hi.jsonl: skipped, said why
                print(f"skipping {path.name}:{lineno}: {e}")
        out[lang] = prompts[start - 1 : stop]
        if not out[lang]:
            raise ValueError(f"{path}: no usable prompt from position {start}")
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
    ap.add_argument("--langs", nargs="+", default=None, help="default: conf/demo's chat languages")
    ap.add_argument("--start", type=int, default=None, help="first prompt (1-based); default: conf/demo's items.start")
    ap.add_argument("--prompts", type=int, default=None,
                    help="per language (default: conf/demo's items.start..stop, the demo's whole workload)")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1, help="old/new alternations")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's, = cores)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args()
    demo = demo_settings()
    chat = demo["tasks"]["chat"]
    langs = args.langs or chat["languages"]
    start = args.start or chat["items"]["start"]
    stop = start + args.prompts - 1 if args.prompts else chat["items"]["stop"]
    new_batch, new_opts = demo["batch_size"], demo.get("transformers", {})
    files = [(REPO / demo_sources()[lang]["source"]).resolve() for lang in langs]
    missing = [f"{p} absent" for p in (args.model / "config.json", *files) if not p.exists()]
    manifest = args.model / "polyglot_manifest.json"
    name = json.loads(manifest.read_text(encoding="utf-8")).get("name") if manifest.is_file() else None
    if not missing and name is not None and name != DEMO_MODEL:
        missing = [f"{args.model} holds {name!r}, not the demo's {DEMO_MODEL!r} (make demo builds it there)"]
    if missing:
        why = f"skipped: {'; '.join(missing)} (make demo builds the demo's base model folder)"
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
    from polyglot_kedro.modeling import cpu_has_native_bf16

    load_start = os.getloadavg()[0]
    prompts = load_prompts(langs, start, stop)
    sampling = SamplingSpec(temperature=0.8, top_p=0.9, top_k=50, frequency_penalty=0.2, max_new_tokens=args.new_tokens)
    # Engines on the same folder: the old demo's (fp32, generate per job) and conf/demo's own
    # (its transformers options as the inference node passes them: cpu_dtype may cast the weights to bf16).
    engines = {
        "old": TransformersEngine(str(args.model), batch_size=OLD_BATCH, dtype="float32"),
        "new": TransformersEngine(str(args.model), batch_size=new_batch, dtype="float32", **new_opts),
    }
    batch = {"old": OLD_BATCH, "new": new_batch}
    old_model, new_model = engines["old"].model, engines["new"].model
    new_dtype = str(new_model.dtype).removeprefix("torch.")
    if new_dtype != "float32":  # conf/demo's scheduler in fp32 too: what the scheduler gains apart from bf16
        engines["new_fp32"] = TransformersEngine(str(args.model), batch_size=new_batch, dtype="float32",
                                                 **{**new_opts, "cpu_dtype": "float32"})  # fmt: skip
        batch["new_fp32"] = new_batch
    n_params = sum(p.numel() for p in old_model.parameters())
    # a prompt token runs every layer but not the LM head (only the last position's logits are taken)
    n_head = old_model.get_output_embeddings().weight.numel()

    def run(name: str) -> dict:
        engine = engines[name]
        jobs = [Job(lang, p, sampling, batch_size=batch[name]) for lang, p in prompts.items()]
        t = time.perf_counter()
        out = engine.generate_jobs(jobs, args.seed)
        wall = time.perf_counter() - t
        gens = [g for gs in out for g in gs]
        new_tok = sum(g.n_output_tokens for g in gens)
        prompt_tok = sum(g.n_prompt_tokens for g in gens)
        r = {"setting": name, "engine": engine.name, "dtype": str(engine.model.dtype).removeprefix("torch."),
             "batch_size": batch[name], "wall_s": round(wall, 2), "new_tokens": new_tok,
             "prompt_tokens": prompt_tok, "tokens_per_s": new_tok / wall,
             "gflops": 2 * (n_params * new_tok + (n_params - n_head) * prompt_tok) / wall / 1e9,
             "loadavg": os.getloadavg()[0]}  # fmt: skip
        print(f"{name}: {r['engine']} {r['dtype']} batch {batch[name]}: {new_tok} new tokens ({prompt_tok} prompt) "
              f"in {wall:.1f} s = {r['tokens_per_s']:.1f} tok/s, {r['gflops']:.1f} GFLOP/s "
              f"(load {r['loadavg']:.1f})", flush=True)  # fmt: skip
        return r

    runs = [run(name) for _ in range(args.rounds) for name in engines]
    fidelity = next_token_fidelity(engines["old"], engines["new"], [p for ps in prompts.values() for p in ps])
    peak = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
    load_end = os.getloadavg()[0]
    med = {k: {f: statistics.median(r[f] for r in runs if r["setting"] == k) for f in ("tokens_per_s", "gflops")}
           for k in engines}  # fmt: skip
    ratio = med["new"]["tokens_per_s"] / med["old"]["tokens_per_s"]
    size = (f"{len(langs)} langs ({' '.join(langs)}), prompts {start}-{stop} of conf/demo's files "
            f"({sum(map(len, prompts.values()))} prompts), "
            f"{args.new_tokens} new tokens, "
            f"seed {args.seed}, paper chat sampling, {args.model.name}, {n_params / 1e6:.0f}M params, "
            f"torch threads {torch.get_num_threads()}, median of {args.rounds} interleaved rounds, "
            f"load average {load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    old_s = f"transformers generate per job, batch {OLD_BATCH}, fp32"
    new_e = engines["new"]
    new_s = (f"conf/demo: {new_e.name}, {new_dtype} weights, <= {new_batch} rows, "
             f"<= {new_e.max_batch_tokens} tokens per batch" if new_e.pool_jobs
             else f"conf/demo: generate per job, batch {new_batch}, {new_dtype}")  # fmt: skip
    flops = "2 x params per new token, 2 x non-head params per prompt token"
    rows = [
        figure("demo_generation", f"tokens/s old demo ({old_s})", round(med["old"]["tokens_per_s"], 1), "tok/s", note=size),
        figure("demo_generation", f"tokens/s new demo ({new_s})", round(med["new"]["tokens_per_s"], 1), "tok/s",
               ratio=ratio, ratio_of="new / old demo settings", note=size),
        figure("demo_generation", f"achieved GFLOP/s new ({flops})", round(med["new"]["gflops"], 1), "GFLOP/s",
               ratio=med["new"]["gflops"] / peak[new_dtype], ratio_of=f"achieved / {new_dtype} matmul peak",
               note="prompt tokens unpadded; padding and finished rows are lost work"),
        figure("demo_generation", "achieved GFLOP/s old", round(med["old"]["gflops"], 1), "GFLOP/s",
               ratio=med["old"]["gflops"] / peak["float32"], ratio_of="achieved / float32 matmul peak"),
        *([figure("demo_generation", "tokens/s conf/demo's scheduler in fp32 (cpu_dtype: float32)",
                  round(med["new_fp32"]["tokens_per_s"], 1), "tok/s",
                  ratio=med["new_fp32"]["tokens_per_s"] / med["old"]["tokens_per_s"], ratio_of="new fp32 / old",
                  note="the same scheduler and batches as new, fp32 weights: new / this = what bf16 adds"),
           figure("demo_generation", "achieved GFLOP/s new fp32", round(med["new_fp32"]["gflops"], 1), "GFLOP/s",
                  ratio=med["new_fp32"]["gflops"] / peak["float32"], ratio_of="achieved / float32 matmul peak")]
          if "new_fp32" in engines else []),
        figure("demo_generation", "matmul peak fp32 (1024^2, best of 3)", round(peak["float32"], 1), "GFLOP/s"),
        figure("demo_generation", "matmul peak bf16 (1024^2, best of 3)", round(peak["bfloat16"], 1), "GFLOP/s",
               ratio=peak["bfloat16"] / peak["float32"], ratio_of="bf16 / fp32",
               note=f"native bf16 instructions: {cpu_has_native_bf16()} (modeling.cpu_has_native_bf16)"),
        figure("demo_generation", "first-token top-1 agreement, new vs old weights", round(fidelity["top1"], 4),
               "fraction", note=fidelity["note"]),
        figure("demo_generation", "first-token KL(old || new), mean", round(fidelity["kl_mean"], 5), "nats",
               note=fidelity["note"]),
        figure("demo_generation", "first-token KL(old || new), max", round(fidelity["kl_max"], 5), "nats",
               note=fidelity["note"]),
    ]  # fmt: skip
    print(f"new / old = {ratio:.2f}; matmul peak fp32 {peak['float32']:.1f} GFLOP/s, bf16 {peak['bfloat16']:.1f}; "
          f"first token new vs old: top-1 agreement {fidelity['top1']:.3f}, KL mean {fidelity['kl_mean']:.4f} "
          f"max {fidelity['kl_max']:.4f} nats; {size}")  # fmt: skip
    if args.json:
        payload = {"runs": runs, "n_params": n_params, "peak_gflops": peak, "fidelity": fidelity,
                   "loadavg": [load_start, load_end]}  # fmt: skip
        Path(args.json).write_text(json.dumps(with_figures(payload, rows), indent=2), encoding="utf-8")


def next_token_fidelity(old, new, prompts: list[str]) -> dict:
    """How far the new engine's weights move the first generated token's distribution from the old (fp32) ones.

    Each prompt's last-position logits (T = 1, before any sampling warper)
    from both models, run as each engine runs them (the new engine's pooled
    attention, ``pooled_decode.GQA_ATTENTION``, fp32 on CPU); one prompt per
    row and no padding. Returns the share of prompts whose arg-max token is
    the same, and the mean and max KL(old || new) in nats.
    """
    import torch

    from polyglot_kedro.engines.pooled_decode import register_gqa_attention

    new.model.set_attn_implementation(register_gqa_attention())
    same, kls = 0, []
    try:
        with torch.inference_mode():
            for text in prompts:
                ids = torch.tensor([old.tokenizer(text)["input_ids"]])
                lp_old = torch.log_softmax(old.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float(), -1)
                lp_new = torch.log_softmax(new.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float(), -1)
                same += int(lp_old.argmax() == lp_new.argmax())
                kls.append(float((lp_old.exp() * (lp_old - lp_new)).sum()))
    finally:
        new.model.set_attn_implementation(new._attention)
    note = (f"{len(prompts)} prompts (the workload's), last prompt position, T = 1; "
            f"old: {old.model.dtype}, new: {new.model.dtype} ({new.name})")  # fmt: skip
    return {"top1": same / len(prompts), "kl_mean": statistics.mean(kls), "kl_max": max(kls), "n": len(prompts),
            "note": note}  # fmt: skip

if __name__ == "__main__":
    main()
