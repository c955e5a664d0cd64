"""Merging two patient records found to be one person (HL7 A40, and later FHIR and imports).

Everything that belongs to the old record moves to the survivor: every row of every table that points
at patients (found from the models' foreign keys, so a table added later moves too), identifiers,
channel bindings the survivor lacks, exclusion flags (a flag on either stays on). Consents end at the
most restrictive: where either record had revoked a purpose on a channel, the survivor has it revoked.
The audit trail stays as it was written (it is history), and the old id resolves to the survivor.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.exclusions import do_set_exclusion
from backend.models import Base, ChannelPreference, ConsentEvent, Patient, PatientMerge
from backend.models.patients import EXCLUSION_FLAGS
from backend.services import audit
from backend.services.consents import current_consents, do_revoke_consent

log = logging.getLogger(__name__)
# patient_name_tokens index each record's own name: the survivor keeps its name, and so its tokens
KEPT_IN_PLACE = {
    "audit_events",
    "patient_merges",
    "channel_preferences",
    "hl7_messages",
    "patient_name_tokens",
}
CONTACT_COLUMNS = ("phone", "whatsapp", "wechat_openid", "id_number", "email")


def resolve_patient_id(session: Session, patient_id: int) -> int:
    """The id a patient's record lives under now: itself, or the survivor of its merges."""
    seen = {patient_id}
    while (survivor := session.scalar(
        sa.select(PatientMerge.survivor_id).where(PatientMerge.old_patient_id == patient_id)
    )) is not None and survivor not in seen:  # fmt: skip
        seen.add(survivor)
        patient_id = survivor
    return patient_id


def _patient_columns() -> list[sa.Column[Any]]:
    """Every column (outside KEPT_IN_PLACE) with a foreign key to patients.id."""
    columns = []
    for table in Base.metadata.sorted_tables:
        if table.name in KEPT_IN_PLACE or table.name == "patients":
            continue
        for column in table.columns:
            if any(fk.column.table.name == "patients" for fk in column.foreign_keys):
                columns.append(column)
    return columns


def do_merge_patients(session: Session, old: Patient, survivor: Patient, *, source: str) -> PatientMerge:
    """Move `old`'s record into `survivor` in the caller's transaction; audited."""
    if old.id == survivor.id:
        raise ValueError("a patient cannot be merged into itself")
    old_consents = {key: event.granted for key, event in current_consents(session, old.id).items()}
    survivor_consents = {key: event.granted for key, event in current_consents(session, survivor.id).items()}
    moved: dict[str, int] = {}
    for column in _patient_columns():
        result = session.execute(
            sa.update(column.table).where(column == old.id).values({column.name: survivor.id})
        )
        if result.rowcount:  # type: ignore[attr-defined]
            moved[f"{column.table.name}.{column.name}"] = int(result.rowcount)  # type: ignore[attr-defined]
    preference = session.get(ChannelPreference, old.id)
    if preference is not None:
        if session.get(ChannelPreference, survivor.id) is None:
            session.add(
                ChannelPreference(
                    patient_id=survivor.id, channel=preference.channel, source=preference.source
                )
            )
        session.delete(preference)
    for name in CONTACT_COLUMNS:
        value = getattr(old, name)
        if value is not None and getattr(survivor, name) is None:
            bounced = old.email_bounced
            setattr(old, name, None)
            session.flush()  # the blind index is unique: free it on the old record first
            setattr(survivor, name, value)
            if name == "email":  # the address moves with what its bounces taught us
                survivor.email_bounced = bounced
    for flag in EXCLUSION_FLAGS:
        if getattr(old, flag) and not getattr(survivor, flag):
            do_set_exclusion(session, survivor, flag, True, staff_id=None)  # closes open follow-ups too
    revoked = 0
    for key in sorted(set(old_consents) | set(survivor_consents)):
        if False in (old_consents.get(key), survivor_consents.get(key)):
            latest = session.scalars(
                sa.select(ConsentEvent.granted)
                .where(
                    ConsentEvent.patient_id == survivor.id,
                    ConsentEvent.purpose == key[0],
                    ConsentEvent.channel == key[1],
                )
                .order_by(ConsentEvent.id.desc())
                .limit(1)
            ).first()
            if latest is not False:
                do_revoke_consent(
                    session, patient_id=survivor.id, purpose=key[0], channel=key[1], source=source
                )
                revoked += 1
    session.execute(
        sa.update(PatientMerge).where(PatientMerge.survivor_id == old.id).values(survivor_id=survivor.id)
    )  # earlier merges into the old record now point at the survivor
    merge = PatientMerge(old_patient_id=old.id, survivor_id=survivor.id, source=source, moved=moved)
    session.add(merge)
    session.flush()
    audit.record(
        session,
        "patient.merged",
        patient_id=survivor.id,
        subject=("patient", old.id),
        source=source,
        moved=moved,
        consents_revoked=revoked,
    )
    return merge
