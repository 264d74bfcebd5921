"""From registered pipelines to SLURM jobs, and their sbatch scripts.

The layout (``params:cluster``):

* ``prepare``: one job running the ``prepare`` pipelines once (data mixing, the
  base model), plus the un-namespaced nodes of the per-mix stages (e.g.
  ``build_eval_prompts``) that every mix shares.
* ``per_mix``: one job array per stage, one task per mix; the mixes are the
  namespaces of the stage's nodes. A task's index is the mix's position in the
  sorted list of all mixes, so the tasks of one mix carry the same index in
  every array and ``--dependency=aftercorr`` chains them element-wise (task i
  of inference starts when task i of finetuning succeeded). A mix that skips a
  stage (an untuned mix has no finetuning) lands in its own array that depends
  on the job the mix really came from; aftercorr is only used between arrays
  whose index sets match.
* ``final``: one job after all others (``afterok``), e.g. judging + reporting.

Every job runs ``kedro run --env E --pipelines S [--namespaces MIX]`` with
``POLYGLOT_GRID_RUN_ID`` exported (one save version for the whole grid, see
``session``) and ``--load-versions`` pinning every versioned dataset the job
reads or writes that the grid produces to that same version.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from kedro.io.core import AbstractVersionedDataset
from kedro.pipeline import Pipeline

from polyglot_kedro.cluster.config import ClusterConfig, JobResources
from polyglot_kedro.cluster.session import RUN_ID_ENV
from polyglot_kedro.pipelines import mix_namespaces

PREPARE = "prepare"
FINAL = "final"
RESUBMIT_ENV = "POLYGLOT_GRID_RESUBMIT"


@dataclass(frozen=True)
class Dependency:
    """``kind:<job>`` where ``job`` is another job's key (resolved to a SLURM id at submission)."""

    job: str
    kind: Literal["afterok", "aftercorr"]


@dataclass
class Job:
    """One sbatch submission: a single job (``mixes`` None) or an array over ``mixes``."""

    key: str
    resources_of: str  # the cluster.jobs entry: prepare, final or the stage name
    steps: list[dict[str, Any]]  # {"pipelines": [...], "nodes": [...]} run in order
    depends: list[Dependency]
    mixes: list[str] | None = None
    indices: list[int] | None = None
    # per mix ("" for a single job): versioned datasets pinned to the run id
    load_versions: dict[str, list[str]] = field(default_factory=dict)
    # per mix: version folders this job writes (removed before a rerun of it)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    # per mix: dataset paths the accelerate launcher needs (train_mix, base_model)
    launch_inputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        data = dict(data)
        data["depends"] = [Dependency(**d) for d in data["depends"]]
        return cls(**data)


def namespaces(pipeline: Pipeline) -> list[str]:
    """The mixes of ``pipeline``: its top-level node namespaces less the base models', sorted."""
    return mix_namespaces(pipeline)


def _check_stages(cfg: ClusterConfig, pipelines: Mapping[str, Pipeline]) -> None:
    for group in ("prepare", "per_mix", "final"):
        for stage in getattr(cfg, group):
            if stage not in pipelines:
                raise ValueError(f"cluster.{group}: {stage!r} is not a registered pipeline "
                                 f"(registered: {sorted(k for k in pipelines if k != '__default__')})")  # fmt: skip
    for stage in cfg.per_mix:
        if not namespaces(pipelines[stage]):
            raise ValueError(f"cluster.per_mix: pipeline {stage!r} has no namespaced nodes (no mixes)")


