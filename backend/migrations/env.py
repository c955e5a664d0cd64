"""Alembic environment: migrates the database named by the settings (or a URL given by the caller)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from backend.app.db import make_engine
from backend.models import Base

config = context.config
url: str | None = config.attributes.get("database_url")
if url is None:
    from backend.app.settings import get_settings

    url = get_settings().database_url

connectable = config.attributes.get("connection")


def run() -> None:
    if connectable is not None:
        _migrate(connectable)
        return
    engine = make_engine(str(url), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()


def _migrate(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
