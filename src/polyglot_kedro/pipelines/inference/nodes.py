"""Inference nodes: task prompts, generations per mix, XNLI log-likelihood scores.

Resume: every (task, lang, prompt_setting, seed) partition is written as a
Parquet file under ``inference.work_dir/<mix>/`` as soon as it finishes
(atomically: temp file + rename), with either engine: all unfinished
partitions of one seed run in one engine (vLLM: one child process seeded with
the seed, kept alive across partitions, streaming each finished partition
back), and each is written when its last item is done. A kill loses only the
partitions in progress. A rerun reuses a partition when its model, engine,
batch size, sampling, item ids and prompts all match, and regenerates it
otherwise, so changing a setting never mixes old and new rows. The node's
output is the concatenation of all partitions.

Truncation: a prompt longer than ``max_model_len - max_new_tokens`` is cut
from the left (as the paper did) and marked in ``prompt_truncated``; each
partition logs how many, and the mix's total is logged as a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from polyglot_kedro.config import StrictModel, resolve_model
from polyglot_kedro.contracts import EVAL_PROMPT_COLUMNS, GENERATION_COLUMNS, ITEM_FIELDS, XNLI_LOGLIK_COLUMNS
from polyglot_kedro.engines import Engine, SamplingSpec, make_engine, transformers_engine_label, uses_cpu_bf16
from polyglot_kedro.engines.base import Generation, Job
from polyglot_kedro.modeling import load_tokenizer, model_fingerprint
from polyglot_kedro.prompting import check_prompt_format, render_prompts
from polyglot_kedro.tasks import build_chat_prompts, build_xcsqa_prompts, build_xquad_prompts, template_version
from polyglot_kedro.tasks.xnli import run_xnli_loglik

log = logging.getLogger(__name__)

GENERATION_TASKS = ("chat", "xquad", "xcsqa")


class ItemRange(StrictModel):
    """Item positions per language, 1-based and inclusive, in source order (``{start: 11, stop: 50}``).

    Rows keep their source ids, so prompt 11 is the same prompt under any range
    (the demo's exploration set is 1-10, its confirmation set 11-50).
    """

    start: int = Field(1, ge=1)
    stop: int | None = Field(None, ge=1)  # None: to the last item

    @model_validator(mode="after")
    def _ordered(self) -> "ItemRange":
        if self.stop is not None and self.stop < self.start:
            raise ValueError(f"items.stop ({self.stop}) is before items.start ({self.start})")
        return self


class TaskRun(StrictModel):
    """Which languages/settings of one generation task run, and how it samples."""

    enabled: bool = True
    languages: list[str]
    prompt_settings: list[str]
    limit: int | None = Field(None, ge=1)  # first N items per language (demo); None: all
    items: ItemRange | None = None  # instead of limit: a position range per language

    @model_validator(mode="after")
    def _one_selection(self) -> "TaskRun":
        if self.limit is not None and self.items is not None:
            raise ValueError("set either limit or items, not both (limit: N is items: {start: 1, stop: N})")
        return self

    @property
    def item_range(self) -> tuple[int, int | None] | None:
        return None if self.items is None else (self.items.start, self.items.stop)
    batch_size: int | None = Field(None, ge=1)  # overrides inference.batch_size
    sampling: SamplingSpec
    # XQuAD/X-CSQA: the paper's prompt templates or the project's own
    # translations (polyglot_kedro.tasks.templates); chat has one template.
    templates: Literal["paper", "project"] = "paper"


class GenerationTasks(StrictModel):
    chat: TaskRun
    xquad: TaskRun
    xcsqa: TaskRun


class XnliRun(StrictModel):
    enabled: bool = True
    languages: list[str]
    limit: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    # What each choice is conditioned on (tasks.xnli.run_xnli_loglik): bos (lm-eval 0.4) or eos (the paper's harness).
    prefix_token: Literal["bos", "eos"] = "bos"


class VllmOptions(StrictModel):
    enforce_eager: bool = True
    kv_cache_space_gib: int = Field(2, ge=1)  # VLLM_CPU_KVCACHE_SPACE on CPU hosts
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)


class TransformersOptions(StrictModel):
    """``inference.transformers``: the transformers engine's scheduler (engines/transformers_engine.py)."""

    pool_jobs: bool = False  # every partition of a seed through the own decode loop (engines/pooled_decode.py)
    max_batch_tokens: int = Field(16384, ge=1)  # pooled: rows x (longest prompt + budget) per decode batch
    prefill_tokens: int = Field(4096, ge=1)  # pooled: padded tokens per prefill forward
    # pooled on CPU: bf16 weights (fp32 attention and KV cache); auto = bf16 where the CPU has bf16 instructions
    cpu_dtype: Literal["float32", "bfloat16", "auto"] = "float32"

    @model_validator(mode="after")
    def _bf16_needs_pooling(self) -> TransformersOptions:
        if self.cpu_dtype != "float32" and not self.pool_jobs:
            raise ValueError(f"inference.transformers.cpu_dtype: {self.cpu_dtype} needs pool_jobs: true "
                             "(only the pooled decode loop keeps attention in fp32)")  # fmt: skip
        return self


class InferenceParams(StrictModel):
    """``params:inference`` (conf/base/parameters_inference.yml)."""

    engine: Literal["auto", "transformers", "vllm"] = "auto"
    batch_size: int = Field(8, ge=1)
    seeds: list[int] = Field(min_length=1)
    work_dir: str
    resume: bool = True
    vllm: VllmOptions = VllmOptions()
    transformers: TransformersOptions = TransformersOptions()
    tasks: GenerationTasks
    xnli: XnliRun


def build_eval_prompts(
    chat_prompts: pd.DataFrame, xquad_raw: pd.DataFrame, xcsqa_raw: pd.DataFrame, inference: dict
) -> pd.DataFrame:
    """Build every generation task's prompts (shared by all mixes).

    Args:
        chat_prompts: ``id, lang, instruction, prompt_source``.
        xquad_raw: ``id, lang, context, question, answers``.
        xcsqa_raw: ``id, lang, question, options, answer``.
        inference: ``params:inference``.

    Returns:
        ``contracts.EVAL_PROMPT_COLUMNS`` (``template``: ``<task>@v<version>``
        of the template file).
    """
    p = InferenceParams.model_validate(inference)
    builders = {
        "chat": lambda t: build_chat_prompts(chat_prompts, t.languages, t.limit, t.item_range),
        "xquad": lambda t: build_xquad_prompts(xquad_raw, t.languages, t.prompt_settings, t.limit, t.templates,
                                               t.item_range),
        "xcsqa": lambda t: build_xcsqa_prompts(xcsqa_raw, t.languages, t.prompt_settings, t.limit, t.templates,
                                               t.item_range),
    }
    frames = []
    for task in GENERATION_TASKS:
        run: TaskRun = getattr(p.tasks, task)
        if run.enabled:
            df = builders[task](run)
            frames.append(df.assign(template=template_version(task, run.templates)))
            start, stop = run.item_range or (1, run.limit)
            log.info("prompts: %s %d rows (%s), items %d-%s per language", task, len(df),
                     template_version(task, run.templates), start, stop or "last")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EVAL_PROMPT_COLUMNS)


