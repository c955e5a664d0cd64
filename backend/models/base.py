"""Declarative base and the column types every model uses: UTC datetimes, encrypted text/JSON/dates, enums."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Session

from backend.security.crypto import DecryptionError, current_cipher

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (no zone support) and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; CareLoop stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EncryptedText(sa.TypeDecorator[str]):
    """AES-GCM at rest; `kind` is bound in so a value cannot be moved to another column."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    # The empty string is stored as itself: its token would say no more (a ciphertext's length gives an
    # empty plaintext away), and SQL can then tell an emptied value (a message blanked by retention, a
    # media-only message) from a filled one, which a fresh nonce per token otherwise hides.
    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or value == "":
            return value
        return current_cipher().encrypt(self.kind, value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or value == "":
            return value
        return current_cipher().decrypt(self.kind, value)


class EncryptedJSON(sa.TypeDecorator[Any]):
    """A JSON document encrypted whole (answers, diagnoses, transcripts, conversation state): nothing in it
    can be filtered in SQL, so whatever a query needs is kept beside it as a plain derivative. The column
    stays JSON and holds the token as a JSON string: encrypting needed no change of column type (which
    SQLite makes by copying the table, refused while rows point at it)."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return current_cipher().encrypt(
            self.kind, json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        )

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):  # a document stored plain, never encrypted: refused, not misread
            raise DecryptionError(f"{self.kind} value is not encrypted")
        return json.loads(current_cipher().decrypt(self.kind, value))


class EncryptedDate(sa.TypeDecorator[date]):
    """A date encrypted as its ISO text (a full birth date); its year is kept plain for audiences."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: date | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else current_cipher().encrypt(self.kind, value.isoformat())

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> date | None:
        return None if value is None else date.fromisoformat(current_cipher().decrypt(self.kind, value))


def enum_column(enum: type[StrEnum], length: int = 32, **kwargs: Any) -> sa.Enum:
    """Enums stored as their string values (portable; no native PostgreSQL enum types to migrate): a
    VARCHAR of `length`, so a String column of that length becomes an enum with no schema change."""
    return sa.Enum(
        enum,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        **kwargs,
    )


def among(
    session: Session, column: Any, values: Sequence[Any], item_type: Any = sa.Integer
) -> sa.ColumnElement[bool]:
    """`column IN values`, sent to PostgreSQL as one array parameter (`= ANY(...)`). psycopg parses every
    placeholder of an IN list: 5,000 ids cost about 0.1 s of parsing a statement, most of a 30,000-patient
    gate preview (bench/admin.py). SQLite gets the plain IN list."""
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(item_type)))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def pairs_among(
    session: Session, first: Any, second: Any, pairs: Iterable[tuple[str, str]]
) -> sa.ColumnElement[bool]:
    """`(first, second) IN pairs`, grouped by the first (a file or a feed has one authority, mostly). On
    PostgreSQL each group's values go as one array parameter (a thousand bound parameters cost psycopg
    ~30 ms a query to prepare), read through `IN (SELECT unnest(...))`: with `= ANY(array)` the plan
    PostgreSQL settles on for a prepared statement (psycopg prepares it after five runs) searched the
    (first, second) index by the first column alone and compared every row of the authority with the whole
    array, 0.3 s a query for 1,000 keys among 50,000 identifiers."""
    groups: dict[str, list[str]] = {}
    for a, b in pairs:
        groups.setdefault(a, []).append(b)
    postgres = session.get_bind().dialect.name == "postgresql"

    def among_values(values: list[str]) -> sa.ColumnElement[bool]:
        if not postgres:
            return second.in_(values)  # type: ignore[no-any-return]
        array = sa.bindparam(None, values, type_=postgresql.ARRAY(sa.String))
        return second.in_(sa.select(sa.func.unnest(array)).scalar_subquery())  # type: ignore[no-any-return]

    return sa.or_(*(sa.and_(first == a, among_values(values)) for a, values in groups.items()))
