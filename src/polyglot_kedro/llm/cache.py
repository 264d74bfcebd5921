"""A persistent, crash-safe cache of finished chat completions.

One SQLite file in WAL mode: every result is committed the moment it
arrives, so a run killed with ``kill -9`` keeps everything it finished, and
several threads or processes may write at once (SQLite serialises writers;
WAL lets readers go on meanwhile). Only successes are stored: a failed item is
simply absent and is sent again on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
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
    """SQLite-backed map ``cache_key -> CachedCompletion``; one connection per thread."""

    def __init__(self, directory: str | Path, *, filename: str = "completions.sqlite"):
        """Open (or create) the cache.

        Args:
            directory: folder of the cache file (created if missing).
            filename: the SQLite file's name inside ``directory``.
        """
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / filename
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: autocommit; every put is its own durable transaction.
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> CachedCompletion | None:
        """The stored completion for ``key``, or None."""
        row = self._connect().execute(
            "SELECT text, prompt_tokens, completion_tokens, model FROM completions WHERE cache_key = ?", (key,)
        ).fetchone()
        return CachedCompletion(*row) if row else None

    def get_many(self, keys: list[str]) -> dict[str, CachedCompletion]:
        """Stored completions for those of ``keys`` that are present."""
        out: dict[str, CachedCompletion] = {}
        conn = self._connect()
        unique = list(dict.fromkeys(keys))
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
        self._connect().execute(
            "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?)",
            (key, value.text, int(value.prompt_tokens), int(value.completion_tokens), value.model, time.time()),
        )

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def __repr__(self) -> str:
        return f"CompletionCache({str(self.path)!r})"
