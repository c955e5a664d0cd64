"""safety_alerts, missed_escalations, sla_policies, duty_rosters; staff phone, conversation notice time,
outbox staff recipients: emergencies acted on whoever holds the conversation

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 08:00:00

An emergency in any inbound message is answered and raised once (safety_alerts, one row per message);
response times come from one table with per-department rows (sla_policies); an emergency nobody takes
alerts the department's on-duty person, then the fallback, on her own phone (duty_rosters,
staff_users.phone, outbox.to_staff_id); patients are told once per conversation that the chat is not
watched around the clock (conversations.notice_sent_at); staff mark messages the bot should have
escalated (missed_escalations). Priorities, task events and outbox kinds gain values; they are stored as
strings with no check constraint, so no column changes for those.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PRIORITY = sa.Enum(
    "emergency", "urgent", "high", "normal", "low", name="taskpriority", native_enum=False, length=32
)


def upgrade() -> None:
    op.create_table(
        "safety_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("held_by", sa.String(length=8), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("guidance_message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_safety_alerts_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_safety_alerts_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_safety_alerts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_safety_alerts_task_id_tasks")),
        sa.ForeignKeyConstraint(
            ["guidance_message_id"],
            ["messages.id"],
            name=op.f("fk_safety_alerts_guidance_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_alerts")),
        sa.UniqueConstraint("message_id", name=op.f("uq_safety_alerts_message_id")),
    )
    op.create_index(
        op.f("ix_safety_alerts_conversation_id"), "safety_alerts", ["conversation_id"], unique=False
    )
    op.create_index(op.f("ix_safety_alerts_patient_id"), "safety_alerts", ["patient_id"], unique=False)
    op.create_table(
        "missed_escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("marked_by", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_missed_escalations_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["marked_by"], ["staff_users.id"], name=op.f("fk_missed_escalations_marked_by_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["staff_users.id"], name=op.f("fk_missed_escalations_reviewed_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missed_escalations")),
        sa.UniqueConstraint("message_id", name=op.f("uq_missed_escalations_message_id")),
    )
    op.create_index(
        op.f("ix_missed_escalations_created_at"), "missed_escalations", ["created_at"], unique=False
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("priority", _PRIORITY, nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_sla_policies_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("department_id", "priority", name=op.f("uq_sla_policies_department_id_priority")),
    )
    op.create_table(
        "duty_rosters",
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("on_duty_id", sa.Integer(), nullable=True),
        sa.Column("fallback_id", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_duty_rosters_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["on_duty_id"], ["staff_users.id"], name=op.f("fk_duty_rosters_on_duty_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["fallback_id"], ["staff_users.id"], name=op.f("fk_duty_rosters_fallback_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["staff_users.id"], name=op.f("fk_duty_rosters_updated_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("department_id", name=op.f("pk_duty_rosters")),
    )
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("phone", sa.Text(), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("notice_sent_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("to_staff_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_outbox_to_staff_id_staff_users"), "staff_users", ["to_staff_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("fk_outbox_to_staff_id_staff_users"), type_="foreignkey")
        batch.drop_column("to_staff_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("notice_sent_at")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("phone")
    op.drop_table("duty_rosters")
    op.drop_table("sla_policies")
    op.drop_index(op.f("ix_missed_escalations_created_at"), table_name="missed_escalations")
    op.drop_table("missed_escalations")
    op.drop_index(op.f("ix_safety_alerts_patient_id"), table_name="safety_alerts")
    op.drop_index(op.f("ix_safety_alerts_conversation_id"), table_name="safety_alerts")
    op.drop_table("safety_alerts")