def build_jobs(cfg: ClusterConfig, pipelines: Mapping[str, Pipeline], catalog: Any, run_id: str) -> list[Job]:
    """The grid's jobs in submission order (each job's dependencies come before it).

    Args:
        cfg: the validated ``params:cluster``.
        pipelines: the registered pipelines (``kedro.framework.project.pipelines``).
        catalog: the run's catalog (to tell versioned datasets and resolve their paths).
        run_id: the grid's save version.

    Returns:
        prepare, then the per-mix arrays, then final.
    """
    _check_stages(cfg, pipelines)
    mixes = sorted({m for s in cfg.per_mix for m in namespaces(pipelines[s])})
    index = {m: i for i, m in enumerate(mixes)}

    prepare_pipe = sum((pipelines[s] for s in cfg.prepare), Pipeline([]))
    steps: list[dict[str, Any]] = [{"pipelines": list(cfg.prepare), "nodes": []}] if cfg.prepare else []
    shared_nodes: dict[str, list[str]] = {}  # un-namespaced nodes of per-mix stages, not already in prepare
    for s in cfg.per_mix:
        for n in pipelines[s].nodes:
            if not n.namespace and n not in prepare_pipe.nodes and n.name not in {x for v in shared_nodes.values() for x in v}:
                shared_nodes.setdefault(s, []).append(n.name)
    if shared_nodes:
        steps.append({"pipelines": list(shared_nodes), "nodes": sorted({x for v in shared_nodes.values() for x in v})})
    shared_pipe = sum((pipelines[s].filter(node_names=v) for s, v in shared_nodes.items()), Pipeline([]))
    jobs = [Job(PREPARE, PREPARE, steps, [])]
    job_pipes: dict[tuple[str, str], Pipeline] = {(PREPARE, ""): prepare_pipe + shared_pipe}

    came_from: dict[str, str] = dict.fromkeys(mixes, PREPARE)  # mix -> key of the last job that ran it
    for stage in cfg.per_mix:
        stage_mixes = namespaces(pipelines[stage])
        groups: dict[str, list[str]] = {}
        for m in stage_mixes:
            groups.setdefault(came_from[m], []).append(m)
        # the biggest group (most mixes) is the array named after the stage
        for n, (upstream, group) in enumerate(sorted(groups.items(), key=lambda kv: -len(kv[1]))):
            key = stage if n == 0 else f"{stage}-after-{upstream}"
            up = next(j for j in jobs if j.key == upstream)
            same_index_set = up.mixes is not None and set(group) <= set(up.mixes)
            dep = Dependency(upstream, "aftercorr" if same_index_set else "afterok")
            job = Job(key, stage, [{"pipelines": [stage], "nodes": []}], [dep], mixes=group,
                      indices=[index[m] for m in group])  # fmt: skip
            jobs.append(job)
            for m in group:
                job_pipes[(key, m)] = pipelines[stage].filter(node_namespaces=[m])
                came_from[m] = key
    final_pipe = sum((pipelines[s] for s in cfg.final), Pipeline([]))
    if cfg.final:
        jobs.append(Job(FINAL, FINAL, [{"pipelines": list(cfg.final), "nodes": []}],
                        [Dependency(j.key, "afterok") for j in jobs]))  # fmt: skip
        job_pipes[(FINAL, "")] = final_pipe

    produced = set().union(*(p.all_outputs() for p in job_pipes.values()))
    versioned = {name for name in produced if _is_versioned(catalog, name)}
    for (key, mix), pipe in job_pipes.items():
        job = next(j for j in jobs if j.key == key)
        job.load_versions[mix] = sorted(versioned & set(pipe.datasets()))
        job.outputs[mix] = sorted({_version_dir(catalog, d, run_id) for d in versioned & pipe.all_outputs()} - {None})
    for job in jobs:
        if job.mixes and cfg.resources(job.resources_of).launcher == "accelerate":
            job.launch_inputs = {m: {"train_mix": _path_at(catalog, f"{m}.train_mix", run_id),
                                     "base_model": _path_at(catalog, _base_model_of(job_pipes[(job.key, m)]), run_id)}
                                 for m in job.mixes}  # fmt: skip
    return jobs


def _base_model_of(pipe: Pipeline) -> str:
    """The base model a mix's job reads: ``base_model``, or ``<model>.base_model`` for a mix on its own model."""
    found = sorted(d for d in pipe.inputs() if d == "base_model" or d.endswith(".base_model"))
    return found[0] if len(found) == 1 else "base_model"


def _dataset(catalog: Any, name: str) -> Any:
    if name.startswith("params:") or name == "parameters":
        return None
    return catalog.get(name, fallback_to_runtime_pattern=False)


def _is_versioned(catalog: Any, name: str) -> bool:
    ds = _dataset(catalog, name)
    return isinstance(ds, AbstractVersionedDataset) and getattr(ds, "_version", None) is not None


