"""Suite-wide settings and fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Offline and quiet everywhere: no Hub, no telemetry, no tokenizer threads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


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
