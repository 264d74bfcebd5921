"""LoRA training throughput of a randomly initialised Llama-2-7B-shaped model on one GPU.

    python benchmarks/gpu_bench_7b.py [--steps 10] [--batch 4] [--seq 1024] [--json out.json]

No weights are needed: the model is built from a Llama-2-7B config in bf16 on
the GPU, LoRA (the paper's r 64 / alpha 16 on every linear layer except
lm_head) is attached with PEFT, and timed optimizer steps run on random
tokens. Prints tokens/s and MFU:

- ``mfu_6n``: the usual convention, 6 x params x tokens (+ attention), as if
  every weight were trained;
- ``mfu_lora``: the FLOPs LoRA actually needs, 4 x params x tokens (forward +
  activation gradients; frozen weights get no weight gradient), plus one more
  forward (2 x params) per token with gradient checkpointing.

Peak bf16 dense TFLOP/s comes from the device name (H100/H200: 989, A100: 312)
or ``--peak-tflops``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--layers", type=int, default=32, help="fewer layers for a quick check")
    ap.add_argument("--peak-tflops", type=float)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_bench_7b.py needs a CUDA GPU (a 7B model in bf16 plus LoRA needs ~20 GB); none is visible.")
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=args.layers,
                      num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                      max_position_embeddings=4096, attn_implementation="sdpa")
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=16, lora_dropout=0.05,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), device="cuda")

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0

    tokens = args.steps * args.batch * args.seq
    tps = tokens / wall
    # Attention score/value matmuls: 2 x 2 x layers x seq x hidden per token forward.
    attn_fwd = 4 * cfg.num_hidden_layers * args.seq * cfg.hidden_size
    flops_6n = 6 * n_params + 3 * attn_fwd
    flops_lora = 4 * n_params + 2 * attn_fwd + (2 * n_params + attn_fwd if args.gradient_checkpointing else 0)
    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or next((v for k, v in PEAKS.items() if k in name), None)
    res = {
        "device": name, "params": n_params, "trainable_params": trainable, "layers": cfg.num_hidden_layers,
        "batch": args.batch, "seq": args.seq, "steps": args.steps, "gradient_checkpointing": args.gradient_checkpointing,
        "wall_s": round(wall, 3), "tokens_per_s": round(tps, 1),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "peak_tflops": peak,
        "mfu_6n": round(tps * flops_6n / (peak * 1e12), 4) if peak else None,
        "mfu_lora": round(tps * flops_lora / (peak * 1e12), 4) if peak else None,
    }
    for k, v in res.items():
        print(f"{k:>24}: {v}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