def _partition_path(root: Path, task: str, lang: str, setting: str, seed: int) -> Path:
    return root / task / f"{lang}__{setting.replace(':', '-')}__s{seed}.parquet"


def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _reusable(path: Path, expected: dict, items: pd.DataFrame) -> pd.DataFrame | None:
    """The finished partition at ``path`` if it was made with the same settings and prompts.

    The item fields (question, options, reference) come from ``items``, the
    current prompt table: they are not outputs of the generation, and a
    partition written before a field existed stays reusable.
    """
    if not path.exists():
        return None
    try:
        done = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # a damaged file is regenerated, not trusted
        log.warning("partition %s unreadable (%s); regenerating", path, exc)
        return None
    if "prompt_format" not in done.columns:
        # written before chat templates: every prompt was Guanaco (the prompt check below still holds)
        done = done.assign(prompt_format="guanaco")
    lacking = [c for c in GENERATION_COLUMNS if c not in done.columns and c not in ITEM_FIELDS]
    if lacking:  # written before these outputs were recorded (e.g. prompt_truncated)
        log.info("partition %s lacks %s; regenerating", path, ", ".join(lacking))
        return None
    same = (
        len(done) == len(items)
        and all((done[k] == v).all() for k, v in expected.items())
        and done["item_id"].tolist() == items["item_id"].tolist()
        and done["prompt"].tolist() == items["prompt"].tolist()
    )
    if not same:
        log.info("partition %s was made with other settings or prompts; regenerating", path)
        return None
    return done.assign(**{c: items[c].to_numpy() for c in ITEM_FIELDS})[GENERATION_COLUMNS]


