"""One runner at a time for a periodic job, across processes: the voice dialer must not count free lines
in two processes at once (both would fill the same lines).

On PostgreSQL a session-level advisory lock on a connection of its own, held for the run (a process that
dies loses its connection and so the lock). On SQLite, which only one machine can use, an exclusive
`flock` on a file beside the database. An in-memory database falls back to a lock in this process.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from backend.app.db import get_engine

_local_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock."""
    return int.from_bytes(hashlib.sha256(f"careloop:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def single_runner(name: str) -> Iterator[bool]:
    """Yields True when this caller holds the lock for `name` (run the job), False when another holds it
    (skip this run). Never waits."""
    engine = get_engine()
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            key = advisory_key(name)
            held = bool(connection.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
        return
    database = engine.url.database
    if database and database != ":memory:":
        descriptor = os.open(f"{database}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)
        return
    with _guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    if not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
