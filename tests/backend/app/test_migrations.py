"""Alembic owns the schema: it matches the models, and running it twice changes nothing."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from backend.app.migrate import alembic_config, upgrade
from backend.models import Base
from backend.security.crypto import current_cipher


def _schema(url: str) -> dict[str, list[tuple[str, str, bool]]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            table: [(c["name"], str(c["type"]), bool(c["nullable"])) for c in inspector.get_columns(table)]
            + [
                ("index:" + (i["name"] or ""), ",".join(str(c) for c in i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ]
            for table in sorted(inspector.get_table_names())
        }
    finally:
        engine.dispose()


def test_migrations_create_exactly_the_models_schema(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_running_migrations_twice_changes_nothing(database_url: str) -> None:
    before = _schema(database_url)
    assert "patients" in before and "audit_events" in before
    upgrade(database_url)
    upgrade(database_url)
    assert _schema(database_url) == before
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
        assert conn.scalars(sa.text("SELECT version_num FROM alembic_version")).all() == [head]
    engine.dispose()


def test_upgrade_keeps_existing_patients(database_url: str) -> None:
    """0002 adds a NOT NULL flag to patients: rows stored under 0001 must survive with the default."""
    command.downgrade(alembic_config(database_url), "0001")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO patients (mrn, mrn_bidx, name, sex, language, timezone, deceased, dispute,"
                " do_not_disturb, invalid_contact, created_at, updated_at) VALUES ('v1:x', 'b', 'Old',"
                " 'unknown', 'en', 'UTC', false, false, false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    upgrade(database_url)
    with engine.connect() as conn:
        name, flag = conn.execute(sa.text("SELECT name, frequent_visitor FROM patients")).one()
    # 0026 encrypted the name on the way
    assert (current_cipher().decrypt("patient_name", name), flag) == ("Old", False)
    engine.dispose()


def test_downgrade_to_base_and_up_again(database_url: str) -> None:
    before = _schema(database_url)
    command.downgrade(alembic_config(database_url), "base")
    assert set(_schema(database_url)) <= {"alembic_version"}
    upgrade(database_url)
    assert _schema(database_url) == before


def test_0014_replaces_openids_in_stored_wechat_event_ids_by_their_digest(database_url: str) -> None:
    from channels.wechat_inbound import event_id

    command.downgrade(alembic_config(database_url), "0013")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO conversations (channel, address, owner, created_at, last_message_at)"
                " VALUES ('wechat', 'bidx', 'bot', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        for pid in ("oFollower_1:1733300000:subscribe", "oFollower_1:1733300100:SCAN", "6054768590064713728"):
            conn.execute(
                sa.text(
                    "INSERT INTO messages (conversation_id, channel, direction, status,"
                    " provider_message_id, text, created_at)"
                    " VALUES (1, 'wechat', 'inbound', 'processed', :pid, '', CURRENT_TIMESTAMP)"
                ),
                {"pid": pid},
            )
    upgrade(database_url)
    with engine.connect() as conn:
        ids = conn.scalars(sa.text("SELECT provider_message_id FROM messages ORDER BY id")).all()
    engine.dispose()
    assert ids == [
        event_id("oFollower_1", "1733300000", "subscribe"),
        event_id("oFollower_1", "1733300100", "SCAN"),
        "6054768590064713728",  # a message's own MsgId stays
    ]


def test_0044_moves_each_role_into_the_link_table_and_back(database_url: str) -> None:
    """Up: each account's one role becomes its first row of staff_user_roles. Down: one role is kept, an
    administrative one first, so an admin with other roles stays an admin."""
    config = alembic_config(database_url)
    command.downgrade(config, "0043")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        for n, (username, role) in enumerate((("root", "admin"), ("head", "nurse"), ("doc", "doctor")), 1):
            conn.execute(
                sa.text(
                    "INSERT INTO staff_users (id, username, display_name, role, password_hash, language,"
                    " active, content_approver, created_at, version)"
                    " VALUES (:id, :u, :u, :r, 'x', 'en', true, false, CURRENT_TIMESTAMP, 1)"
                ),
                {"id": n, "u": username, "r": role},
            )
        # a row that cascades from staff_users: a table copy on SQLite would have deleted it
        conn.execute(
            sa.text(
                "INSERT INTO home_layouts (staff_id, widgets, updated_at) VALUES (2, '[]', CURRENT_TIMESTAMP)"
            )
        )
    command.upgrade(config, "0044")
    with engine.begin() as conn:
        held = conn.execute(
            sa.text("SELECT staff_id, role_key FROM staff_user_roles ORDER BY staff_id")
        ).all()
        assert [tuple(row) for row in held] == [(1, "admin"), (2, "nurse"), (3, "doctor")]
        assert conn.scalars(sa.text("SELECT staff_id FROM home_layouts")).all() == [2]
        # after the upgrade, accounts gain roles: the head nurse manages, root also covers a ward
        conn.execute(sa.text("INSERT INTO staff_user_roles VALUES (2, 'manager'), (1, 'nurse')"))
    command.downgrade(config, "0043")
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT username, role FROM staff_users ORDER BY id")).all()
    assert [tuple(row) for row in kept] == [("root", "admin"), ("head", "manager"), ("doc", "doctor")]
    upgrade(database_url)
    engine.dispose()
