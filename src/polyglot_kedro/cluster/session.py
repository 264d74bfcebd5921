"""One save version for every job of a grid run.

Kedro saves versioned datasets under the session id, a fresh timestamp per
``kedro run``; ``kedro run`` has ``--load-versions`` but no save version. The
grid's jobs therefore export ``POLYGLOT_GRID_RUN_ID`` (a Kedro version
string), and this session class, registered as ``SESSION_CLASS`` in
``settings.py``, uses it as the session id -- the save version of every
dataset the job writes. Downstream jobs pin their loads to the same id with
``--load-versions``, so a job never reads another grid run's outputs.
Without the variable it is Kedro's own session.
"""

from __future__ import annotations

import os
import re
from typing import Any

from kedro.framework.session import KedroSession

RUN_ID_ENV = "POLYGLOT_GRID_RUN_ID"
# kedro.io.core.VERSION_FORMAT as generate_timestamp() writes it (milliseconds, Z).
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")


def validate_run_id(run_id: str) -> str:
    """``run_id`` if it has Kedro's version format (e.g. ``2026-12-01T09.38.23.123Z``), else ValueError."""
    if not _VERSION_RE.match(run_id):
        raise ValueError(f"{RUN_ID_ENV}={run_id!r} is not a Kedro version string like 2026-12-01T09.38.23.123Z")
    return run_id


class GridSession(KedroSession):
    """``KedroSession`` whose id (= save version) is ``$POLYGLOT_GRID_RUN_ID`` when set."""

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> GridSession:  # noqa: D102 (KedroSession.create)
        session = super().create(*args, **kwargs)
        run_id = os.environ.get(RUN_ID_ENV)
        if run_id:
            session.session_id = validate_run_id(run_id)
            session._store["session_id"] = session.session_id  # what run() reads as the save version
        return session
