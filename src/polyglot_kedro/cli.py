"""Project commands: ``kedro grid submit|status|resubmit`` (the grid as SLURM jobs; docs/CLUSTER.md).

Kedro loads ``<package>.cli`` and adds the commands of its ``cli`` group to
``kedro`` inside the project (``KedroCLI.project_groups``).
"""

from __future__ import annotations

from pathlib import Path

import click
from kedro.framework.cli.utils import KedroCliError, env_option

from polyglot_kedro.cluster.config import cluster_config


@click.group(name="polyglot_kedro")
def cli() -> None:
    """Project commands of polyglot_kedro."""


@cli.group()
def grid() -> None:
    """Run the experiment grid as SLURM jobs: one array task per mix and stage."""


def _load(metadata, env: str | None, params: str):
    """Pipelines, catalog and ``params:cluster`` of ``env`` (the registry's mixes are the namespaces)."""
    from kedro.framework.project import pipelines, settings
    from kedro.framework.session import KedroSession

    from polyglot_kedro.cluster.session import RUN_ID_ENV

    import os

    os.environ.pop(RUN_ID_ENV, None)  # planning never runs inside a grid job's session
    runtime = _parse_params(params)
    with settings.SESSION_CLASS.create(project_path=metadata.project_path, env=env, runtime_params=runtime,
                                       save_on_close=False) as session:  # fmt: skip
        context = session.load_context()
        cfg = cluster_config(context.params)
        return cfg, dict(pipelines), context.catalog, context.env or "local"


def _parse_params(params: str) -> dict:
    from kedro.framework.cli.utils import _split_params

    return _split_params(None, None, params) if params else {}


@grid.command()
@env_option
@click.option("--dry-run", is_flag=True, help="Print every job script and the dependency graph; submit nothing.")
@click.option("--params", type=str, default="", help="Runtime parameters for every job (as for kedro run).")
@click.option("--run-id", type=str, default=None, help="The grid's save version (default: now, Kedro's format).")
@click.pass_obj
def submit(metadata, env: str | None, dry_run: bool, params: str, run_id: str | None) -> None:
    """Submit the grid: prepare once, per-mix arrays chained per mix, then the final job."""
    from polyglot_kedro.cluster import slurm
    from polyglot_kedro.cluster import submit as sub

    try:
        cfg, pipelines, catalog, env_name = _load(metadata, env, params)
        run = sub.plan(cfg, pipelines, catalog, env=env_name, project_path=Path(metadata.project_path),
                       params=params, run_id=run_id)  # fmt: skip
    except (ValueError, KeyError) as exc:
        raise KedroCliError(str(exc)) from exc
    if dry_run:
        click.echo(sub.dry_run_text(run))
        return
    try:
        sub.check_session_class()
        ids = sub.submit(run)
    except (RuntimeError, slurm.SlurmError) as exc:
        raise KedroCliError(str(exc)) from exc
    click.echo(f"grid run {run.run_id} (env {env_name}): {len(run.mixes)} mixes, {len(ids)} jobs submitted")
    click.echo("\n".join(f"  {k:<28} {v}" for k, v in ids.items()))
    click.echo(f"scripts, logs, manifest: {run.root}\nstate: kedro grid status --run-id {run.run_id}")


@grid.command()
@env_option
@click.option("--run-id", type=str, default=None, help="Grid run (default: the newest).")
@click.pass_obj
def status(metadata, env: str | None, run_id: str | None) -> None:
    """Each mix's state per stage: SLURM's while it knows the task, else whether its outputs exist."""
    from polyglot_kedro.cluster import slurm
    from polyglot_kedro.cluster import submit as sub

    cfg, _, _, _ = _load(metadata, env, "")
    try:
        run = sub.find_run(Path(metadata.project_path) / cfg.grid_dir, run_id)
        click.echo(f"grid run {run.run_id} (env {run.env})")
        click.echo(sub.status_table(sub.states(run)))
    except (FileNotFoundError, ValueError, slurm.SlurmError) as exc:
        raise KedroCliError(str(exc)) from exc


@grid.command()
@env_option
@click.argument("stage")
@click.argument("mix", required=False)
@click.option("--run-id", type=str, default=None, help="Grid run (default: the newest).")
@click.pass_obj
def resubmit(metadata, env: str | None, stage: str, mix: str | None, run_id: str | None) -> None:
    """Resubmit one failed task alone (STAGE MIX, or `prepare` / `final`); waiting jobs are re-pointed at it."""
    from polyglot_kedro.cluster import slurm
    from polyglot_kedro.cluster import submit as sub

    cfg, _, _, _ = _load(metadata, env, "")
    try:
        run = sub.find_run(Path(metadata.project_path) / cfg.grid_dir, run_id)
        new = sub.resubmit(run, stage, mix)
    except (FileNotFoundError, ValueError, slurm.SlurmError) as exc:
        raise KedroCliError(str(exc)) from exc
    click.echo(f"resubmitted {stage}{' ' + mix if mix else ''} of grid run {run.run_id} as job {new}")
