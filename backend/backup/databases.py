"""Dumping and restoring the database: PostgreSQL with pg_dump/pg_restore (custom format) from one
snapshot, SQLite with its online backup API; each reports the schema revision and every table's rows."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from backend.backup.errors import BackupError, TargetNotEmpty

POSTGRES = "postgresql"
SQLITE = "sqlite"
PG_TOOLS_HINT = "install PostgreSQL's client tools (Debian: apt-get install postgresql-client)"


@dataclass(frozen=True)
class Dumped:
    """What a dump holds: the database kind, the schema revision and the rows of every table."""

    kind: str
    revision: str | None
    rows: dict[str, int]


def kind_of(url: str) -> str:
    backend = sa.make_url(url).get_backend_name()
    if backend not in (POSTGRES, SQLITE):
        raise BackupError(f"backups support PostgreSQL and SQLite, not {backend}")
    return backend


def part_name(kind: str) -> str:
    return "database.pgdump" if kind == POSTGRES else "database.sqlite3"


def count_rows(connection: sa.Connection) -> tuple[str | None, dict[str, int]]:
    """The schema revision and every table's row count, read in the connection's transaction."""
    names = sorted(sa.inspect(connection).get_table_names())
    rows = {
        name: int(connection.scalar(sa.select(sa.func.count()).select_from(sa.table(name))) or 0)
        for name in names
    }
    revision = None
    if "alembic_version" in names:
        revision = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    return revision, rows


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: {PG_TOOLS_HINT}")
    return found


def _libpq_env(url: str) -> dict[str, str]:
    """The connection as libpq's environment: the password never appears on a command line (ps)."""
    parsed = sa.make_url(url)
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", str(parsed.port) if parsed.port else None),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
        ("PGSSLMODE", parsed.query.get("sslmode")),
    ):
        if isinstance(value, str) and value:
            env[name] = value
    return env


def _run(command: list[str], url: str) -> None:
    done = subprocess.run(command, env=_libpq_env(url), capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def dump(url: str, target: Path) -> Dumped:
    """Write the database to `target` and describe what was written."""
    kind = kind_of(url)
    return _dump_postgres(url, target) if kind == POSTGRES else _dump_sqlite(url, target)


def _dump_postgres(url: str, target: Path) -> Dumped:
    pg_dump = _tool("pg_dump")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        connection = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with connection, connection.begin():
            # pg_dump reads the snapshot this transaction exported, so the counts in the manifest are
            # those of the dump even while the server keeps writing
            snapshot = connection.scalar(sa.text("SELECT pg_export_snapshot()"))
            revision, rows = count_rows(connection)
            _run([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={target}"], url)
    finally:
        engine.dispose()
    return Dumped(POSTGRES, revision, rows)


def _sqlite_path(url: str) -> Path:
    database = sa.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _dump_sqlite(url: str, target: Path) -> Dumped:
    source_path = _sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"no SQLite database at {source_path}")
    # the online backup API copies a consistent image while the server keeps running
    with (
        closing(sqlite3.connect(source_path, timeout=60)) as source,
        closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)
    engine = sa.create_engine(f"sqlite:///{target}", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            revision, rows = count_rows(connection)
    finally:
        engine.dispose()
    return Dumped(SQLITE, revision, rows)


def check_empty(url: str) -> None:
    """Refuse a target that holds any table: a restore never mixes with, or replaces, existing data."""
    kind = kind_of(url)
    if kind == SQLITE:
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return
        with closing(sqlite3.connect(path)) as connection:
            tables = [
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
    else:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                tables = list(
                    connection.scalars(
                        sa.text(
                            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
                            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                        )
                    )
                )
        except sa.exc.OperationalError as exc:
            raise BackupError(
                f"cannot reach the target database ({exc.orig}); create an empty one first (createdb)"
            ) from exc
        finally:
            engine.dispose()
    if tables:
        shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
        raise TargetNotEmpty(
            f"the target database is not empty ({len(tables)} tables: {shown}); "
            "restore only into a new, empty database"
        )


def restore(url: str, source: Path) -> None:
    """Load a dump into the (checked empty) target; a failure leaves it as it was."""
    if kind_of(url) == POSTGRES:
        pg_restore = _tool("pg_restore")
        database = sa.make_url(url).database or ""
        command = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        _run([*command, f"--dbname={database}", str(source)], url)
        return
    target = _sqlite_path(url)
    with closing(sqlite3.connect(source)) as staged:
        verdict = staged.execute("PRAGMA integrity_check").fetchone()
    if not verdict or verdict[0] != "ok":
        raise BackupError(f"the database in the archive fails SQLite's integrity check: {verdict}")
    target.parent.mkdir(parents=True, exist_ok=True)
    placing = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(source, placing)
    with placing.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(placing, target)  # the database appears whole or not at all


def rows_after_restore(url: str) -> tuple[str | None, dict[str, int]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return count_rows(connection)
    finally:
        engine.dispose()
