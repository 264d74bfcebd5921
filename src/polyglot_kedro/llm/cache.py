"""A persistent, crash-safe cache of finished chat completions, safe on shared filesystems.

One SQLite file in rollback-journal mode (``journal_mode=DELETE``), and every
read and write holds an exclusive POSIX lock (``fcntl.lockf``) on a
``<file>.lock`` beside it, plus a thread lock inside the process. Why not WAL:
WAL keeps its index in shared memory (the ``-shm`` file, mmapped), which
processes on *different machines* cannot share, so on NFS/Lustre two jobs of
a SLURM grid on two nodes could corrupt the file. A rollback journal needs
only file locks, and the explicit whole-file lock makes every operation one
short critical section, which NFSv4 and Lustre (``flock``/``localflock``
mounts) honour. A filesystem without working locks fails loudly at open
(``ENOLCK``) instead of corrupting the cache (docs/CLUSTER.md).

Every result is committed the moment it arrives, so a run killed with
``kill -9`` keeps everything it finished; several threads, processes or nodes
may read and write at once. Only successes are stored: a failed item is simply
absent and is sent again on the next run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    cache_key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(model: str, messages: list[dict], sampling: dict[str, Any]) -> str:
    """Hash of what determines a completion: model name, messages, sampling parameters.

    The base URL is deliberately left out (the same model behind another URL
    gives the same answer), and so is the API key (it must never reach disk).

    Args:
        model: the endpoint's model name (or the in-process label).
        messages: OpenAI-style chat messages.
        sampling: temperature, top_p, seed, max_tokens, json_mode (and an
            attempt number for deliberate re-asks).

    Returns:
        A hex SHA-256 digest.
    """
    payload = json.dumps(
        {"model": model, "messages": messages, "sampling": sampling},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedCompletion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class CompletionCache:
    """SQLite-backed map ``cache_key -> CachedCompletion``; one connection per thread, one lock per operation."""

    def __init__(self, directory: str | Path, *, filename: str = "completions.sqlite"):
        """Open (or create) the cache.

        Args:
            directory: folder of the cache file (created if missing); may be on NFS/Lustre.
            filename: the SQLite file's name inside ``directory``.

        Raises:
            OSError: the filesystem does not support file locks (the cache would not be safe there).
        """
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / filename
        self.lock_path = self.directory / (filename + ".lock")
        self._local = threading.local()
        self._thread_lock = threading.Lock()  # POSIX locks are per process: threads need their own
        with self._locked() as conn:
            # A cache written by an older version in WAL mode is converted here, under the lock.
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute(_SCHEMA)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, with the process-wide and the cross-machine file lock held."""
        conn = self._connect()
        with self._thread_lock, open(self.lock_path, "a+b") as lock:
            try:
                fcntl.lockf(lock, fcntl.LOCK_EX)
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise OSError(exc.errno, f"{self.lock_path}: the filesystem does not support file locks; "
                                  "put the LLM cache (llm.cache_dir) on a filesystem that does") from exc  # fmt: skip
                raise
            try:
                yield conn
            finally:
                fcntl.lockf(lock, fcntl.LOCK_UN)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: autocommit; every put is its own durable transaction.
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA synchronous=FULL")  # the journal is synced before the commit returns
            self._local.conn = conn
        return conn

    def get(self, key: str) -> CachedCompletion | None:
        """The stored completion for ``key``, or None."""
        with self._locked() as conn:
            row = conn.execute(
                "SELECT text, prompt_tokens, completion_tokens, model FROM completions WHERE cache_key = ?", (key,)
            ).fetchone()
        return CachedCompletion(*row) if row else None

    def get_many(self, keys: list[str]) -> dict[str, CachedCompletion]:
        """Stored completions for those of ``keys`` that are present."""
        out: dict[str, CachedCompletion] = {}
        unique = list(dict.fromkeys(keys))
        with self._locked() as conn:
            for start in range(0, len(unique), 500):  # stay under SQLite's variable limit
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, *vals in conn.execute(
                    f"SELECT cache_key, text, prompt_tokens, completion_tokens, model FROM completions "
                    f"WHERE cache_key IN ({marks})",
                    chunk,
                ):
                    out[key] = CachedCompletion(*vals)
        return out

    def put(self, key: str, value: CachedCompletion) -> None:
        """Store a successful completion (committed before returning)."""
        with self._locked() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?)",
                (key, value.text, int(value.prompt_tokens), int(value.completion_tokens), value.model, time.time()),
            )

    def __len__(self) -> int:
        with self._locked() as conn:
            return conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def __repr__(self) -> str:
        return f"CompletionCache({str(self.path)!r})"
