"""Many rows into one table in one statement: on PostgreSQL one array per column through `unnest()`, ids
taken from the table's sequence beforehand; on SQLite an executemany. For the batched verbs (a file's
chunk of visits), where an ORM flush or an executemany costs a statement per row on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    """Insert rows that all name the same columns (Python-side defaults are not applied: give them)."""
    if not rows:
        return
    if not postgres(session):
        session.execute(table.insert(), list(rows))
        return
    dialect = session.get_bind().dialect
    names = list(rows[0])
    arrays, selected, params = [], [], {}
    for n, name in enumerate(names):
        column_type = table.c[name].type
        values = [row[name] for row in rows]
        if isinstance(column_type, sa.TypeDecorator):  # encryption, UTC times: as a bound value would be
            values = [column_type.process_bind_param(v, dialect) for v in values]
            column_type = column_type.impl_instance
        if isinstance(column_type, sa.JSON):
            values = [None if v is None else json.dumps(v) for v in values]  # as SQLAlchemy's JSON does
            arrays.append(f"CAST(:p{n} AS text[])")
            selected.append(f"CAST(u.c{n} AS json)")
        else:
            if isinstance(column_type, sa.Enum):
                values = [v.value if isinstance(v, Enum) else v for v in values]
                array = "text[]"
            else:
                array = f"{column_type.compile(dialect)}[]"
            arrays.append(f"CAST(:p{n} AS {array})")
            selected.append(f"u.c{n}")
        params[f"p{n}"] = values
    aliases = ", ".join(f"c{n}" for n in range(len(names)))
    # Built from the table's own column names and types, never from input.
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608
        f"SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)}) AS u({aliases})"
    )
    session.execute(sa.text(statement), params)