def generate_outputs(
    merged_model: str,
    eval_prompts: pd.DataFrame,
    inference: dict,
    model: str,
    models: dict,
    mix_name: str,
) -> pd.DataFrame:
    """Generate every task's outputs for one mix, per (task, lang, setting, seed) partition.

    Args:
        merged_model: model folder (the mix's merged model, or ``base_model``
            for ``untuned`` mixes).
        eval_prompts: output of :func:`build_eval_prompts`.
        inference: ``params:inference``.
        model: ``params:model`` (registry name, written into each row).
        models: ``params:models`` (the registry: dtype, tensor parallel size,
            max_model_len).
        mix_name: ``params:mix_name``, the namespace's mix.

    Returns:
        ``contracts.GENERATION_COLUMNS`` rows (docs/ARCHITECTURE.md); the item
        fields are copied from ``eval_prompts``. ``prompt`` is what the model
        saw: the Guanaco prompt, or (registry ``prompt_format: chat_template``)
        the same turns rendered by the model's own chat template;
        ``prompt_format`` says which.

    Raises:
        ValueError: ``chat_template`` and the model's tokenizer has none (names the model).
    """
    p = InferenceParams.model_validate(inference)
    spec = resolve_model(models, model)
    tokenizer = None
    if spec.prompt_format == "chat_template":  # the tokenizer the mix was trained with (saved beside it)
        tokenizer = load_tokenizer(merged_model)
        check_prompt_format(tokenizer, spec.prompt_format, spec.name)
    eval_prompts = eval_prompts.assign(
        prompt=render_prompts(eval_prompts["prompt"].tolist(), spec.prompt_format, tokenizer)
    )
    mix = mix_name
    # Partitions are keyed by the weights' content: a retrained mix (same
    # name, new weights) regenerates instead of reusing stale outputs.
    root = Path(p.work_dir) / mix / model_fingerprint(merged_model)
    engine: Engine | None = None
    frames: dict[tuple[int, int, int], pd.DataFrame] = {}  # (task, seed, group) -> rows
    runs = [(t, task, getattr(p.tasks, task)) for t, task in enumerate(GENERATION_TASKS)]
    groups = {
        task: list(eval_prompts[eval_prompts["task"] == task].groupby(["lang", "prompt_setting"], sort=False))
        for _, task, run in runs
        if run.enabled
    }
    n_done = 0
    # what rows record as their engine (TransformersEngine.name): the pooled scheduler is named
    t = p.transformers
    engine_label = (transformers_engine_label(t.pool_jobs, uses_cpu_bf16(t.pool_jobs, t.cpu_dtype))
                    if p.engine == "transformers" else p.engine)  # fmt: skip
    try:
        for s_i, seed in enumerate(p.seeds):
            jobs: list[Job] = []
            for t, task, run in runs:
                if not run.enabled or not groups.get(task):
                    continue
                batch_size = run.batch_size or p.batch_size
                expected = {"model": model, "sampling": run.sampling.to_json(), "batch_size": batch_size}
                for g_i, ((lang, setting), items) in enumerate(groups[task]):
                    path = _partition_path(root, task, lang, setting, seed)
                    done = _reusable(path, expected, items) if p.resume else None
                    if done is not None and (p.engine == "auto" or (done["engine"] == engine_label).all()):
                        frames[(t, s_i, g_i)] = done
                        n_done += 1
                        continue
                    meta = {"key": (t, s_i, g_i), "task": task, "lang": lang, "setting": setting,
                            "items": items, "path": path, "prompt_format": spec.prompt_format}  # fmt: skip
                    jobs.append(Job(f"{mix}/{task}/{lang}/{setting}/s{seed}", items["prompt"].tolist(), run.sampling,
                                    batch_size=batch_size, meta=meta))  # fmt: skip
            if not jobs:
                continue
            if engine is None:
                engine = make_engine(
                    p.engine,
                    merged_model,
                    batch_size=p.batch_size,
                    dtype=spec.dtype,
                    tensor_parallel_size=spec.tensor_parallel_size,
                    max_model_len=spec.max_model_len,
                    vllm_options=p.vllm.model_dump(),
                    transformers_options=p.transformers.model_dump(),
                )
            log.info("%s seed %d: %d partition(s) to generate, %d reused so far (%s)",
                     mix, seed, len(jobs), n_done, engine.name)  # fmt: skip

            def write_partition(j: int, gens: list[Generation], jobs=jobs, seed=seed, engine=engine) -> None:
                job = jobs[j]
                df = _partition_rows(job, gens, seed, model, mix, engine.name)
                _write_atomic(df, job.meta["path"])
                frames[job.meta["key"]] = df
                n_tok, secs = int(df["n_output_tokens"].sum()), float(df["gen_seconds"].sum())
                n_cut = int(df["prompt_truncated"].sum())
                log.info(
                    "%s: %d prompts, %d tokens, %.1f tok/s%s (partition %d/%d of seed %d)",
                    job.name, len(df), n_tok, n_tok / secs if secs > 0 else 0.0,
                    f", {n_cut} prompt(s) cut from the left to fit" if n_cut else "", j + 1, len(jobs), seed,
                )  # fmt: skip

            engine.generate_jobs(jobs, seed, on_job=write_partition)
    finally:
        if engine is not None:
            engine.close()
    if not frames:
        return pd.DataFrame(columns=GENERATION_COLUMNS)
    out = pd.concat([frames[k] for k in sorted(frames)], ignore_index=True)[GENERATION_COLUMNS]
    n_cut = int(out["prompt_truncated"].sum())
    if n_cut:
        log.warning(
            "%s: %d of %d prompt(s) were longer than max_model_len - max_new_tokens and were cut from the "
            "left (column prompt_truncated)", mix, n_cut, len(out),
        )  # fmt: skip
    return out


