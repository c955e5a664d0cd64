"""Carrying out an approved anonymisation or erasure on every table that holds the patient's data, and
the tombstone that lets it be carried out again after a restore from an older backup.

Anonymisation removes names, identifiers, contact addresses and every free text (messages, complaint
texts, handling notes, staff notes on her tasks, typed answers, what a call heard), and keeps the
de-identified rows statistics count: visits by department and date, coded answers, scores, findings,
tasks by kind. Erasure removes
those structured values as well (answers, scores, diagnoses, consents, birth date). Rows that other rows
point to stay as empty shells, so nothing else in the database breaks. The audit trail is never touched:
it holds no personal values (backend/services/audit.py) and is the evidence the erasure happened.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import definition_of
from backend.models import (
    BindCode,
    CaseAttachment,
    ChannelPreference,
    ConsentEvent,
    Conversation,
    DeliveryStatus,
    Encounter,
    ErasureTombstone,
    FeedbackCase,
    HandlingRecord,
    Hl7Message,
    Message,
    MissedEscalation,
    OutboxItem,
    Patient,
    PatientIdentifier,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResultDelivery,
    RightsKind,
    Sex,
    Task,
    TaskEvent,
    VoiceCall,
)
from questionnaires.model import ItemType

FREE_TEXT = frozenset({ItemType.SHORT_TEXT, ItemType.LONG_TEXT, ItemType.MULTI_BLANK})
ERASED_NAME = "—"


def remove_media_file(name: object) -> None:
    """A sealed file in media_dir named by a row; only a bare file name is ever removed."""
    if not isinstance(name, str) or not name or Path(name).name != name:
        return
    (get_settings().media_dir / name).unlink(missing_ok=True)


def _identity(patient: Patient, kind: RightsKind) -> None:
    patient.name = ERASED_NAME
    # the MRN is required and unique: a placeholder that names no one and cannot collide
    patient.mrn = f"ERASED-{patient.id}"
    patient.phone = None
    patient.whatsapp = None
    patient.email = None
    patient.id_number = None
    patient.wechat_openid = None
    if kind is RightsKind.ERASURE:
        patient.birth_date = None
        patient.sex = Sex.UNKNOWN
    elif patient.birth_date is not None:
        # the year keeps age bands in the statistics; the day and month identify
        patient.birth_date = date(patient.birth_date.year, 1, 1)


def _messages(session: Session, patient_id: int, counts: Counter[str]) -> list[int]:
    conversations = list(
        session.scalars(sa.select(Conversation).where(Conversation.patient_id == patient_id))
    )
    for conv in conversations:
        conv.reply_to = None
        conv.pending_consents = None
        conv.state = None
        conv.address = f"erased-{conv.id}"  # the blind index of her number links back to her
    ids = [c.id for c in conversations]
    message_ids: list[int] = []
    if ids:
        for message in session.scalars(sa.select(Message).where(Message.conversation_id.in_(ids))):
            for item in message.media or []:
                remove_media_file(item.get("stored"))
            message.text, message.parts, message.media, message.choice = "", None, None, None
            message_ids.append(message.id)
            counts["messages"] += 1
    session.execute(
        sa.update(OutboxItem).where(OutboxItem.patient_id == patient_id).values(template_vars=None)
    )
    return message_ids


def _cases(session: Session, patient_id: int, counts: Counter[str]) -> None:
    cases = list(session.scalars(sa.select(FeedbackCase).where(FeedbackCase.patient_id == patient_id)))
    for case in cases:
        case.text, case.summary, case.notice_draft = "", None, None
        counts["cases"] += 1
    ids = [c.id for c in cases]
    if ids:
        session.execute(sa.update(HandlingRecord).where(HandlingRecord.case_id.in_(ids)).values(text=""))
        for attachment in session.scalars(sa.select(CaseAttachment).where(CaseAttachment.case_id.in_(ids))):
            remove_media_file(attachment.stored)
            attachment.filename, attachment.stored = ERASED_NAME, ""


def _answers(session: Session, patient_id: int, kind: RightsKind, counts: Counter[str]) -> None:
    responses = list(
        session.scalars(
            sa.select(QuestionnaireResponse).where(QuestionnaireResponse.patient_id == patient_id)
        )
    )
    free: dict[int, set[str]] = {}
    for response in responses:
        counts["responses"] += 1
        if kind is RightsKind.ERASURE:
            response.answers, response.scores, response.bands, response.skipped = {}, {}, {}, []
            continue
        if response.version_id not in free:
            version = session.get(QuestionnaireVersion, response.version_id)
            q = definition_of(version) if version is not None else None
            free[response.version_id] = (
                {item.id for item in q.walk() if item.type in FREE_TEXT}
                if q is not None
                else set(response.answers)
            )
        response.answers = {k: v for k, v in response.answers.items() if k not in free[response.version_id]}


def _calls(session: Session, patient_id: int, kind: RightsKind, counts: Counter[str]) -> None:
    for call in session.scalars(sa.select(VoiceCall).where(VoiceCall.patient_id == patient_id)):
        for line in call.transcripts:
            remove_media_file(line.get("audio"))
        keep = ("item", "confidence", "via", "confirmed") if kind is RightsKind.ANONYMISATION else ()
        call.transcripts = (
            [{k: line[k] for k in keep if k in line} for line in call.transcripts] if keep else []
        )
        # the recording itself lives at the gateway: deleted there after the commit, and by the retention
        # job (it follows the tombstones) should the gateway refuse now; the link is kept until then
        counts["calls"] += 1


# the staff-typed texts a task's events carry (notes, closing summaries): they may quote the patient
TASK_EVENT_TEXTS = ("text", "summary")


def _staff_notes(session: Session, patient_id: int, message_ids: list[int]) -> None:
    tasks = sa.select(Task.id).where(Task.patient_id == patient_id)
    for event in session.scalars(sa.select(TaskEvent).where(TaskEvent.task_id.in_(tasks))):
        if any(key in (event.detail or {}) for key in TASK_EVENT_TEXTS):
            event.detail = {k: v for k, v in event.detail.items() if k not in TASK_EVENT_TEXTS}
    if message_ids:
        session.execute(
            sa.update(MissedEscalation).where(MissedEscalation.message_id.in_(message_ids)).values(note=None)
        )


def _structured(session: Session, patient_id: int) -> None:
    """What erasure removes beyond anonymisation: coded clinical facts and the consent history."""
    session.execute(
        sa.update(Encounter)
        .where(Encounter.patient_id == patient_id)
        .values(diagnoses=[], primary_diagnosis=None, procedure_code=None)
    )
    session.execute(sa.delete(ConsentEvent).where(ConsentEvent.patient_id == patient_id))
    session.execute(sa.delete(ChannelPreference).where(ChannelPreference.patient_id == patient_id))


UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED)  # results not yet delivered


def wipe_patient(session: Session, patient: Patient, kind: RightsKind) -> dict[str, int]:
    """Anonymise or erase one patient in `session` (the caller commits); counts of what was changed."""
    if kind is RightsKind.CORRECTION:
        raise ValueError("a correction is not a wipe")
    counts: Counter[str] = Counter()
    _identity(patient, kind)
    counts["identifiers"] = session.execute(
        sa.delete(PatientIdentifier).where(PatientIdentifier.patient_id == patient.id)
    ).rowcount  # type: ignore[attr-defined]
    session.execute(sa.delete(BindCode).where(BindCode.patient_id == patient.id))
    message_ids = _messages(session, patient.id, counts)
    _cases(session, patient.id, counts)
    _answers(session, patient.id, kind, counts)
    _calls(session, patient.id, kind, counts)
    # raw HL7 payloads name her; the row (status, outcome) stays for the feed's own statistics
    counts["hl7_messages"] = session.execute(
        sa.update(Hl7Message).where(Hl7Message.patient_id == patient.id).values(payload=b"")
    ).rowcount  # type: ignore[attr-defined]
    # results not yet written back to the hospital would carry what is being removed: never sent now
    counts["result_deliveries"] = session.execute(
        sa.update(ResultDelivery)
        .where(
            ResultDelivery.patient_id == patient.id,
            ResultDelivery.status.in_(UNSENT),
        )
        .values(status=DeliveryStatus.NOT_SENT, last_error="the patient's data was anonymised or erased")
    ).rowcount  # type: ignore[attr-defined]
    # a task's title may quote her; its kind, priority, department and times stay for the statistics
    session.execute(sa.update(Task).where(Task.patient_id == patient.id).values(title=ERASED_NAME))
    _staff_notes(session, patient.id, message_ids)
    if kind is RightsKind.ERASURE:
        _structured(session, patient.id)
    session.flush()
    return dict(counts)


# --- tombstones ---------------------------------------------------------------------------------------


def write_tombstone(
    session: Session, patient: Patient, mrn_bidx: str, kind: RightsKind, request_id: int | None, at: datetime
) -> ErasureTombstone:
    """The row, and a line appended to the tombstone file (kept outside the database's backups)."""
    stone = ErasureTombstone(
        patient_id=patient.id, mrn_bidx=mrn_bidx, kind=kind, request_id=request_id, at=at
    )
    session.add(stone)
    path = get_settings().tombstone_file
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"patient_id": patient.id, "mrn_bidx": mrn_bidx, "kind": kind.value, "at": at.isoformat()}
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
        out.flush()
    return stone


