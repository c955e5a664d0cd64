"""Hospital data in: each HL7 message kept (sealed) with its outcome, outside identifiers, code mappings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedText, UTCDateTime, enum_column, utcnow
from backend.security.crypto import FieldCipher, current_cipher
from backend.security.identifiers import normalise_code


class SealedBytes(sa.TypeDecorator[bytes]):
    """A blob sealed with the field key (AES-GCM, `kind` as associated data): the raw bytes as received."""

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: bytes | None, dialect: sa.Dialect) -> bytes | None:
        return None if value is None else current_cipher().seal(self.kind, value)

    def process_result_value(self, value: bytes | None, dialect: sa.Dialect) -> bytes | None:
        return None if value is None else current_cipher().unseal(self.kind, bytes(value))


class Hl7Status(StrEnum):
    """What became of one received message."""

    APPLIED = "applied"  # AA: its facts are in the records
    IGNORED = "ignored"  # AA: an event or message type CareLoop does not use
    INVALID = "invalid"  # AE: understood, but a required field is missing or wrong
    HELD = "held"  # AE: kept for a person to review (key reused with new content, identifiers conflict)
    REJECTED = "rejected"  # AR: could not be parsed
    FAILED = "failed"  # AE: our own error while applying; a resend tries again

    @property
    def retried_on_resend(self) -> bool:
        return self is Hl7Status.FAILED


class Hl7Message(Base):
    """One received message, stored in the transaction that applies it, before it is acknowledged."""

    __tablename__ = "hl7_messages"
    __table_args__ = (
        sa.UniqueConstraint(
            "sending_application",
            "sending_facility",
            "control_id",
            "content_hash",
            name="uq_hl7_messages_key",
        ),
        sa.Index("ix_hl7_messages_control", "control_id", "sending_facility"),
        sa.Index("ix_hl7_messages_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    peer: Mapped[str | None] = mapped_column(sa.String(64))  # sender's address
    # The idempotency key (MSH-3, MSH-4, MSH-10); empty strings when the message could not be parsed.
    sending_application: Mapped[str] = mapped_column(sa.String(180), default="")
    sending_facility: Mapped[str] = mapped_column(sa.String(180), default="")
    control_id: Mapped[str] = mapped_column(sa.String(199), default="")
    content_hash: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of the message without MSH-7
    message_type: Mapped[str] = mapped_column(sa.String(16), default="")  # e.g. "ADT^A01"
    version: Mapped[str] = mapped_column(sa.String(16), default="")
    charset: Mapped[str] = mapped_column(sa.String(32), default="")  # the codec it was decoded with
    size: Mapped[int] = mapped_column(default=0)
    status: Mapped[Hl7Status] = mapped_column(enum_column(Hl7Status))
    ack_code: Mapped[str] = mapped_column(sa.String(2))
    outcome: Mapped[str] = mapped_column(sa.Text, default="")  # what was done, or why not; never PHI values
    error_location: Mapped[str | None] = mapped_column(sa.String(32))  # e.g. "PID-3"
    error_code: Mapped[int | None]  # HL7 table 0357, as sent in ERR
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    encounter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("encounters.id"))
    payload: Mapped[bytes] = mapped_column(SealedBytes("hl7_message"))


class PatientIdentifier(Base):
    """An outside system's identifier of a patient (PID-3 with its assigning authority)."""

    __tablename__ = "patient_identifiers"
    __table_args__ = (sa.UniqueConstraint("authority", "value_bidx", name="uq_patient_identifiers_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    authority: Mapped[str] = mapped_column(sa.String(180))
    type_code: Mapped[str] = mapped_column(sa.String(16), default="")  # MR, PI, NI, ... (HL7 table 0203)
    value: Mapped[str] = mapped_column(EncryptedText("patient_identifier"))
    value_bidx: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @staticmethod
    def index(value: str, cipher: FieldCipher | None = None) -> str:
        """The blind index an identifier is found by; give `cipher` when indexing many at once (finding the
        current cipher again for each was a tenth of an import's lookups)."""
        return (cipher or current_cipher()).blind_index("patient_identifier", normalise_code(value))


class EncounterIdentifier(Base):
    """An outside visit number (PV1-19 with its authority) and the hospital codes the visit came with."""

    __tablename__ = "encounter_identifiers"
    __table_args__ = (sa.UniqueConstraint("authority", "visit_number", name="uq_encounter_identifiers_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounters.id"), index=True)
    authority: Mapped[str] = mapped_column(sa.String(180))
    visit_number: Mapped[str] = mapped_column(sa.String(64))
    # Made by an update or discharge that came before its admission; the admission fills it in.
    placeholder: Mapped[bool] = mapped_column(default=False)
    mapping_source: Mapped[str] = mapped_column(sa.String(180), default="")  # whose code table the codes are
    department_code: Mapped[str | None] = mapped_column(sa.String(64))
    ward_code: Mapped[str | None] = mapped_column(sa.String(64))
    doctor_code: Mapped[str | None] = mapped_column(sa.String(64))
    patient_class: Mapped[str | None] = mapped_column(sa.String(8))
    last_event: Mapped[str | None] = mapped_column(sa.String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AppointmentIdentifier(Base):
    """The hospital's ids of an appointment booked in its own system (SIU SCH-2 filler id with its
    authority, SCH-1 placer id) and the resource codes it came with, whose code table `mapping_source` is."""

    __tablename__ = "appointment_identifiers"
    __table_args__ = (sa.UniqueConstraint("authority", "filler_id", name="uq_appointment_identifiers_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointments.id"), unique=True)
    authority: Mapped[str] = mapped_column(sa.String(180))
    filler_id: Mapped[str] = mapped_column(sa.String(64))
    placer_id: Mapped[str | None] = mapped_column(sa.String(64))
    mapping_source: Mapped[str] = mapped_column(sa.String(180), default="")
    department_code: Mapped[str | None] = mapped_column(sa.String(64))  # AIL-3.1
    doctor_code: Mapped[str | None] = mapped_column(sa.String(64))  # AIP-3.1
    site_code: Mapped[str | None] = mapped_column(sa.String(64))  # AIL-3.4
    service_code: Mapped[str | None] = mapped_column(sa.String(64))  # AIS-3.1
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))  # SCH-7.1
    last_event: Mapped[str | None] = mapped_column(sa.String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CodeKind(StrEnum):
    DEPARTMENT = "department"
    WARD = "ward"
    DOCTOR = "doctor"


class CodeMapping(Base):
    """A hospital code (per sending facility) for a department, ward or clinician; pending until mapped."""

    __tablename__ = "code_mappings"
    __table_args__ = (sa.UniqueConstraint("kind", "source", "code", name="uq_code_mappings_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CodeKind] = mapped_column(enum_column(CodeKind))
    source: Mapped[str] = mapped_column(sa.String(180))  # the sending facility whose code table it is
    code: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(sa.String(200), default="")  # the text the code came with
    target_id: Mapped[int | None]  # departments.id, wards.id or clinicians.id by kind; None: pending
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_count: Mapped[int] = mapped_column(default=1)  # hours in which it was seen

    @property
    def pending(self) -> bool:
        return self.target_id is None


class PatientMerge(Base):
    """Two records found to be one person: the old id resolves to the survivor (see resolve_patient_id)."""

    __tablename__ = "patient_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    old_patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), unique=True)
    survivor_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    source: Mapped[str] = mapped_column(sa.String(64))  # e.g. "hl7:A40"
    moved: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)  # rows moved per table
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
