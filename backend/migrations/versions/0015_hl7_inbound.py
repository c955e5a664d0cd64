"""HL7 v2 inbound: every received message kept (sealed) with its outcome; outside patient identifiers
(encrypted, blind-indexed) and visit numbers; hospital code mappings, pending until an admin maps them;
merges of two patient records into one

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 08:00:00

The message log's unique key is (MSH-3, MSH-4, MSH-10, content hash without MSH-7): a resend of the
same message finds its row and is acknowledged again; the same key with other content gets a row of
its own, held for review.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "code_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("department", "ward", "doctor", name="codekind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=180), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_mappings")),
        sa.UniqueConstraint("kind", "source", "code", name="uq_code_mappings_key"),
    )
    op.create_table(
        "patient_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("authority", sa.String(length=180), nullable=False),
        sa.Column("type_code", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_bidx", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_identifiers_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_identifiers")),
        sa.UniqueConstraint("authority", "value_bidx", name="uq_patient_identifiers_key"),
    )
    with op.batch_alter_table("patient_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_identifiers_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "encounter_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("authority", sa.String(length=180), nullable=False),
        sa.Column("visit_number", sa.String(length=64), nullable=False),
        sa.Column("placeholder", sa.Boolean(), nullable=False),
        sa.Column("mapping_source", sa.String(length=180), nullable=False),
        sa.Column("department_code", sa.String(length=64), nullable=True),
        sa.Column("ward_code", sa.String(length=64), nullable=True),
        sa.Column("doctor_code", sa.String(length=64), nullable=True),
        sa.Column("patient_class", sa.String(length=8), nullable=True),
        sa.Column("last_event", sa.String(length=8), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name=op.f("fk_encounter_identifiers_encounter_id_encounters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounter_identifiers")),
        sa.UniqueConstraint("authority", "visit_number", name="uq_encounter_identifiers_key"),
    )
    with op.batch_alter_table("encounter_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_encounter_identifiers_encounter_id"), ["encounter_id"], unique=False
        )

    op.create_table(
        "hl7_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("peer", sa.String(length=64), nullable=True),
        sa.Column("sending_application", sa.String(length=180), nullable=False),
        sa.Column("sending_facility", sa.String(length=180), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("charset", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "applied",
                "ignored",
                "invalid",
                "held",
                "rejected",
                "failed",
                name="hl7status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("error_location", sa.String(length=32), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name=op.f("fk_hl7_messages_encounter_id_encounters")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_hl7_messages_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_messages")),
        sa.UniqueConstraint(
            "content_hash",
            "sending_application",
            "sending_facility",
            "control_id",
            name="uq_hl7_messages_key",
        ),
    )
    with op.batch_alter_table("hl7_messages", schema=None) as batch_op:
        batch_op.create_index("ix_hl7_messages_control", ["control_id", "sending_facility"], unique=False)
        batch_op.create_index(batch_op.f("ix_hl7_messages_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hl7_messages_received_at"), ["received_at"], unique=False)
        batch_op.create_index("ix_hl7_messages_status_received", ["status", "received_at"], unique=False)

    op.create_table(
        "patient_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("old_patient_id", sa.Integer(), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["old_patient_id"], ["patients.id"], name=op.f("fk_patient_merges_old_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["patients.id"], name=op.f("fk_patient_merges_survivor_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_merges")),
        sa.UniqueConstraint("old_patient_id", name=op.f("uq_patient_merges_old_patient_id")),
    )
    with op.batch_alter_table("patient_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_merges_survivor_id"), ["survivor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patient_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_merges_survivor_id"))

    op.drop_table("patient_merges")
    with op.batch_alter_table("hl7_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_hl7_messages_status_received")
        batch_op.drop_index(batch_op.f("ix_hl7_messages_received_at"))
        batch_op.drop_index(batch_op.f("ix_hl7_messages_patient_id"))
        batch_op.drop_index("ix_hl7_messages_control")

    op.drop_table("hl7_messages")
    with op.batch_alter_table("encounter_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_encounter_identifiers_encounter_id"))

    op.drop_table("encounter_identifiers")
    with op.batch_alter_table("patient_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_identifiers_patient_id"))

    op.drop_table("patient_identifiers")
    op.drop_table("code_mappings")
