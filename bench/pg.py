"""A scratch PostgreSQL database for one bench run: created on 127.0.0.1:5432, dropped at the end."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REPO_ROOT = Path(__file__).resolve().parent.parent


def pg_connect(dbname: str = "postgres") -> Any:
    """An autocommit psycopg connection to `dbname` as the bench's superuser."""
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True, connect_timeout=10
    )


@contextlib.contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A fresh database; yields (DATABASE_URL, name) and drops it afterwards (also when the run fails)."""
    name = f"careloop_bench_{secrets.token_hex(4)}"
    with pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", name
    finally:
        with pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def migrated_database(env_for: Callable[[str], dict[str, str]]) -> Iterator[str]:
    """postgres_database, migrated by `careloop migrate` run with env_for(url); yields the URL."""
    with postgres_database() as (url, _name):
        subprocess.run(
            [sys.executable, "-m", "backend.app.cli", "migrate"],
            cwd=REPO_ROOT,
            env=env_for(url),
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield url
