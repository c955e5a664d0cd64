"""Writing a chunk of re-encrypted values back: one statement per chunk on PostgreSQL, one per row
elsewhere.

Each value is written only where the row still holds the token that was read (`WHERE value = old`): a
value the application rewrote meanwhile is already under the current key and is left alone. On
PostgreSQL the chunk goes as three arrays unnested into one `UPDATE … FROM unnest(…)`, which returns the
keys it changed; a round trip per row was what bounded rotation there (bench/rotation.py: the figures
are in bench/README.md). SQLite runs in the process, where a statement per row costs no round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from backend.security.rotation import EncryptedColumn


@dataclass(frozen=True)
class Renewal:
    key: int | str
    old: Any  # the token as read (text, a JSON string, or bytes)
    new: Any  # the same value under the current key


def write_back(session: Session, col: EncryptedColumn, renewals: list[Renewal]) -> int:
    """Write the renewals whose row still holds the old token; returns how many were written."""
    if not renewals:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _write_chunk_postgres(session, col, renewals)
    return _write_each(session, col, renewals)


def _write_each(session: Session, col: EncryptedColumn, renewals: list[Renewal]) -> int:
    t = col.raw_table()
    value = t.c[col.column]
    key = t.c[col.key]
    written = 0
    for renewal in renewals:
        comparison = (
            value.cast(sa.Text) == sa.cast(sa.literal(renewal.old, sa.JSON()), sa.Text)
            if col.json
            else value == renewal.old
        )
        result = session.execute(
            sa.update(t).where(key == renewal.key, comparison).values({col.column: renewal.new})
        )
        written += result.rowcount  # type: ignore[attr-defined]
    return written


def _write_chunk_postgres(session: Session, col: EncryptedColumn, renewals: list[Renewal]) -> int:
    preparer = session.get_bind().dialect.identifier_preparer
    table, column, key = (preparer.quote(name) for name in (col.table, col.column, col.key))
    key_array = "text[]" if col.text_key else "bigint[]"
    olds: list[Any]
    news: list[Any]
    if col.blob:
        value_array, stored, new_value = "bytea[]", f"t.{column}", "v.new"
        olds = [bytes(r.old) for r in renewals]
        news = [bytes(r.new) for r in renewals]
    elif col.json:
        # the column is json holding a JSON string; its text is what SQLAlchemy's serializer wrote
        value_array, stored, new_value = "text[]", f"t.{column}::text", "v.new::json"
        olds = [json.dumps(r.old) for r in renewals]
        news = [json.dumps(r.new) for r in renewals]
    else:
        value_array, stored, new_value = "text[]", f"t.{column}", "v.new"
        olds = [r.old for r in renewals]
        news = [r.new for r in renewals]
    # names come from the models' metadata (quoted above), values travel as bound arrays
    statement = sa.text(
        f"UPDATE {table} AS t SET {column} = {new_value} "  # noqa: S608
        f"FROM unnest(CAST(:keys AS {key_array}), CAST(:olds AS {value_array}), "
        f"CAST(:news AS {value_array})) AS v(key, old, new) "
        f"WHERE t.{key} = v.key AND {stored} = v.old RETURNING t.{key}"
    )
    keys = [str(r.key) if col.text_key else int(r.key) for r in renewals]
    return len(session.execute(statement, {"keys": keys, "olds": olds, "news": news}).all())
