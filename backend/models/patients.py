"""Patients (identifiers encrypted, blind-indexed), their consent history and their encounters."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from backend.models.base import (
    Base,
    EncryptedDate,
    EncryptedJSON,
    EncryptedText,
    UTCDateTime,
    enum_column,
    utcnow,
)
from backend.security.crypto import current_cipher
from backend.security.identifiers import (
    name_tokens,
    normalise_code,
    normalise_email,
    normalise_phone,
)
from bots.domain import Channel, ConsentPurpose

if TYPE_CHECKING:
    from backend.models.org import Clinician, Department, Ward


EXCLUSION_FLAGS = ("deceased", "dispute", "do_not_disturb", "invalid_contact", "frequent_visitor")


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Patient(Base):
    """One person. Setting phone/MRN/ID/openid/WhatsApp/email normalises the value and fills its blind
    index."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(EncryptedText("mrn"))
    mrn_bidx: Mapped[str] = mapped_column(sa.String(40), unique=True)
    # encrypted; found through the blind-indexed tokens in patient_name_tokens (set by _index_name)
    name: Mapped[str] = mapped_column(EncryptedText("patient_name"))
    sex: Mapped[Sex] = mapped_column(enum_column(Sex), default=Sex.UNKNOWN)
    birth_date: Mapped[date | None] = mapped_column(EncryptedDate("birth_date"))
    # the plain derivative of birth_date that audiences' age ranges filter on (set by _derive_birth_year)
    birth_year: Mapped[int | None] = mapped_column(sa.SmallInteger, index=True)
    language: Mapped[str] = mapped_column(sa.String(8))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    phone: Mapped[str | None] = mapped_column(EncryptedText("phone"))
    phone_bidx: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    id_number: Mapped[str | None] = mapped_column(EncryptedText("id_number"))
    id_number_bidx: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    wechat_openid: Mapped[str | None] = mapped_column(EncryptedText("wechat_openid"))
    wechat_openid_bidx: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    whatsapp: Mapped[str | None] = mapped_column(EncryptedText("whatsapp"))
    whatsapp_bidx: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    email: Mapped[str | None] = mapped_column(EncryptedText("email"))
    email_bidx: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    # a hard bounce (RFC 3464 status 5.1.x): the email channel stops until staff edit the address
    email_bounced: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    deceased: Mapped[bool] = mapped_column(default=False)
    dispute: Mapped[bool] = mapped_column(default=False)
    do_not_disturb: Mapped[bool] = mapped_column(default=False)
    invalid_contact: Mapped[bool] = mapped_column(default=False)
    frequent_visitor: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # bumped by every ORM update whatever its source (see _bump_version): FHIR's meta.versionId and If-Match
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    encounters: Mapped[list[Encounter]] = relationship(
        back_populates="patient", order_by="Encounter.started_at.desc()"
    )
    consent_events: Mapped[list[ConsentEvent]] = relationship(
        back_populates="patient", order_by="ConsentEvent.id"
    )
    name_tokens: Mapped[list[PatientNameToken]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @staticmethod
    def name_token_indexes(raw: str) -> set[str]:
        """The blind indexes of a name's tokens (identifiers.name_tokens), as stored and as searched."""
        cipher = current_cipher()
        return {cipher.blind_index("patient_name", token) for token in name_tokens(raw)}

    @validates("name")
    def _index_name(self, key: str, value: str) -> str:
        indexes = Patient.name_token_indexes(value or "")
        kept = [t for t in self.name_tokens if t.token in indexes]
        self.name_tokens = kept + [
            PatientNameToken(token=i) for i in sorted(indexes - {t.token for t in kept})
        ]
        return value

    @validates("birth_date")
    def _derive_birth_year(self, key: str, value: date | None) -> date | None:
        self.birth_year = None if value is None else value.year
        return value

    @staticmethod
    def phone_index(raw: str) -> str:
        from backend.app.settings import get_settings

        return current_cipher().blind_index("phone", normalise_phone(raw, get_settings().default_region))

    @staticmethod
    def openid_index(raw: str) -> str:
        # openids are case-sensitive opaque ids: index them exactly as WeChat sends them
        return current_cipher().blind_index("wechat_openid", raw.strip())

    @staticmethod
    def code_index(kind: str, raw: str) -> str:
        return current_cipher().blind_index(kind, normalise_code(raw))

    @validates("phone", "whatsapp")
    def _index_phone(self, key: str, value: str | None) -> str | None:
        from backend.app.settings import get_settings

        normalised = None if value is None else normalise_phone(value, get_settings().default_region)
        setattr(
            self,
            f"{key}_bidx",
            None if normalised is None else current_cipher().blind_index("phone", normalised),
        )
        return normalised

    @staticmethod
    def email_index(raw: str) -> str:
        return current_cipher().blind_index("email", normalise_email(raw))

    @validates("email")
    def _index_email(self, key: str, value: str | None) -> str | None:
        normalised = None if value is None or not value.strip() else normalise_email(value)
        if normalised != self.email:
            self.email_bounced = False  # a new address is tried afresh
        self.email_bidx = None if normalised is None else current_cipher().blind_index("email", normalised)
        return normalised

    @validates("mrn", "id_number")
    def _index_code(self, key: str, value: str | None) -> str | None:
        normalised = None if value is None else normalise_code(value)
        setattr(
            self, f"{key}_bidx", None if normalised is None else current_cipher().blind_index(key, normalised)
        )
        return normalised

    @validates("wechat_openid")
    def _index_openid(self, key: str, value: str | None) -> str | None:
        value = None if value is None else value.strip()
        self.wechat_openid_bidx = None if value is None else Patient.openid_index(value)
        return value

    @property
    def exclusion_flags(self) -> list[str]:
        flags = EXCLUSION_FLAGS
        return [flag for flag in flags if getattr(self, flag)]


class PatientNameToken(Base):
    """One blind-indexed token of a patient's name (the whole name, a word, a Chinese character pair):
    staff search matches tokens exactly, so no part of the name is stored readable."""

    __tablename__ = "patient_name_tokens"
    __table_args__ = (sa.Index("ix_patient_name_tokens_token", "token", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(sa.String(40))


class ConsentEvent(Base):
    """Append-only: each grant or revocation, per purpose and channel, with when and how."""

    __tablename__ = "consent_events"
    # an audience's consent condition: the latest event per patient for one purpose and channel
    __table_args__ = (
        sa.Index("ix_consent_events_purpose_channel", "purpose", "channel", "patient_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    purpose: Mapped[ConsentPurpose] = mapped_column(enum_column(ConsentPurpose))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    granted: Mapped[bool]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(sa.String(64))  # e.g. "webchat:welcome", "staff", "sms:STOP"
    recorded_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    evidence: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # message id, flow step

    patient: Mapped[Patient] = relationship(back_populates="consent_events")


class EncounterKind(StrEnum):
    OUTPATIENT = "outpatient"
    INPATIENT = "inpatient"
    DISCHARGE = "discharge"
    PHYSICAL_EXAM = "physical_exam"


class Encounter(Base):
    __tablename__ = "encounters"
    __table_args__ = (
        sa.Index("ix_encounters_kind_ended", "kind", "ended_at"),
        sa.Index("ix_encounters_kind_started", "kind", "started_at"),
        # a plan's candidates in some departments: one range per department (migration 0041)
        sa.Index(
            "ix_encounters_department_kind_ended",
            "department_id",
            "kind",
            "ended_at",
            postgresql_include=["patient_id"],
        ),
        # audiences filter discharge/visit dates without a kind, and diagnoses by ICD-10 prefix (LIKE 'I21%')
        sa.Index("ix_encounters_ended_at", "ended_at"),
        sa.Index("ix_encounters_started_at", "started_at"),
        sa.Index(
            "ix_encounters_primary_diagnosis",
            "primary_diagnosis",
            postgresql_ops={"primary_diagnosis": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    kind: Mapped[EncounterKind] = mapped_column(enum_column(EncounterKind))
    # HIS visit number: no query finds a visit by it (visit numbers are keyed in encounter_identifiers), so
    # it has no index for every inserted visit to maintain
    external_id: Mapped[str | None] = mapped_column(sa.String(64))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"), index=True)
    ward_id: Mapped[int | None] = mapped_column(sa.ForeignKey("wards.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # discharge time for inpatients
    # [{code, system, text}], encrypted: the texts are PHI
    diagnoses: Mapped[list[dict[str, str]]] = mapped_column(EncryptedJSON("diagnoses"), default=list)
    # the plain derivative plans and audiences match: the first diagnosis's ICD-10 code (its group is
    # its first three characters, matched by prefix)
    primary_diagnosis: Mapped[str | None] = mapped_column(sa.String(16))
    procedure_code: Mapped[str | None] = mapped_column(sa.String(16))
    attending_doctor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clinicians.id"))
    responsible_nurse_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clinicians.id"))
    # as on patients: FHIR's meta.lastUpdated and meta.versionId, whatever source changed the visit
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    patient: Mapped[Patient] = relationship(back_populates="encounters")
    department: Mapped[Department] = relationship()
    ward: Mapped[Ward | None] = relationship()
    attending_doctor: Mapped[Clinician | None] = relationship(foreign_keys=[attending_doctor_id])
    responsible_nurse: Mapped[Clinician | None] = relationship(foreign_keys=[responsible_nurse_id])


@sa.event.listens_for(Patient, "before_update")
@sa.event.listens_for(Encounter, "before_update")
def _bump_version(_mapper: Any, _connection: Any, target: Patient | Encounter) -> None:
    """A new version for each real change, from any source (HL7, FHIR, staff pages). Not SQLAlchemy's
    version_id_col: that turns every concurrent update into a StaleDataError everywhere; FHIR's If-Match
    writes lock the row instead (backend/fhir/writes.py)."""
    session = sa.orm.object_session(target)
    if session is not None and session.is_modified(target, include_collections=False):
        # in SQL, so two updates that both read version n still leave n + 2
        target.version = type(target).version + 1
