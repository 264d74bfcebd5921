"""XNLI by log-likelihood multiple choice through lm-evaluation-harness.

We use the harness's own xnli prompt style -- three continuations
``premise + ", <right>? <Yes|Also|No>, " + hypothesis`` scored by
log-likelihood -- but on local rows: for each language we write the rows as
JSON lines plus a task YAML (``dataset_path: json``, ``dataset_kwargs:
{data_files: {test: ABS_PATH}}``) into a work folder, and run
lm-eval's ``evaluate`` with a ``TaskManager(include_path=...)`` over that
folder only. The per-language words come from the installed harness's
``tasks/xnli/xnli_<lang>.yaml`` so they match it exactly. Per-item predictions
come from ``log_samples``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml

from polyglot_kedro.contracts import XNLI_ITEM_COLUMNS, require_columns
from polyglot_kedro.tasks.templates import load_task_template

log = logging.getLogger(__name__)


def label_names() -> list[str]:
    """Labels in choice order (entailment, neutral, contradiction)."""
    return list(load_task_template("xnli")["base"]["labels"])


def lm_eval_xnli_choices(lang: str) -> str:
    """The harness's ``doc_to_choice`` Jinja expression for ``lang``.

    Raises:
        ValueError: the harness has no xnli task for ``lang`` and our template adds none.
    """
    extra = load_task_template("xnli")["languages"]
    if lang in extra:
        return extra[lang]["doc_to_choice"]
    path = resources.files("lm_eval") / "tasks" / "xnli" / f"xnli_{lang}.yaml"
    if not path.is_file():
        raise ValueError(
            f"xnli: lm-evaluation-harness has no xnli task for language {lang!r} "
            "(add its words under `languages` in prompts/tasks/xnli.yml)"
        )
    return yaml.safe_load(path.read_text(encoding="utf-8"))["doc_to_choice"]


def _label_index(value, where: str) -> int:
    names = label_names()
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, (int,)) and 0 <= value < len(names):
        return int(value)
    raise ValueError(f"{where}: field 'label' must be one of {names} (or 0-2), got {value!r}")


def write_xnli_task(rows: pd.DataFrame, lang: str, work_dir: str | Path) -> str:
    """Write one language's rows and its lm-eval task YAML into ``work_dir``.

    Args:
        rows: ``id, premise, hypothesis, label`` of one language.
        lang: the language.
        work_dir: folder for ``xnli_<lang>.jsonl`` and ``polyglot_xnli_<lang>.yaml``.

    Returns:
        The task name (``polyglot_xnli_<lang>``).
    """
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    data = work_dir / f"xnli_{lang}.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for r in rows.itertuples(index=False):
            where = f"xnli_raw row id={r.id!r} lang={lang}"
            for field in ("premise", "hypothesis"):
                if not isinstance(getattr(r, field), str) or not getattr(r, field).strip():
                    raise ValueError(f"{where}: empty field {field!r}")
            doc = {"id": str(r.id), "premise": r.premise, "hypothesis": r.hypothesis, "label": _label_index(r.label, where)}
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    task = f"polyglot_xnli_{lang}"
    spec = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "num_fewshot": 0,
        "doc_to_text": "",
        "doc_to_target": "label",
        "doc_to_choice": lm_eval_xnli_choices(lang),
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": load_task_template("xnli")["version"]},
    }
    (work_dir / f"{task}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return task


def run_xnli_loglik(
    model_path: str,
    xnli: pd.DataFrame,
    languages: list[str],
    work_dir: str | Path,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    dtype: str = "auto",
    device: str | None = None,
    prefix_token: Literal["bos", "eos"] = "bos",
    on_language: Callable[[str, pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Score XNLI rows by log-likelihood multiple choice with lm-eval's ``hf`` model.

    The model is loaded once; languages are scored one after the other, each
    logged with its items/s and handed to ``on_language`` as it finishes (so
    the caller can write it and progress is visible per language).

    Args:
        model_path: transformers model folder.
        xnli: rows ``id, lang, premise, hypothesis, label``.
        languages: languages to score.
        work_dir: where task files are written.
        limit: first ``limit`` rows per language.
        batch_size: lm-eval batch size.
        dtype: model dtype.
        device: ``cuda``/``cpu`` (default: cuda when available).
        prefix_token: the token each choice's log-likelihood is conditioned on
            (the harness's choices have an empty context): ``bos``, lm-eval
            0.4's default, or ``eos``, what the harness at 3ccea2b2 (the
            paper's) did in ``loglikelihood_rolling`` (``prefix_token=eot``).
        on_language: called with ``(lang, rows)`` as each language finishes.

    Returns:
        One row per item, ``contracts.XNLI_ITEM_COLUMNS`` (labels as names).
    """
    import torch
    from lm_eval.evaluator import evaluate
    from lm_eval.tasks import TaskManager

    from polyglot_kedro.modeling import model_location

    require_columns(xnli, ["id", "lang", "premise", "hypothesis", "label"], "xnli_raw")
    tasks = {}
    for lang in languages:
        rows = xnli[xnli["lang"] == lang]
        rows = rows if limit is None else rows.head(limit)
        if rows.empty:
            raise ValueError(f"xnli_raw: no rows for language {lang!r}")
        tasks[write_xnli_task(rows, lang, work_dir)] = lang
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # lm-eval loads the model itself; it gets the folder manifest's trust_remote_code like every loader.
    _, load_kwargs = model_location(model_path)
    model_args = {"pretrained": str(model_path), "dtype": dtype, "device": device,
                  "trust_remote_code": bool(load_kwargs.get("trust_remote_code", False))}  # fmt: skip
    if prefix_token == "eos":
        from polyglot_kedro.modeling import load_tokenizer

        eos = load_tokenizer(model_path).eos_token_id
        if eos is None:
            raise ValueError(f"xnli: prefix_token eos, but the tokenizer in {model_path} has no eos token")
        model_args["prefix_token_id"] = int(eos)
    elif prefix_token != "bos":
        raise ValueError(f"xnli: prefix_token must be 'bos' or 'eos', got {prefix_token!r}")
    from lm_eval.api.registry import get_model

    # Loaded once for every language (simple_evaluate takes an LM object).
    lm = get_model("hf").create_from_arg_obj(model_args, {"batch_size": batch_size})
    task_manager = TaskManager(include_path=str(Path(work_dir).resolve()), include_defaults=False)
    names, out = label_names(), []
    for k, (task, lang) in enumerate(tasks.items(), 1):
        t0 = time.perf_counter()
        # lm-eval's evaluate(), not simple_evaluate(): the latter also collects torch's
        # environment report and the git hash on every call (~0.6 s a language here),
        # which these rows do not keep. Zero-shot (the task file says so), no stderr bootstrap.
        results = evaluate(lm=lm, task_dict=task_manager.load([task]), log_samples=True, bootstrap_iters=0)
        rows = []
        for s in results["samples"][task]:
            scores = [float(r[0]) for r in s["filtered_resps"]]
            pred = max(range(len(scores)), key=scores.__getitem__)
            gold = int(s["target"])
            rows.append((lang, s["doc"]["id"], names[pred], names[gold], pred == gold))
        secs = time.perf_counter() - t0
        log.info("xnli %s: %d items in %.1f s (%.1f items/s), language %d/%d",
                 lang, len(rows), secs, len(rows) / secs if secs > 0 else 0.0, k, len(tasks))  # fmt: skip
        if on_language is not None:
            on_language(lang, pd.DataFrame(rows, columns=XNLI_ITEM_COLUMNS))
        out.extend(rows)
    log.info("xnli: scored %d items in %s", len(out), ", ".join(tasks.values()))
    return pd.DataFrame(out, columns=XNLI_ITEM_COLUMNS)