def _path_at(catalog: Any, name: str, run_id: str) -> str:
    """The file/folder of dataset ``name`` at version ``run_id`` (or its plain path when unversioned)."""
    ds = _dataset(catalog, name)
    if ds is None:
        raise ValueError(f"the accelerate launcher needs dataset {name!r}, which the catalog does not define")
    if isinstance(ds, AbstractVersionedDataset) and getattr(ds, "_version", None) is not None:
        return str(ds._get_versioned_path(run_id))
    path = getattr(ds, "_filepath", None) or getattr(ds, "_path", None)
    if path is None:
        raise ValueError(f"dataset {name!r} ({type(ds).__name__}) has no file path for the accelerate launcher")
    return str(path)


def _version_dir(catalog: Any, name: str, run_id: str) -> str | None:
    """``<filepath>/<run_id>``: the folder one versioned save creates; None for remote paths."""
    ds = _dataset(catalog, name)
    protocol = getattr(ds, "_protocol", "file")
    if protocol not in ("file", None):
        return None
    return str(PurePosixPath(ds._get_versioned_path(run_id)).parent)


def dependency_graph(jobs: list[Job], mix_index: Mapping[str, int] | None = None) -> str:
    """A readable dependency graph: one line per job (and per array task) with what it waits for."""
    lines = []
    for job in jobs:
        deps = ", ".join(f"{d.kind}:{d.job}" for d in job.depends) or "-"
        what = " + ".join(f"{'+'.join(s['pipelines'])}{' (nodes ' + ','.join(s['nodes']) + ')' if s['nodes'] else ''}"
                          for s in job.steps)  # fmt: skip
        if job.mixes is None:
            lines.append(f"{job.key:<28} job         {what:<40} after {deps}")
        else:
            lines.append(f"{job.key:<28} array[{len(job.mixes)}]    {what:<40} after {deps}")
            for m, i in zip(job.mixes, job.indices or [], strict=True):
                up = ", ".join(f"{d.job}[{i}]" if d.kind == "aftercorr" else d.job for d in job.depends)
                lines.append(f"  [{i}] {m:<22} {'':11} {'':40} after {up}")
    return "\n".join(lines)


def _sbatch_lines(job: Job, res: JobResources, cfg: ClusterConfig, log_dir: Path) -> list[str]:
    name = f"{cfg.job_name}-{job.key}"
    lines = [f"--job-name={name}"]
    if job.mixes is not None:
        lines.append(f"--array={array_spec(job.indices or [])}" + (f"%{res.max_parallel}" if res.max_parallel else ""))
        lines.append(f"--output={log_dir}/{job.key}_%A_%a.out")
    else:
        lines.append(f"--output={log_dir}/{job.key}_%j.out")
    lines.append("--open-mode=append")  # a requeued task appends to its log
    for opt, value in (("partition", res.partition), ("account", res.account), ("qos", res.qos)):
        if value:
            lines.append(f"--{opt}={value}")
    lines += [f"--cpus-per-task={res.cpus}", f"--mem={res.mem}", f"--time={res.time}", "--nodes=1", "--ntasks=1"]
    if res.gpus:
        lines.append(f"--gpus={res.gpu_type + ':' if res.gpu_type else ''}{res.gpus}")
    if res.requeue:
        lines += ["--requeue", f"--signal=B:USR1@{res.signal_before_s}"]
    else:
        lines.append("--no-requeue")
    return lines + list(res.extra_sbatch)


