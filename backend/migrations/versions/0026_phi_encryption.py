"""Encrypt the PHI still plain at rest: names, birth dates, message texts, answers, case texts and notes,
diagnosis texts, attachment file names, conversation state, voice transcripts, task notes. Adds the plain
derivatives queries need (birth year; blind-indexed name tokens) and converts every existing row.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 14:00:00
"""

import json
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, encryption kind, the plain type it had)
COLUMNS: tuple[tuple[str, str, str, sa.types.TypeEngine[Any]], ...] = (
    ("patients", "name", "patient_name", sa.String(200)),
    ("patients", "birth_date", "birth_date", sa.Date()),
    ("feedback_attachments", "filename", "case_attachment_filename", sa.String(255)),
    ("messages", "text", "message_text", sa.Text()),
    ("feedback_cases", "text", "case_text", sa.Text()),
    ("feedback_cases", "summary", "case_summary", sa.Text()),
    ("feedback_cases", "notice_draft", "case_notice_draft", sa.Text()),
    ("feedback_handling_records", "text", "case_record_text", sa.Text()),
    ("missed_escalations", "note", "missed_escalation_note", sa.Text()),
    ("spot_check_items", "note", "spot_check_note", sa.Text()),
    # JSON columns keep their type and hold the token as a JSON string (models.base.EncryptedJSON)
    ("conversations", "state", "conversation_state", sa.JSON()),
    ("encounters", "diagnoses", "diagnoses", sa.JSON()),
    ("questionnaire_responses", "answers", "questionnaire_answers", sa.JSON()),
    ("voice_calls", "transcripts", "voice_transcripts", sa.JSON()),
    ("task_events", "detail", "task_event_detail", sa.JSON()),  # staff notes on tasks
)
# (table, column, NOT NULL): the columns whose type becomes Text. SQLite can only change a type by copying
# the table, and copying `patients` fails with foreign keys on once any row points at it; so the column is
# replaced instead (add, fill, drop, rename: plain ALTER TABLE on SQLite >= 3.35 and PostgreSQL alike).
RETYPED = (
    ("patients", "name", True),
    ("patients", "birth_date", False),
    ("feedback_attachments", "filename", True),
)
CHUNK = 500


def _chunks(
    bind: sa.Connection, table: str, column: str, kind: sa.types.TypeEngine[Any]
) -> Iterator[list[Any]]:
    """The table's (id, value) rows in id order, a chunk at a time (a large messages table never sits in
    memory whole)."""
    t = sa.table(table, sa.column("id", sa.Integer), sa.column(column, kind))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(t.c.id, t.c[column])
            .where(t.c.id > last, t.c[column].is_not(None))
            .order_by(t.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1][0]


def _rewrite(
    bind: sa.Connection, table: str, source: str, target: str, kind: sa.types.TypeEngine[Any], change: Any
) -> None:
    """target := change(source) on every row; JSON reads and writes through the JSON type (a JSON null is
    SQL-not-null and stays a JSON null)."""
    typed = sa.JSON() if isinstance(kind, sa.JSON) else sa.Text()
    t = sa.table(table, sa.column("id", sa.Integer), sa.column(target, typed))
    statement = sa.update(t).where(t.c.id == sa.bindparam("row_id")).values({target: sa.bindparam("value")})
    for rows in _chunks(bind, table, source, typed):
        bind.execute(statement, [{"row_id": row_id, "value": change(value)} for row_id, value in rows])


def _add_column(bind: sa.Connection, table: str, column: str, sql_type: str, not_null: bool) -> None:
    # SQLite adds a NOT NULL column only with a default; PostgreSQL's is dropped again (the models have none)
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}" + (" NOT NULL DEFAULT ''" if not_null else "")
    )
    if not_null and bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT")


def _replace_column(table: str, column: str) -> None:
    """Swap in `<column>_new` (already filled) for `column`."""
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {column}_new TO {column}")


