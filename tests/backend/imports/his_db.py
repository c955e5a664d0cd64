"""A HIS-like second database for the pull tests: a patient table behind a view with Chinese column
names, in a SQLite file of its own or in a PostgreSQL database created (and dropped) for the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL

TABLE = """CREATE TABLE 病人信息 (
    序号 INTEGER PRIMARY KEY,
    病案号 VARCHAR(20) NOT NULL,
    病人名称 VARCHAR(50) NOT NULL,
    性别 VARCHAR(4),
    出生日期 DATE,
    联系电话 VARCHAR(20),
    更新时间 TIMESTAMP NOT NULL
)"""
VIEW = "CREATE VIEW v_患者 AS SELECT 病案号, 病人名称, 性别, 出生日期, 联系电话, 更新时间 FROM 病人信息"
QUERY = "SELECT * FROM v_患者 WHERE 更新时间 >= :since ORDER BY 更新时间, 病案号"
COLUMNS = {"name": "病人名称"}  # not a header the import knows by itself: the source's mapping names it

Row = tuple[str, str, str, date, str, datetime]


@contextmanager
def his_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty HIS database with the table and its view."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'his.db'}"
        _create(url)
        yield url
        return
    name = f"careloop_his_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        _create(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _create(url: str) -> None:
    engine = sa.create_engine(url)
    table = TABLE if url.startswith("sqlite") else TABLE.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")
    with engine.begin() as conn:
        conn.execute(sa.text(table))
        conn.execute(sa.text(VIEW))
    engine.dispose()


def write(url: str, rows: Sequence[Row]) -> None:
    """Insert or replace rows by 病案号 (as the HIS updates a patient: a new 更新时间)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for mrn, name, sex, born, phone, at in rows:
            conn.execute(sa.text("DELETE FROM 病人信息 WHERE 病案号 = :mrn"), {"mrn": mrn})
            conn.execute(
                sa.text(
                    "INSERT INTO 病人信息 (病案号, 病人名称, 性别, 出生日期, 联系电话, 更新时间)"
                    " VALUES (:mrn, :name, :sex, :born, :phone, :at)"
                ),
                {"mrn": mrn, "name": name, "sex": sex, "born": born, "phone": phone, "at": _at(url, at)},
            )
    engine.dispose()


def _at(url: str, at: datetime) -> object:
    # SQLite keeps times as the text the HIS wrote; PostgreSQL a timestamp
    return at.isoformat(sep=" ") if url.startswith("sqlite") else at