def _partition_rows(job: Job, gens: list[Generation], seed: int, model: str, mix: str, engine: str) -> pd.DataFrame:
    """One finished partition's rows (``contracts.GENERATION_COLUMNS``)."""
    m = job.meta
    sampling = job.sampling.to_json()
    rows = []
    for it, g in zip(m["items"].itertuples(index=False), gens, strict=True):
        rows.append(
            {
                "model": model, "mix": mix, "task": m["task"], "lang": m["lang"], "prompt_setting": m["setting"],
                "seed": int(seed), "item_id": it.item_id, "prompt": it.prompt, "output": g.text,
                "finish_reason": g.finish_reason, "engine": engine, "batch_size": int(job.batch_size),
                "sampling": sampling, "n_output_tokens": int(g.n_output_tokens), "gen_seconds": float(g.seconds),
                "n_prompt_tokens": int(g.n_prompt_tokens), "prompt_truncated": bool(g.prompt_truncated),
                "prompt_format": m["prompt_format"], **{c: getattr(it, c) for c in ITEM_FIELDS},
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=GENERATION_COLUMNS)


def score_xnli_loglik(
    merged_model: str, xnli_raw: pd.DataFrame, inference: dict, model: str, models: dict, mix_name: str
) -> pd.DataFrame:
    """XNLI accuracy items by lm-eval log-likelihood multiple choice, per language partition.

    Args:
        merged_model: model folder.
        xnli_raw: ``id, lang, premise, hypothesis, label`` (entailment/neutral/contradiction).
        inference: ``params:inference``.
        model: ``params:model``.
        models: ``params:models``.
        mix_name: ``params:mix_name``, the namespace's mix.

    Returns:
        ``model, mix, task='xnli', lang, prompt_setting='xx:xx', seed=0
        (deterministic), item_id, pred, gold, correct, engine='lm-eval'``.
    """
    p = InferenceParams.model_validate(inference)
    spec = resolve_model(models, model)
    mix = mix_name
    if not p.xnli.enabled:
        return pd.DataFrame(columns=XNLI_LOGLIK_COLUMNS)
    # The prefix token changes every score: its own partition folder (bos keeps the old one).
    xnli_dir = "xnli" if p.xnli.prefix_token == "bos" else f"xnli-{p.xnli.prefix_token}-prefix"
    root = Path(p.work_dir) / mix / model_fingerprint(merged_model) / xnli_dir
    frames, todo = [], []
    for lang in p.xnli.languages:
        path = root / f"{lang}__xx-xx__s0.parquet"
        if p.resume and path.exists():
            done = pd.read_parquet(path)
            rows = xnli_raw[xnli_raw["lang"] == lang]
            want = (rows if p.xnli.limit is None else rows.head(p.xnli.limit))["id"].astype(str).tolist()
            if done["model"].eq(model).all() and done["item_id"].tolist() == want:
                frames.append(done)
                continue
        todo.append(lang)
    if todo:

        def write_language(lang: str, part: pd.DataFrame) -> None:  # each language as it finishes
            df = part.assign(model=model, mix=mix, task="xnli", prompt_setting="xx:xx", seed=0, engine="lm-eval")
            df = df[XNLI_LOGLIK_COLUMNS].reset_index(drop=True)
            _write_atomic(df, root / f"{lang}__xx-xx__s0.parquet")
            frames.append(df)

        run_xnli_loglik(
            merged_model,
            xnli_raw,
            todo,
            root / "tasks",
            limit=p.xnli.limit,
            batch_size=p.xnli.batch_size,
            dtype=spec.dtype,
            prefix_token=p.xnli.prefix_token,
            on_language=write_language,
        )
    return pd.concat(frames, ignore_index=True)[XNLI_LOGLIK_COLUMNS]


