"""``params:cluster``: which registered pipelines run once, per mix, or at the end, and each job's resources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from polyglot_kedro.config import StrictModel


class JobResources(StrictModel):
    """What one SLURM job (or one array task) asks for, and how it launches Kedro."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus: int = Field(0, ge=0)
    gpu_type: str | None = None  # e.g. a100: --gpus=a100:4
    cpus: int = Field(1, ge=1)  # --cpus-per-task
    mem: str = "4G"  # --mem (per node)
    time: str = "01:00:00"  # --time
    # At most this many array tasks at once (the %N of --array); null: no limit.
    max_parallel: int | None = Field(None, ge=1)
    # Verbatim "#SBATCH ..." options, e.g. ["--constraint=a100", "--exclusive"].
    extra_sbatch: list[str] = []
    # Shell lines run before Kedro, e.g. ["module load cuda/12.4", "source .venv/bin/activate"].
    setup: list[str] = []
    # kedro: `kedro run` only. accelerate: `accelerate launch` of scripts/train_accelerate.py
    # over the job's GPUs first, then `kedro run` (which resumes the finished checkpoint and
    # writes the catalog outputs); finetuning only.
    launcher: Literal["kedro", "accelerate"] = "kedro"
    accelerate_config: str | None = None  # conf/accelerate/*.yaml
    # Requeue on preemption, node failure or the time limit, resuming from the checkpoint:
    # --requeue plus a USR1 signal to the batch shell this many seconds before the limit.
    requeue: bool = False
    signal_before_s: int = Field(120, ge=1)

    @model_validator(mode="after")
    def _launcher_needs_config(self) -> JobResources:
        if self.launcher == "accelerate" and not self.accelerate_config:
            raise ValueError("launcher: accelerate needs accelerate_config (a file under conf/accelerate/)")
        return self

    @field_validator("extra_sbatch")
    @classmethod
    def _no_prefix(cls, lines: list[str]) -> list[str]:
        bad = [x for x in lines if not x.startswith("-")]
        if bad:
            raise ValueError(f"extra_sbatch entries are sbatch options starting with '-' (no '#SBATCH'): {bad}")
        return lines


class ClusterConfig(StrictModel):
    """The grid's job layout. Stage names are registered pipeline names."""

    prepare: list[str]  # run once, first, in one job (e.g. data_mixing)
    per_mix: list[str]  # one array per stage, one task per mix namespace, chained per mix
    final: list[str]  # one job after everything (e.g. judging + reporting)
    grid_dir: str = "data/09_grid"  # scripts, logs and the manifest of each grid run
    job_name: str = "polyglot"
    kedro: str | None = None  # the kedro executable; null: the one beside the submitting Python
    defaults: JobResources = JobResources()
    # Per job: prepare, final, or a per_mix stage name; keys override defaults.
    jobs: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _stages_disjoint(self) -> ClusterConfig:
        seen: dict[str, str] = {}
        for group in ("prepare", "per_mix", "final"):
            for stage in getattr(self, group):
                if stage in seen:
                    raise ValueError(f"stage {stage!r} is in both cluster.{seen[stage]} and cluster.{group}")
                seen[stage] = group
        if not self.per_mix:
            raise ValueError("cluster.per_mix is empty: nothing to run per mix")
        known = {"prepare", "final", *self.per_mix}
        unknown = sorted(set(self.jobs) - known)
        if unknown:
            raise ValueError(f"cluster.jobs has unknown job(s) {unknown}; known: {sorted(known)}")
        for name in self.jobs:
            self.resources(name)  # fail at start-up, naming the job
        return self

    def resources(self, job: str) -> JobResources:
        """The resources of ``job`` (prepare, final or a per_mix stage): defaults, then its overrides."""
        merged = {**self.defaults.model_dump(), **self.jobs.get(job, {})}
        try:
            return JobResources.model_validate(merged)
        except ValidationError as exc:
            raise ValueError(f"cluster.jobs.{job}: {exc}") from exc


def cluster_config(params: dict[str, Any]) -> ClusterConfig:
    """Validate ``params:cluster``; a clear error names the key."""
    if "cluster" not in params:
        raise KeyError("params:cluster is missing (conf/base/parameters_cluster.yml)")
    try:
        return ClusterConfig.model_validate(params["cluster"])
    except ValidationError as exc:
        raise ValueError(f"params:cluster is invalid: {exc}") from exc