def read_tombstone_file(path: Path) -> list[dict[str, Any]]:
    """The file's lines; a malformed line is an error naming its number (nothing is applied then)."""
    if not path.exists():
        return []
    stones: list[dict[str, Any]] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            stones.append(
                {
                    "patient_id": int(line["patient_id"]),
                    "mrn_bidx": str(line["mrn_bidx"]),
                    "kind": RightsKind(line["kind"]),
                    "at": datetime.fromisoformat(line["at"]),
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: line {number} is not a tombstone ({type(exc).__name__})") from exc
    return stones


def replay_tombstones(session: Session, path: Path) -> dict[str, int]:
    """After a restore: wipe again every patient a tombstone names who still has data, and put back the
    tombstone rows the restored database lacks. A patient whose MRN index differs is not the same row
    (ids were reused after the restore) and is left alone and counted."""
    stones = read_tombstone_file(path)
    known = {(s.patient_id, s.kind) for s in session.scalars(sa.select(ErasureTombstone))}
    counts: Counter[str] = Counter()
    for stone in stones:
        patient = session.get(Patient, stone["patient_id"])
        if patient is None:
            counts["absent"] += 1
            continue
        already = patient.mrn == f"ERASED-{patient.id}"
        if not already and patient.mrn_bidx != stone["mrn_bidx"]:
            counts["different_patient"] += 1
            continue
        if not already or stone["kind"] is RightsKind.ERASURE:
            wipe_patient(session, patient, stone["kind"])  # idempotent: a second run blanks blanks
            counts["wiped"] += 0 if already else 1
        if (stone["patient_id"], stone["kind"]) not in known:
            session.add(
                ErasureTombstone(
                    patient_id=stone["patient_id"],
                    mrn_bidx=stone["mrn_bidx"],
                    kind=stone["kind"],
                    at=stone["at"],
                )
            )
            known.add((stone["patient_id"], stone["kind"]))
            counts["rows_restored"] += 1
    return dict(counts)
