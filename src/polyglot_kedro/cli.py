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

    from polyglot_kedro.cluster.session import RUN_ID_ENV

    import os

    os.environ.pop(RUN_ID_ENV, None)  # planning never runs inside a grid job's session
    runtime = _parse_params(params)
    with settings.SESSION_CLASS.create(project_path=metadata.project_path, env=env, runtime_params=runtime,
                                       save_on_close=False) as session:  # fmt: skip
        context = session.load_context()
        cfg = cluster_config(context.params)
        return cfg, dict(pipelines), context.catalog, context.env or "local"


def _grid_dir(metadata, env: str | None) -> Path:
    """``cluster.grid_dir`` from the parameters alone (no session, no hooks: status stays quick)."""
    import os

    from kedro.framework.project import settings

    loader = settings.CONFIG_LOADER_CLASS(conf_source=str(Path(metadata.project_path) / settings.CONF_SOURCE),
                                          env=env or os.environ.get("KEDRO_ENV"), **settings.CONFIG_LOADER_ARGS)  # fmt: skip
    cfg = cluster_config(loader["parameters"])
    return Path(metadata.project_path) / cfg.grid_dir


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

    try:
        run = sub.find_run(_grid_dir(metadata, env), run_id)
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

    try:
        run = sub.find_run(_grid_dir(metadata, env), run_id)
        new = sub.resubmit(run, stage, mix)
    except (FileNotFoundError, ValueError, slurm.SlurmError) as exc:
        raise KedroCliError(str(exc)) from exc
    click.echo(f"resubmitted {stage}{' ' + mix if mix else ''} of grid run {run.run_id} as job {new}")


def _emit(text: str, output: str) -> None:
    # Kedro's rich log handler writes to stdout too: scripts read --output files instead.
    if output == "-":
        click.echo(text)
    else:
        Path(output).write_text(text + "\n", encoding="utf-8")


_OUTPUT = click.option("--output", "-o", default="-", help="Write the result to this file (default: stdout, "
                       "mixed with Kedro's log lines).")  # fmt: skip


@grid.command()
@env_option
@_OUTPUT
@click.pass_obj
def mixes(metadata, env: str | None, output: str) -> None:
    """Print the grid's mixes (the namespaces of the per-mix stages), one per line."""
    from polyglot_kedro.cluster.plan import namespaces

    cfg, pipelines, _, _ = _load(metadata, env, "")
    _emit("\n".join(sorted({m for s in cfg.per_mix for m in namespaces(pipelines[s])})), output)


@grid.command()
@env_option
@click.argument("job")
@click.argument("mix", required=False)
@click.option("--run-id", type=str, required=True, help="The grid's save version (shared by all its jobs).")
@click.option("--params", type=str, default="", help="Runtime parameters (as for kedro run).")
@_OUTPUT
@click.pass_obj
def command(metadata, env: str | None, job: str, mix: str | None, run_id: str, params: str, output: str) -> None:
    """Print the kedro run line(s) of one job (prepare, final, a per-mix stage) for MIX.

    For runners other than SLURM (conf/skypilot/): ``kedro grid command ... -o cmds.sh && bash -e cmds.sh``
    with ``POLYGLOT_GRID_RUN_ID`` exported.
    """
    from polyglot_kedro.cluster import submit as sub
    from polyglot_kedro.cluster.plan import job_commands

    try:
        cfg, pipelines, catalog, env_name = _load(metadata, env, params)
        run = sub.plan(cfg, pipelines, catalog, env=env_name, project_path=Path(metadata.project_path),
                       params=params, run_id=run_id)  # fmt: skip
        matching = [j for j in run.jobs if j.key == job or (j.resources_of == job and mix in (j.mixes or []))]
        if not matching:
            raise ValueError(f"no job {job!r}{' with mix ' + repr(mix) if mix else ''} (jobs: {[j.key for j in run.jobs]})")
        res = cfg.resources(matching[0].resources_of)
        lines = job_commands(matching[0], mix, env=env_name, run_id=run.run_id, kedro=cfg.kedro or "kedro",
                             params=params, work_dir=cfg.grid_dir,
                             accelerate_config=res.accelerate_config if res.launcher == "accelerate" else None)  # fmt: skip
    except (ValueError, KeyError) as exc:
        raise KedroCliError(str(exc)) from exc
    _emit("\n".join(lines), output)
