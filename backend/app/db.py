"""Engine and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, sqlite_write_lock: bool = True, **kwargs: Any) -> sa.Engine:
    """`sqlite_write_lock=False` gives an engine whose SQLite reads autocommit (test observers, tools)."""
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        if sqlite_write_lock:

            @event.listens_for(engine, "begin")
            def _begin_immediate(connection: sa.Connection) -> None:
                # Take the write lock when the transaction starts: a read that later writes cannot
                # then fail with SQLITE_BUSY against another writer, and turns of one conversation
                # run one after another.
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


_engines: dict[str, sa.Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def engine_for(url: str) -> sa.Engine:
    """One engine (one pool) per URL per process."""
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def _forget_parent_connections() -> None:
    """In a forked child (an RQ job): new pools, without closing the parent's connections. A pooled
    connection shared across a fork would have both processes talking on one socket (seen as
    'prepared statement already exists' once the worker parent had read the database while warming up).
    No lock here: another thread of the parent may have held it at the fork."""
    for engine in list(_engines.values()):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()


def get_engine() -> sa.Engine:
    from backend.app.settings import get_settings

    return engine_for(get_settings().database_url)


def session_factory() -> sessionmaker[Session]:
    """One sessionmaker per engine: each sessionmaker makes its own Session subclass, whose event
    dispatch SQLAlchemy builds anew (about 1 ms a request when made per call)."""
    engine = get_engine()
    url = str(engine.url)
    with _lock:
        factory = _factories.get(url)
        if factory is None or factory.kw.get("bind") is not engine:
            factory = _factories[url] = sessionmaker(bind=engine, expire_on_commit=False)
        return factory


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
