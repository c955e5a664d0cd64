"""Many rows into one table in one statement: on PostgreSQL a COPY, ids taken from the table's sequence
beforehand; on SQLite an executemany. For the batched verbs (a file's chunk of visits), where an ORM flush
or an executemany costs a statement per row on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def new_ids(session: Session, table: sa.Table, count: int) -> list[int]:
    """`count` ids from the table's id sequence (PostgreSQL), in one query: rows inserted with them need
    no RETURNING, so nothing depends on the order the server returns rows in."""
    query = sa.text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")
    return list(session.scalars(query, {"table": table.name, "n": count}))


def insert_rows(session: Session, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all name the same columns (Python-side defaults are not applied: give them). On
    PostgreSQL through COPY in the session's transaction: psycopg formats the rows in C, where binding one
    array a column spent more of an import's time in Python than PostgreSQL spent inserting."""
    if not rows:
        return
    if not postgres(session):
        session.execute(table.insert(), list(rows))
        return
    dialect = session.get_bind().dialect
    names = list(rows[0])
    converters = [_to_copy(table.c[name].type, dialect) for name in names]
    pairs = list(zip(names, converters, strict=True))
    driver = session.connection().connection.driver_connection
    assert driver is not None
    # Built from the table's own column names, never from input.
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([convert(row[name]) for name, convert in pairs])


def _to_copy(column_type: Any, dialect: sa.Dialect) -> Callable[[Any], Any]:
    """A column's value as COPY's text form expects it: as SQLAlchemy would bind it (encrypted, in UTC,
    JSON as text, an enum by its value)."""
    if isinstance(column_type, sa.TypeDecorator):
        process, impl = column_type.process_bind_param, _to_copy(column_type.impl_instance, dialect)
        return lambda value: impl(process(value, dialect))
    if isinstance(column_type, sa.JSON):
        return lambda value: None if value is None else json.dumps(value)  # as SQLAlchemy's JSON does
    if isinstance(column_type, sa.Enum):
        return lambda value: value.value if isinstance(value, Enum) else value
    return _same


def _same(value: Any) -> Any:
    return value
