"""Suite-wide settings and fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Offline and quiet everywhere: no Hub, no telemetry, no tokenizer threads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under xdist (make test: two workers on two cores), each worker and the kedro runs
# it starts get an equal share of the cores as torch/OpenMP threads: two processes
# with two spinning OpenMP threads each on two cores once slowed the suite's default
# run past 10 minutes (218 s with one thread each). Set before any test module imports torch.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


# The suite runs on two xdist workers (``make test``: ``-n 2 --dist loadgroup``).
# A test module that shares one costly thing stays on one worker, so that thing
# is made once: the session's default run (every module reading it), the local
# SLURM (its grids share the one node), and the modules whose kedro start-ups run
# side by side (:class:`SideBySide` starts the whole module's runs at once).
# Those groups are queued first, in :data:`XDIST_GROUPS` order (the two longest
# start on the two workers at once), and the other modules fill in around them.
XDIST_GROUPS = ("default_run", "slurm")


def _xdist_group(module_items: list) -> str | None:
    """The group of one test module's items: the first of :data:`XDIST_GROUPS` one of them uses, else the
    module's own name when it runs kedro side by side, else None (its tests go wherever a worker is free)."""
    for group in XDIST_GROUPS:
        if any(group in getattr(item, "fixturenames", ()) for item in module_items):
            return group
    module = getattr(module_items[0], "module", None)
    if module is not None and getattr(module, "SideBySide", None) is SideBySide:
        return module.__name__
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into the node ids
def pytest_collection_modifyitems(config, items) -> None:
    by_module: dict[Path, list] = {}
    for item in items:
        by_module.setdefault(item.path, []).append(item)
    rank = {group: i for i, group in enumerate(XDIST_GROUPS)}
    order: dict[Path, int] = {}
    for path, module_items in by_module.items():
        group = _xdist_group(module_items)
        if group is None:
            continue
        for item in module_items:
            item.add_marker(pytest.mark.xdist_group(group))
        order[path] = rank.get(group, len(XDIST_GROUPS))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # only workers collect under xdist
        # the queue's order is the collection's (make test passes --no-loadscope-reorder)
        items.sort(key=lambda item: order.get(item.path, len(XDIST_GROUPS) + 1))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repo; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def copy_project(dest: Path) -> Path:
    """A runnable copy of the project (config + embedded demo data), code from the install."""
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    shutil.copytree(REPO_ROOT / "conf", dest / "conf", ignore=shutil.ignore_patterns("credentials.yml"))
    (dest / "src").mkdir()
    for layer in sorted((REPO_ROOT / "data").iterdir()):
        (dest / "data" / layer.name).mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "data" / "01_raw" / "demo", dest / "data" / "01_raw" / "demo", dirs_exist_ok=True)
    return dest


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


KEDRO = str(Path(sys.executable).with_name("kedro"))


def kedro_cli(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``kedro <args>`` in ``project`` as a user runs it (offline, no telemetry, default env)."""
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("KEDRO_ENV", None)
    return subprocess.run([KEDRO, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The README's main job (``kedro run``, embedded default) on a copy of the project, once per session.

    Shared by every test that reads a finished run (the report and scores in
    test_project, the MLflow store, the notebook): read it, run nothing more in
    it. A test that runs more copies it first (``test_project.rerun_project``),
    so the default pipeline runs once per session.
    """
    project = copy_project(tmp_path_factory.mktemp("default_run"))
    result = kedro_cli(project, "run", timeout=1800)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return project


class SideBySide:
    """Independent subprocesses of one test module, started together when the module's first one is needed.

    A ``kedro`` start-up is mostly single-threaded imports (``kedro registry
    list``: 17.8 s for two in a row, 8.8 s for two side by side on 2 idle
    cores), so runs that share nothing are started at once and each test
    waits for its own and asserts on it as before. Only the runs of selected
    tests start (``-k`` one test: one run). Each run keeps its own timeout,
    counted from its start.

    Args:
        request: the module-scoped fixture's request.
        specs: test function name -> a callable that prepares the run (its
            project copy, files) and returns ``subprocess.Popen`` keywords
            plus ``timeout`` and ``extra`` (kept for the test, e.g. the project folder).
    """

    def __init__(self, request, specs: dict):
        selected = {getattr(item, "originalname", item.name) for item in request.session.items
                    if getattr(item, "module", None) is request.module}  # fmt: skip
        self._runs: dict[str, tuple[subprocess.Popen, float, dict]] = {}
        self._done: dict[str, subprocess.CompletedProcess] = {}
        for name, spec in specs.items():
            if name in selected:
                kwargs = dict(spec())
                timeout = kwargs.pop("timeout", 900)
                extra = kwargs.pop("extra", {})
                proc = subprocess.Popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
                self._runs[name] = (proc, time.monotonic() + timeout, extra)

    def result(self, name: str) -> subprocess.CompletedProcess:
        """The finished run of test ``name`` (``subprocess.TimeoutExpired`` past its timeout, as ``subprocess.run``)."""
        if name not in self._done:
            proc, deadline, _ = self._runs[name]
            try:
                out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
            self._done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        return self._done[name]

    def extra(self, name: str) -> dict:
        """What the run's spec returned under ``extra`` (e.g. its project folder)."""
        return self._runs[name][2]

    def close(self) -> None:
        for proc, _, _ in self._runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
