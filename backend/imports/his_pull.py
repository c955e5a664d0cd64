"""Reading a read-only HIS source: its SELECT run from the watermark in a read-only transaction, the rows
streamed into a stored CSV file that the import's dry run then reads like an uploaded one (so the same
column matching, row rules and decisions hold), and the next watermark taken from that file and the dry
run's plan. Nothing here writes to CareLoop's records."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from backend.imports import storage
from backend.imports.plan import Action, parse_line
from backend.imports.readers import ReadError, open_table
from backend.work.runs import WorkError

QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|«[^»]*»|“[^”]*”")
FETCH = 1000  # rows fetched (and CSV lines written) at a time
SINCE_FLOOR = datetime(1900, 1, 1)  # the first pull's watermark: every row


def engine_for(url: str, connect_timeout: int) -> sa.Engine:
    """An engine with no pool (a pull holds one connection for its query and lets it go)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise WorkError("the HIS source's address is not a database URL") from None
    args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        args["connect_timeout"] = connect_timeout
    elif parsed.get_backend_name() == "sqlite":
        args["timeout"] = connect_timeout
    try:
        return sa.create_engine(parsed, poolclass=NullPool, connect_args=args)
    except (ArgumentError, NoSuchModuleError):
        raise WorkError("the HIS source's database driver is not installed") from None


def shown_url(url: str) -> str:
    """The address with its password hidden, for the page."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "?"


def _read_only(connection: sa.Connection) -> None:
    """The HIS is read, never written, whatever the configured query says."""
    backend = connection.dialect.name
    if backend == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif backend == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")


def _since(connection: sa.Connection, query: str, since: datetime) -> tuple[sa.TextClause, object]:
    """The statement and its watermark value. SQLite keeps times as text, as the HIS wrote them
    ('2026-01-02 10:00:00'): the watermark is compared as the same text (SQLAlchemy's DateTime would
    add '.000000', and the row written at the watermark itself would then sort before it)."""
    if connection.dialect.name == "sqlite":
        return sa.text(query), since.isoformat(sep=" ")
    return sa.text(query).bindparams(sa.bindparam("since", type_=sa.DateTime())), since


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time | Decimal):
        return str(value)
    if isinstance(value, bytes):
        raise WorkError("the HIS source returned bytes, not text: convert the column in the query")
    return str(value)


def _csv_lines(header: list[str], rows: Iterator[tuple[object, ...]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield buffer.getvalue().encode("utf-8")
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(value) for value in row])
        yield buffer.getvalue().encode("utf-8")


def pull(
    url: str,
    query: str,
    since: datetime | None,
    *,
    connect_timeout: int,
    on_rows: Callable[[int], None] = lambda _n: None,
) -> tuple[str, int]:
    """Run the source's query from `since` and store its rows as a CSV file: (sha256, rows); `on_rows` is
    told the count after each batch read (the job's bar). Raises WorkError with a message safe for staff
    (never a row's value) when the source cannot be read."""
    engine = engine_for(url, connect_timeout)
    since = since or SINCE_FLOOR
    counted = 0
    try:
        with engine.connect() as connection:
            _read_only(connection)
            statement, value = _since(connection, query, since)
            try:
                result = connection.execution_options(stream_results=True).execute(
                    statement, {"since": value}
                )
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                raise WorkError("the HIS source refused the query: " + _first_line(exc)) from None
            header = [str(name) for name in result.keys()]  # noqa: SIM118 (a Result, not a dict)

            def rows() -> Iterator[tuple[object, ...]]:
                nonlocal counted
                while batch := result.fetchmany(FETCH):
                    counted += len(batch)
                    on_rows(counted)
                    yield from (tuple(row) for row in batch)

            sha, _size = storage.store(_csv_lines(header, rows()))
    except WorkError:
        raise
    except storage.TooLarge:
        raise WorkError("the HIS source returned more than an import may hold: narrow the query") from None
    except (DBAPIError, OSError) as exc:
        raise WorkError("the HIS source could not be reached: " + _first_line(exc)) from None
    except SQLAlchemyError as exc:
        raise WorkError("the HIS source refused the query: " + _first_line(exc)) from None
    finally:
        engine.dispose()
    return sha, counted


def _first_line(exc: BaseException) -> str:
    """The driver's reason without the statement, its parameters or anything it quotes: a cast error
    quotes the row's value ('invalid input syntax for type date: "王秀英"'), and the reason is shown to
    staff and kept on the source."""
    origin = getattr(exc, "orig", None) or exc
    text = str(origin).strip()
    if not text:
        return type(origin).__name__
    return QUOTED.sub("…", text.splitlines()[0])[:200]


def parse_mark(value: str) -> datetime | None:
    """An updated-at as the pulled file holds it (ISO, the HIS's own clock, no zone)."""
    try:
        mark = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return mark.replace(tzinfo=None)


def next_watermark(file: str, plan: Path, column: str, current: str | None) -> str | None:
    """Where the next pull starts: after every row of this one, or, if rows were held with problems, at
    the earliest of them (the query reads `>= :since`, so a held row comes back until it applies; the
    rows after it come back too and are found unchanged). A file without the column, or without rows,
    leaves the watermark where it was."""
    try:
        table = open_table(storage.file_path(file), "utf-8")
    except (ReadError, ValueError):
        return current
    if column not in table.headers:
        table.rows.close()  # type: ignore[attr-defined]
        raise WorkError(f"the pulled rows have no column {column!r} (the watermark column)")
    index = table.headers.index(column)
    latest: datetime | None = None
    held: datetime | None = None
    with plan.open(encoding="utf-8") as lines:
        for row, line in zip(table.rows, lines, strict=False):
            cell = row.cells[index] if index < len(row.cells) else None
            mark = parse_mark(str(cell)) if cell not in (None, "") else None
            if mark is None:
                continue
            latest = mark if latest is None or mark > latest else latest
            if parse_line(line)[1] is Action.PROBLEM:
                held = mark if held is None or mark < held else held
    chosen = held if held is not None else latest
    if chosen is None:
        return current
    if current is not None and (old := parse_mark(current)) is not None and chosen < old:
        return current  # never backwards
    return chosen.isoformat(sep=" ")
