"""The LLM cache as two grid jobs use it: two processes over one cache folder lose no item and pay for none twice."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from polyglot_kedro.llm.cache import CachedCompletion, CompletionCache

from ..llm_server import LLMTestServer

CHILD = textwrap.dedent(
    """
    import json, sys
    from polyglot_kedro.llm import ChatRequest, build_client
    cfg, first, last = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    reqs = [ChatRequest(key=f"q{i}", messages=[{"role": "user", "content": f"q {i}"}]) for i in range(first, last)]
    results = build_client(cfg, stage="job").run(reqs)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    print(json.dumps({"sent": sum(not r.cached for r in results), "cached": sum(r.cached for r in results)}))
    """
)


def _jobs(tmp_path: Path, cfg: dict, ranges: list[tuple[int, int]]) -> list[dict]:
    """Run one child process per range at once (like two array tasks on two nodes); their ledgers."""
    script = tmp_path / "job.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OPENAI_API_KEY="sk-test")
    procs = [subprocess.Popen([sys.executable, str(script), json.dumps(cfg), str(a), str(b)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a, b in ranges]  # fmt: skip
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_two_processes_over_one_cache_lose_nothing_and_pay_once(tmp_path):
    n = 60
    with LLMTestServer(latency_s=0.02) as server:
        cfg = {"backend": "openai", "model": "test-model", "base_url": server.base_url, "max_concurrency": 6,
               "max_retries": 2, "timeout_s": 10,
               "cache_dir": str(tmp_path / "shared_cache")}  # fmt: skip
        # two jobs at once, each with its own items, many writers interleaving
        first = _jobs(tmp_path, cfg, [(0, n // 2), (n // 2, n)])
        assert [f["sent"] for f in first] == [n // 2, n // 2]
        # both jobs again over all items, at once: everything comes from the cache
        again = _jobs(tmp_path, cfg, [(0, n), (0, n)])
        assert [a["cached"] for a in again] == [n, n] and [a["sent"] for a in again] == [0, 0]
        counts = dict(server.counts)
    assert len(counts) == n and set(counts.values()) == {1}  # every item paid exactly once
    cache = CompletionCache(cfg["cache_dir"])
    assert len(cache) == n
    with contextlib.closing(sqlite3.connect(cache.path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no WAL shared memory
    assert not list(Path(cfg["cache_dir"]).glob("*-shm"))


def test_a_wal_cache_of_an_older_version_is_converted_and_kept(tmp_path):
    path = tmp_path / "completions.sqlite"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:  # closed: WAL needs no other user
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE completions (cache_key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER "
                     "NOT NULL, completion_tokens INTEGER NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)")  # fmt: skip
        conn.execute("INSERT INTO completions VALUES ('k', 'old answer', 1, 2, 'm', 0)")
    cache = CompletionCache(tmp_path)
    assert cache.get("k") == CachedCompletion("old answer", 1, 2, "m")
    cache.put("k2", CachedCompletion("new", 3, 4, "m"))
    assert len(cache) == 2
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_filesystem_without_locks_is_a_clear_error(tmp_path, monkeypatch):
    import polyglot_kedro.llm.cache as cache_mod

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(cache_mod.fcntl, "lockf", no_locks)
    with pytest.raises(OSError, match="does not support file locks"):
        CompletionCache(tmp_path / "nfs_without_lockd")
