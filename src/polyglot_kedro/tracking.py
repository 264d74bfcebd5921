"""MLflow mirror of a run's results: per-(task, language, mix) metrics, report, figures.

kedro-mlflow (a Kedro plugin, ``conf/<env>/mlflow.yml``) opens one MLflow run
per ``kedro run`` and logs the parameters every node reads. What it has no
working mechanism for here is in one hook, :class:`MlflowResultsHook`:

* the final scores. ``report_aggregates`` (one row per model, mix, task,
  language, prompt setting and metric) becomes one MLflow metric per row on
  the run (``multi3/chat/io_lang_agreement/de``) and the same numbers on one
  nested run per mix (``chat/io_lang_agreement/de``, tagged ``mix``), so the
  MLflow UI compares mixes side by side;
* the report and figures as artifacts (``reporting/report.html``,
  ``reporting/figures/*.png``), copied from the file each versioned dataset
  has just written. kedro-mlflow's ``MlflowArtifactDataset`` cannot wrap a
  versioned dataset under Kedro 1.x: the inner dataset gets a save version
  of its own and the catalog refuses it (``VersionAlreadyExistsError``);
* nested training runs. transformers' ``MLflowCallback`` logs into an active
  run unless ``MLFLOW_NESTED_RUN`` is set; with several mixes it would then
  overwrite one mix's training arguments with the next (MLflow refuses
  that). The hook sets it while a run is active, and
  :func:`trainer_callbacks` gives the trainer a callback that nests each
  mix's curves in a run named by its ``run_name``; the mix's metrics join it.

Kedro's versioned datasets stay the source of truth; nothing here is read
back by the pipeline. Without an active MLflow run (tracking disabled for the
pipeline, or kedro-mlflow not installed) the hook does nothing.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

AGGREGATE_KEYS = ["model", "mix", "task", "lang", "prompt_setting", "metric", "mean"]
MIX_TAG = "mix"
MODEL_TAG = "model"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag for nested runs
RUN_NAME_TAG = "mlflow.runName"
# Saved files logged as artifacts: catalog name -> artifact folder.
DEFAULT_ARTIFACTS = {"report_html": "reporting", "report_figures": "reporting"}


def _key(*parts: Any) -> str:
    # MLflow keys allow letters, digits, _ - . space : /; a language such as
    # zh-Hant or a prompt setting such as "en->de" must not break a key.
    return "/".join("".join(c if c.isalnum() or c in "_-. :" else "_" for c in str(p)) for p in parts)


def mix_metrics(aggregates: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """The final scores of every (model, mix) as MLflow metrics.

    Args:
        aggregates: ``report_aggregates`` rows (``model, mix, task, lang,
            prompt_setting, metric, mean`` at least).

    Returns:
        ``{(model, mix): {"<task>/<metric>/<lang>": mean}}``. The prompt
        setting joins the key (``.../<lang>/<setting>``) only for tasks scored
        under more than one setting; rows without a mean (no valid score) are
        left out.

    Raises:
        ValueError: a column is missing, or two rows give the same key.
    """
    missing = [c for c in AGGREGATE_KEYS if c not in aggregates.columns]
    if missing:
        raise ValueError(f"report_aggregates: missing columns {missing}; has {list(aggregates.columns)}")
    settings = aggregates.groupby("task")["prompt_setting"].nunique()
    out: dict[tuple[str, str], dict[str, float]] = {}
    for row in aggregates[AGGREGATE_KEYS].itertuples(index=False):
        if pd.isna(row.mean):
            continue
        parts = [row.task, row.metric, row.lang] + ([row.prompt_setting] if settings[row.task] > 1 else [])
        key = _key(*parts)
        metrics = out.setdefault((str(row.model), str(row.mix)), {})
        if key in metrics:
            raise ValueError(f"report_aggregates: two rows for model {row.model!r}, mix {row.mix!r}, metric {key!r}")
        metrics[key] = float(row.mean)
    return out


def run_metrics(per_mix: Mapping[tuple[str, str], Mapping[str, float]]) -> dict[str, float]:
    """The per-mix metrics flattened for the run itself: ``<mix>/<key>``
    (``<model>/<mix>/<key>`` when the grid has several models)."""
    several_models = len({model for model, _ in per_mix}) > 1
    return {
        "/".join([_key(*([model] if several_models else []), mix), key]): value
        for (model, mix), metrics in per_mix.items()
        for key, value in metrics.items()
    }


def log_aggregates(aggregates: pd.DataFrame, run_id: str, client=None) -> dict[str, str]:
    """Log the final scores on MLflow run ``run_id`` and on one nested run per mix.

    A nested run of the mix that already exists under ``run_id`` (its
    training run, named after the mix) receives the metrics; otherwise one is
    created, tagged ``mix`` and ``model``.

    Args:
        aggregates: ``report_aggregates``.
        run_id: the parent run (the ``kedro run``'s).
        client: an ``mlflow.MlflowClient`` (default: the current tracking URI).

    Returns:
        ``{"<model>/<mix>": nested run id}``.
    """
    import mlflow
    from mlflow.entities import Metric, RunStatus

    client = client or mlflow.MlflowClient()
    parent = client.get_run(run_id)
    per_mix = mix_metrics(aggregates)
    now = mlflow.utils.time.get_current_time_millis()

    def batch(target: str, metrics: Mapping[str, float]) -> None:
        items = [Metric(key=k, value=v, timestamp=now, step=0) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):  # MLflow's per-request metric limit
            client.log_batch(target, metrics=items[i : i + 1000])

    batch(run_id, run_metrics(per_mix))
    children = {
        run.data.tags.get(RUN_NAME_TAG): run
        for run in client.search_runs([parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{run_id}'")
    }
    several_models = len({model for model, _ in per_mix}) > 1
    nested: dict[str, str] = {}
    for (model, mix), metrics in per_mix.items():
        name = f"{model}/{mix}" if several_models else mix
        child = children.get(name)
        if child is None:
            child = client.create_run(parent.info.experiment_id, run_name=name, tags={PARENT_TAG: run_id})
        client.set_tag(child.info.run_id, MIX_TAG, mix)
        client.set_tag(child.info.run_id, MODEL_TAG, model)
        batch(child.info.run_id, metrics)
        if child.info.status == RunStatus.to_string(RunStatus.RUNNING):
            client.set_terminated(child.info.run_id)
        nested[f"{model}/{mix}"] = child.info.run_id
    logger.info("MLflow: %d metrics on run %s and %d nested mix runs", sum(map(len, per_mix.values())), run_id,
                len(nested))
    return nested


def trainer_callbacks() -> list[Any]:
    """Extra ``TrainerCallback`` objects for a trainer inside a Kedro node.

    While an MLflow run is active (kedro-mlflow's): one
    ``NestedMlflowCallback`` (see :func:`nested_mlflow_callback_class`), so the training curves go to a nested run
    named by ``TrainingArguments.run_name`` (with ``MLFLOW_NESTED_RUN`` set by
    :class:`MlflowResultsHook`). Else none: outside a tracked run (unit tests,
    tracking disabled) the callback would open a run of its own in whatever
    store the working directory implies. Use with ``report_to="none"`` so
    transformers does not add its plain callback too.
    """
    try:
        import mlflow
    except ImportError:
        return []
    return [nested_mlflow_callback_class()()] if mlflow.active_run() is not None else []


@functools.cache
def nested_mlflow_callback_class() -> type:
    """``NestedMlflowCallback``: transformers' MLflow callback that ends only the run it opened.

    transformers 5's ``MLflowCallback`` ends its run at the end of training
    (back to the parent) but keeps ``_auto_end_run`` set, and its
    ``__del__`` then ends whatever run is active: the ``kedro run``'s own
    run, as soon as the trainer is garbage collected. Built on first use so
    importing this module (settings.py does) does not import transformers.
    """
    from transformers.integrations import MLflowCallback

    class NestedMlflowCallback(MLflowCallback):
        def on_train_end(self, args, state, control, **kwargs):
            super().on_train_end(args, state, control, **kwargs)
            self._auto_end_run = False

    return NestedMlflowCallback


def saved_path(dataset: Any) -> Path | None:
    """The local file or folder ``dataset`` has just written (its save version), or None.

    Versioned datasets write ``<filepath>/<version>/<name>``; others their
    ``filepath``. Remote (fsspec) paths give None: nothing to copy locally.
    """
    if hasattr(dataset, "resolve_save_version") and getattr(dataset, "_version", None) is not None:
        # The version this run saved (cached per dataset); _get_save_path
        # would refuse it because it exists now.
        path = dataset._get_versioned_path(dataset.resolve_save_version())
    else:
        path = getattr(dataset, "_filepath", None)
    if path is None or getattr(dataset, "_protocol", "file") not in ("file", "local"):
        return None
    path = Path(str(path))
    return path if path.exists() else None


class MlflowResultsHook:
    """Mirrors the aggregates, report and figures into the active MLflow run (see module doc).

    Args:
        aggregates_dataset: the catalog name of the aggregates table.
        artifacts: catalog name -> MLflow artifact folder of each dataset
            logged as an artifact once saved.
    """

    def __init__(self, aggregates_dataset: str = "report_aggregates",
                 artifacts: Mapping[str, str] | None = None):
        self.aggregates_dataset = aggregates_dataset
        self.artifacts = dict(DEFAULT_ARTIFACTS if artifacts is None else artifacts)
        self._catalog = None
        self._set_nested = False

    @staticmethod
    def _active_run():
        try:
            import mlflow
        except ImportError:  # tracking is optional: the pipeline never needs it
            return None
        return mlflow.active_run()

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog = catalog

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        self._catalog = catalog
        # kedro-mlflow has opened the run by now (plugin hooks are called
        # before the project's); a user's own MLFLOW_NESTED_RUN wins.
        if "MLFLOW_NESTED_RUN" not in os.environ and self._active_run() is not None:
            os.environ["MLFLOW_NESTED_RUN"] = "TRUE"
            self._set_nested = True

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        if dataset_name != self.aggregates_dataset and dataset_name not in self.artifacts:
            return
        run = self._active_run()
        if run is None:
            logger.debug("no active MLflow run: %s not mirrored", dataset_name)
            return
        if dataset_name == self.aggregates_dataset:
            log_aggregates(data, run.info.run_id)
        if dataset_name in self.artifacts:
            self._log_artifact(dataset_name, run.info.run_id)

    def _log_artifact(self, dataset_name: str, run_id: str) -> None:
        import mlflow

        dataset = self._catalog.get(dataset_name) if self._catalog is not None else None
        path = saved_path(dataset) if dataset is not None else None
        if path is None:
            logger.warning("MLflow: no local file for dataset %s: not logged as an artifact", dataset_name)
            return
        # A folder (the figures) lands as <artifact folder>/<its name>/...
        mlflow.MlflowClient().log_artifact(run_id, str(path), self.artifacts[dataset_name])
        logger.info("MLflow: %s logged as artifact %s/%s", dataset_name, self.artifacts[dataset_name], path.name)

    def _restore(self) -> None:
        if self._set_nested:
            os.environ.pop("MLFLOW_NESTED_RUN", None)
            self._set_nested = False

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        self._restore()

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        self._restore()


def flatten_params(params: Mapping[str, Any], *, recursive: bool = True, sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the names kedro-mlflow gives flattened parameters."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            inner = flatten_params(value, recursive=recursive, sep=sep) if recursive else value
            out.update({f"{key}{sep}{k}": v for k, v in inner.items()})
        else:
            out[str(key)] = value
    return out


try:
    from kedro_mlflow.framework.hooks import MlflowHook
except ImportError:  # tracking is optional
    MlflowHook = None  # type: ignore[assignment,misc]

BatchedParamsMlflowHook: Any = None
if MlflowHook is not None:

    class BatchedParamsMlflowHook(MlflowHook):  # type: ignore[misc,valid-type]
        """kedro-mlflow's hook, logging the parameters the nodes read once, in batches, before the first node.

        kedro-mlflow logs them in ``before_node_run``, one MLflow call per
        flattened parameter per node: 4,887 calls of ~7 ms on the local SQLite
        store in the embedded default (~35 s of a 5-minute run, profiled).
        This hook logs the same names and values (same flattening, name
        sanitising and ``long_params_strategy`` of ``mlflow.yml``) with
        ``mlflow.log_params``, 100 at a time (MLflow's batch limit), and
        passes each node's other inputs on to kedro-mlflow unchanged. It
        replaces the plugin's own instance (``DISABLE_HOOKS_FOR_PLUGINS`` in
        settings.py).
        """

        BATCH = 100

        @hook_impl
        def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
            super().before_pipeline_run(run_params, pipeline, catalog)
            if not self._is_mlflow_enabled:
                return
            import mlflow
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

            read = {}
            for name in sorted(pipeline.inputs()):
                if name.startswith("params:"):
                    read[name[len("params:"):]] = catalog.load(name)
                elif name == "parameters":
                    read[name] = catalog.load(name)
            if self.flatten:
                read = flatten_params(read, recursive=self.recursive, sep=self.sep)
            params, tags = {}, {}
            for key, value in read.items():
                key, text = self.sanitize_param_name(key), str(value)
                if len(text) <= MAX_PARAM_VAL_LENGTH:
                    params[key] = value
                elif self.long_params_strategy == "fail":
                    raise ValueError(f"Parameter '{key}' length is {len(text)}, while mlflow forces it to be lower "
                                     f"than '{MAX_PARAM_VAL_LENGTH}' (long_params_strategy: fail in mlflow.yml)")  # fmt: skip
                elif self.long_params_strategy == "tag":
                    tags[key] = value
                else:  # truncate
                    params[key] = text[:MAX_PARAM_VAL_LENGTH]
            items = sorted(params.items())
            for start in range(0, len(items), self.BATCH):
                mlflow.log_params(dict(items[start : start + self.BATCH]))
            if tags:
                mlflow.set_tags(tags)
            logger.info("MLflow: %d parameters logged (%d long ones as tags)", len(params), len(tags))

        @hook_impl
        def before_node_run(self, node, catalog, inputs: dict[str, Any], is_async: bool) -> None:
            # the run is re-opened per node (kedro-mlflow's thread safety); its parameters are logged already
            rest = {k: v for k, v in inputs.items() if not (k.startswith("params:") or k == "parameters")}
            super().before_node_run(node, catalog, rest, is_async)