def array_spec(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5`` (sbatch --array syntax)."""
    parts: list[str] = []
    for i in sorted(indices):
        if parts and int(parts[-1].split("-")[-1]) == i - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{i}"
        else:
            parts.append(str(i))
    return ",".join(parts)


def _bash_assoc(name: str, values: Mapping[int, str]) -> str:
    items = " ".join(f"[{i}]={shlex.quote(v)}" for i, v in values.items())
    return f"declare -A {name}=({items})"


def render_script(job: Job, cfg: ClusterConfig, *, env: str, run_id: str, project_path: Path, kedro: str,
                  log_dir: Path, params: str = "") -> str:  # fmt: skip
    """The sbatch script of ``job``: resources as ``#SBATCH`` lines, the USR1 requeue handler, the kedro runs.

    A requeued task's rerun re-points its dependents with this interpreter (the submitting one).
    """
    res = cfg.resources(job.resources_of)
    out = ["#!/bin/bash"] + [f"#SBATCH {x}" for x in _sbatch_lines(job, res, cfg, log_dir)]
    out += [
        f"# {job.key}: grid run {run_id}, env {env}. Written by `kedro grid submit`; rerun one task with",
        f"# `kedro grid resubmit {job.resources_of}{' <mix>' if job.mixes is not None else ''} --run-id {run_id}`.",
        "set -uo pipefail",
        f"cd {shlex.quote(str(project_path))}",
        f"export {RUN_ID_ENV}={run_id}",
        "export PYTHONUNBUFFERED=1",
    ]
    if job.mixes is None:
        out += ["TASK=0", "MIX=''", f"LOAD_VERSIONS={shlex.quote(_lv(job.load_versions.get('', []), run_id))}",
                f"OUTPUTS={shlex.quote(' '.join(job.outputs.get('', [])))}"]  # fmt: skip
    else:
        idx = dict(zip(job.indices or [], job.mixes, strict=True))
        out += [
            _bash_assoc("MIXES", idx),
            _bash_assoc("LOAD_VERSIONS_OF", {i: _lv(job.load_versions.get(m, []), run_id) for i, m in idx.items()}),
            _bash_assoc("OUTPUTS_OF", {i: " ".join(job.outputs.get(m, [])) for i, m in idx.items()}),
            'TASK="${SLURM_ARRAY_TASK_ID:?not an array task}"',
            'MIX="${MIXES[$TASK]:?no mix for array index $TASK}"',
            'LOAD_VERSIONS="${LOAD_VERSIONS_OF[$TASK]}"',
            'OUTPUTS="${OUTPUTS_OF[$TASK]}"',
        ]
        if job.launch_inputs:
            out += [_bash_assoc("TRAIN_MIX_OF", {i: job.launch_inputs[m]["train_mix"] for i, m in idx.items()}),
                    _bash_assoc("BASE_MODEL_OF", {i: job.launch_inputs[m]["base_model"] for i, m in idx.items()})]  # fmt: skip
    out += res.setup  # after MIX is known: a setup line may use it
    out += [
        'echo "[grid] $(date -u +%FT%TZ) job ${SLURM_JOB_ID:-?} task $TASK mix ${MIX:-all} '
        'restart ${SLURM_RESTART_COUNT:-0} on $(hostname)"',
        "",
        "# SLURM sends USR1 to this shell before the time limit (--signal=B:USR1@N) or on",
        "# `scancel --signal=USR1 --batch`: stop the running step and put the task back in",
        "# the queue; the rerun resumes from the last checkpoint (finetuning.resume).",
        "child=''",
        "on_usr1() {",
        '  echo "[grid] $(date -u +%FT%TZ) USR1: stopping the step, requeueing job $SLURM_JOB_ID"',
        '  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi',
        '  scontrol requeue "$SLURM_JOB_ID"',
        "  exit 0",
        "}",
        "trap on_usr1 USR1",
        "# a step runs in the background so that the trap fires while it runs",
        'step() { echo "[grid] $(date -u +%FT%TZ) $*"; "$@" & child=$!; wait "$child"; local rc=$?; child=\'\'; return $rc; }',
        "",
        "# A rerun (requeue or resubmit) first removes this task's own half-written outputs of",
        "# this grid run (Kedro refuses to overwrite a saved version); nobody has read them yet.",
        f'if [ "${{SLURM_RESTART_COUNT:-0}}" -gt 0 ] || [ -n "${{{RESUBMIT_ENV}:-}}" ]; then',
        '  for d in $OUTPUTS; do [ -e "$d" ] && echo "[grid] removing $d" && rm -rf "$d"; done',
        "fi",
        "# A requeue can fail the afterok of the jobs waiting on this task for good (SLURM tests it",
        "# while the task shows CANCELLED): the rerun points them back at this task.",
        'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then',
        '  OWN="${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}"',
        f'  {shlex.quote(sys.executable)} -m polyglot_kedro.cluster.requeue {shlex.quote(str(log_dir.parent))} '
        f'{shlex.quote(job.key)} "$MIX" "${{OWN:-$SLURM_JOB_ID}}" || exit $?',
        "fi",
    ]
    lv = '${LOAD_VERSIONS:+--load-versions "$LOAD_VERSIONS"}'
    extra = f" --params {shlex.quote(params)}" if params else ""
    if res.launcher == "accelerate" and job.launch_inputs:  # train first, over all GPUs
        bin_dir = Path(kedro).parent
        sets = " ".join(shlex.quote(p) for p in params.split(",") if p) if params else ""
        work = Path(log_dir).parent / "accelerate"
        out.append(f'step {shlex.quote(str(bin_dir / "accelerate"))} launch --config_file '
                   f'{shlex.quote(res.accelerate_config or "")} scripts/train_accelerate.py '
                   f'--train-mix "${{TRAIN_MIX_OF[$TASK]}}" --base-model "${{BASE_MODEL_OF[$TASK]}}" --mix "$MIX" '
                   f'--adapter-out {shlex.quote(str(work))}/"$MIX"/adapter '
                   f'--metrics-out {shlex.quote(str(work))}/"$MIX"/metrics.json --env {shlex.quote(env)}'
                   f'{" --set " + sets if sets else ""} || exit $?')  # fmt: skip
    for st in job.steps:
        ns = ' --namespaces "$MIX"' if job.mixes is not None else ""
        nodes = f" --nodes {shlex.quote(','.join(st['nodes']))}" if st["nodes"] else ""
        out.append(f"step {shlex.quote(kedro)} run --env {shlex.quote(env)} --pipelines "
                   f"{shlex.quote(','.join(st['pipelines']))}{ns}{nodes} {lv}{extra} || exit $?")  # fmt: skip
    out.append('echo "[grid] $(date -u +%FT%TZ) done"')
    return "\n".join(out) + "\n"


def _lv(names: list[str], run_id: str) -> str:
    return ",".join(f"{n}:{run_id}" for n in names)


def job_commands(job: Job, mix: str | None, *, env: str, run_id: str, kedro: str, params: str = "",
                 accelerate_config: str | None = None, work_dir: str = "data/09_grid") -> list[str]:  # fmt: skip
    """The command lines of one task, spelled out (no SLURM variables).

    What a SkyPilot managed job (conf/skypilot/) or a shell runs for ``job``
    and ``mix``; export ``POLYGLOT_GRID_RUN_ID`` first. With
    ``accelerate_config`` (launcher accelerate) a finetuning task first trains
    with ``accelerate launch scripts/train_accelerate.py``.
    """
    if job.mixes is not None and mix not in job.mixes:
        raise ValueError(f"mix {mix!r} is not a task of job {job.key!r} (its mixes: {job.mixes})")
    key = mix if job.mixes is not None else ""
    lv = _lv(job.load_versions.get(key, []), run_id)
    lines = []
    if accelerate_config and mix in job.launch_inputs:
        work = f"{work_dir}/{run_id}/accelerate/{mix}"
        argv = ["accelerate", "launch", "--config_file", accelerate_config, "scripts/train_accelerate.py",
                "--train-mix", job.launch_inputs[mix]["train_mix"], "--base-model", job.launch_inputs[mix]["base_model"],
                "--mix", mix, "--adapter-out", f"{work}/adapter", "--metrics-out", f"{work}/metrics.json", "--env", env]
        if params:
            argv += ["--set", *[p for p in params.split(",") if p]]
        lines.append(shlex.join(argv))
    for st in job.steps:
        argv = [kedro, "run", "--env", env, "--pipelines", ",".join(st["pipelines"])]
        if job.mixes is not None:
            argv += ["--namespaces", mix]
        if st["nodes"]:
            argv += ["--nodes", ",".join(st["nodes"])]
        if lv:
            argv += ["--load-versions", lv]
        if params:
            argv += ["--params", params]
        lines.append(shlex.join(argv))
    return lines