def upgrade() -> None:
    from backend.security.crypto import current_cipher
    from backend.security.identifiers import name_tokens

    bind = op.get_bind()
    cipher = current_cipher()

    op.drop_index("ix_patients_name", table_name="patients")
    op.drop_index("ix_patients_birth_date", table_name="patients")
    op.add_column("patients", sa.Column("birth_year", sa.SmallInteger(), nullable=True))
    op.create_index("ix_patients_birth_year", "patients", ["birth_year"])
    op.create_table(
        "patient_name_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_name_tokens_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_name_tokens")),
    )
    op.create_index("ix_patient_name_tokens_patient_id", "patient_name_tokens", ["patient_id"])
    op.create_index("ix_patient_name_tokens_token", "patient_name_tokens", ["token", "patient_id"])

    # derivatives first, from the plain values
    patients = sa.table("patients", sa.column("id", sa.Integer), sa.column("birth_year", sa.SmallInteger))
    tokens = sa.table(
        "patient_name_tokens", sa.column("patient_id", sa.Integer), sa.column("token", sa.String)
    )
    for rows in _chunks(bind, "patients", "birth_date", sa.Text()):
        bind.execute(
            sa.update(patients)
            .where(patients.c.id == sa.bindparam("row_id"))
            .values(birth_year=sa.bindparam("year")),
            [{"row_id": row_id, "year": date.fromisoformat(str(value)[:10]).year} for row_id, value in rows],
        )
    for rows in _chunks(bind, "patients", "name", sa.Text()):
        found = [
            {"patient_id": row_id, "token": index}
            for row_id, value in rows
            for index in sorted({cipher.blind_index("patient_name", t) for t in name_tokens(value)})
        ]
        if found:
            bind.execute(sa.insert(tokens), found)

    for table, column, not_null in RETYPED:
        _add_column(bind, table, f"{column}_new", "TEXT", not_null)
    for table, column, kind, plain in COLUMNS:
        retyped = any(t == table and c == column for t, c, _ in RETYPED)
        if isinstance(plain, sa.JSON):
            # the document's own JSON text, encrypted, stored as a JSON string
            _rewrite(
                bind,
                table,
                column,
                column,
                plain,
                lambda v, k=kind: cipher.encrypt(k, json.dumps(v, ensure_ascii=False)),
            )
        elif isinstance(plain, sa.Date):
            _rewrite(
                bind, table, column, f"{column}_new", plain, lambda v, k=kind: cipher.encrypt(k, str(v)[:10])
            )
        else:
            _rewrite(
                bind,
                table,
                column,
                f"{column}_new" if retyped else column,
                plain,
                lambda v, k=kind: cipher.encrypt(k, v),
            )
    for table, column, _not_null in RETYPED:
        _replace_column(table, column)


def downgrade() -> None:
    from backend.security.crypto import current_cipher

    bind = op.get_bind()
    cipher = current_cipher()
    plain_types = {(t, c): p for t, c, _k, p in COLUMNS}
    for table, column, not_null in RETYPED:
        _add_column(
            bind, table, f"{column}_new", plain_types[(table, column)].compile(dialect=bind.dialect), not_null
        )
    for table, column, kind, plain in COLUMNS:
        retyped = any(t == table and c == column for t, c, _ in RETYPED)
        if isinstance(plain, sa.JSON):
            _rewrite(bind, table, column, column, plain, lambda v, k=kind: json.loads(cipher.decrypt(k, v)))
        elif isinstance(plain, sa.Date):
            _rewrite(bind, table, column, f"{column}_new", sa.Text(), lambda v, k=kind: cipher.decrypt(k, v))
        else:
            _rewrite(
                bind,
                table,
                column,
                f"{column}_new" if retyped else column,
                plain,
                lambda v, k=kind: cipher.decrypt(k, v),
            )
    for table, column, _not_null in RETYPED:
        _replace_column(table, column)
    op.drop_table("patient_name_tokens")
    op.drop_index("ix_patients_birth_year", table_name="patients")
    op.execute("ALTER TABLE patients DROP COLUMN birth_year")
    op.create_index("ix_patients_name", "patients", ["name"])
    op.create_index("ix_patients_birth_date", "patients", ["birth_date"])
