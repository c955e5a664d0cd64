"""Everything CareLoop holds about one patient, for her right of access and portability: a FHIR R4
Bundle (the FHIR API's own mappers, backend/fhir/render.py) and a readable PDF (export_pdf.py). Long
work (backend/work): the request only starts the job; the files are sealed under the data key in
`data_export_dir` and downloaded through an audited route."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.fhir import render
from backend.fhir.wire import instant
from backend.models import (
    ConsentEvent,
    Conversation,
    Department,
    Encounter,
    EncounterIdentifier,
    Finding,
    Message,
    Patient,
    PatientIdentifier,
    QuestionnaireResponse,
    QuestionnaireVersion,
    StaffUser,
    Task,
    VoiceCall,
    Ward,
    WorkJob,
)
from backend.models.base import utcnow
from backend.security.crypto import current_cipher
from backend.services.patients import may_view
from backend.work.runs import Progress, Runner, WorkError, register

KIND = "privacy.export"
FINDING_SYSTEM = "urn:careloop:finding"
SECTIONS = ("identity", "consents", "visits", "answers", "findings", "tasks", "messages", "calls")


@dataclass
class ExportContent:
    """What the two files are made from: FHIR resources for the Bundle, plain rows for the PDF."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _identity(session: Session, patient: Patient, out: ExportContent) -> None:
    identifiers = list(
        session.scalars(sa.select(PatientIdentifier).where(PatientIdentifier.patient_id == patient.id))
    )
    out.resources.append(render.patient(patient, identifiers))
    out.rows["identity"] = [
        {"field": "name", "value": patient.name},
        {"field": "mrn", "value": patient.mrn},
        {"field": "sex", "value": patient.sex.value},
        {"field": "birth_date", "value": _fmt(patient.birth_date)},
        {"field": "language", "value": patient.language},
        {"field": "phone", "value": patient.phone or ""},
        {"field": "id_number", "value": patient.id_number or ""},
        {"field": "whatsapp", "value": patient.whatsapp or ""},
        {"field": "email", "value": patient.email or ""},
        *({"field": f"identifier {i.authority}", "value": i.value} for i in identifiers),
    ]


def _consents(session: Session, patient: Patient, out: ExportContent) -> None:
    events = list(
        session.scalars(
            sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient.id).order_by(ConsentEvent.id)
        )
    )
    latest = {(e.purpose, e.channel): e.id for e in events}
    rows = []
    for event in events:
        out.resources.append(render.consent(event, latest[(event.purpose, event.channel)] == event.id))
        rows.append(
            {
                "at": _fmt(event.at),
                "purpose": event.purpose.value,
                "channel": event.channel.value,
                "granted": "yes" if event.granted else "no",
                "source": event.source,
            }
        )
    out.rows["consents"] = rows


def _visits(session: Session, patient: Patient, out: ExportContent) -> None:
    rows = []
    query = (
        sa.select(Encounter, Department, Ward)
        .join(Department, Department.id == Encounter.department_id)
        .outerjoin(Ward, Ward.id == Encounter.ward_id)
        .where(Encounter.patient_id == patient.id)
        .order_by(Encounter.started_at)
    )
    for encounter, department, ward in session.execute(query):
        links = list(
            session.scalars(
                sa.select(EncounterIdentifier).where(EncounterIdentifier.encounter_id == encounter.id)
            )
        )
        out.resources.append(render.encounter(encounter, links, department, ward))
        rows.append(
            {
                "kind": encounter.kind.value,
                "department": department.name,
                "started": _fmt(encounter.started_at),
                "ended": _fmt(encounter.ended_at),
                "diagnoses": "; ".join(
                    f"{d.get('code', '')} {d.get('text', '')}".strip() for d in encounter.diagnoses
                ),
            }
        )
    out.rows["visits"] = rows


def _answers(session: Session, patient: Patient, out: ExportContent) -> list[int]:
    rows = []
    ids: list[int] = []
    query = (
        sa.select(QuestionnaireResponse, QuestionnaireVersion)
        .join(QuestionnaireVersion, QuestionnaireVersion.id == QuestionnaireResponse.version_id)
        .where(QuestionnaireResponse.patient_id == patient.id)
        .order_by(QuestionnaireResponse.started_at)
    )
    for response, version in session.execute(query):
        ids.append(response.id)
        out.resources.append(render.questionnaire_response(response, version))
        rows.append(
            {
                "questionnaire": response.questionnaire_id,
                "status": response.status.value,
                "completed": _fmt(response.completed_at),
                "answers": json.dumps(response.answers, ensure_ascii=False, sort_keys=True),
                "scores": json.dumps(response.scores, ensure_ascii=False, sort_keys=True),
            }
        )
    out.rows["answers"] = rows
    return ids


def _findings(session: Session, patient: Patient, response_ids: list[int], out: ExportContent) -> None:
    """Findings have no mapper of the FHIR API (it does not serve them): an Observation each, derived
    from its QuestionnaireResponse."""
    rows = []
    if response_ids:
        for finding in session.scalars(
            sa.select(Finding).where(Finding.response_id.in_(response_ids)).order_by(Finding.id)
        ):
            out.resources.append(
                {
                    "resourceType": "Observation",
                    "id": f"finding-{finding.id}",
                    "status": "final",
                    "code": {"coding": [{"system": FINDING_SYSTEM, "code": finding.code}]},
                    "subject": render.reference("Patient", patient.id),
                    "effectiveDateTime": instant(finding.created_at),
                    "derivedFrom": [render.reference("QuestionnaireResponse", finding.response_id)],
                    "interpretation": [{"text": finding.severity}],
                }
            )
            rows.append({"at": _fmt(finding.created_at), "code": finding.code, "severity": finding.severity})
    out.rows["findings"] = rows


def _tasks(session: Session, patient: Patient, out: ExportContent) -> None:
    rows = []
    for task in session.scalars(
        sa.select(Task).where(Task.patient_id == patient.id).order_by(Task.created_at)
    ):
        out.resources.append(render.task(task))
        rows.append(
            {
                "created": _fmt(task.created_at),
                "kind": task.kind.value,
                "title": task.title,
                "status": task.status.value,
                "closed": _fmt(task.closed_at),
            }
        )
    out.rows["tasks"] = rows


def _messages(session: Session, patient: Patient, out: ExportContent) -> None:
    rows = []
    query = (
        sa.select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.patient_id == patient.id)
        .order_by(Message.created_at, Message.id)
    )
    for message in session.scalars(query):
        out.resources.append(render.communication(message, patient.id))
        rows.append(
            {
                "at": _fmt(message.created_at),
                "channel": message.channel.value,
                "direction": message.direction.value,
                "text": message.text,
            }
        )
    out.rows["messages"] = rows


def _calls(session: Session, patient: Patient, out: ExportContent) -> None:
    rows = []
    for call in session.scalars(
        sa.select(VoiceCall).where(VoiceCall.patient_id == patient.id).order_by(VoiceCall.created_at)
    ):
        heard = [str(line.get("heard") or "") for line in call.transcripts if line.get("heard")]
        resource: dict[str, Any] = {
            "resourceType": "Communication",
            "id": f"call-{call.id}",
            "status": "completed" if call.ended_at else "unknown",
            "subject": render.reference("Patient", patient.id),
            "sent": instant(call.created_at),
            "medium": [{"coding": [{"system": render.CHANNEL_SYSTEM, "code": "voice"}]}],
        }
        if heard:
            resource["payload"] = [{"contentString": text} for text in heard]
        out.resources.append(resource)
        rows.append(
            {
                "at": _fmt(call.created_at),
                "outcome": call.outcome.value if call.outcome else call.state.value,
                "seconds": _fmt(call.duration_seconds),
                "heard": " / ".join(heard),
            }
        )
    out.rows["calls"] = rows


def collect(session: Session, patient: Patient, progress: Progress | None = None) -> ExportContent:
    out = ExportContent()
    for first in (_identity, _consents, _visits):
        first(session, patient, out)
        if progress is not None:
            progress.advance()
    response_ids = _answers(session, patient, out)
    _findings(session, patient, response_ids, out)
    if progress is not None:
        progress.advance(2)
    for later in (_tasks, _messages, _calls):
        later(session, patient, out)
        if progress is not None:
            progress.advance()
    return out


def bundle(content: ExportContent, patient_id: int) -> dict[str, Any]:
    """A FHIR R4 `collection` Bundle; fullUrls under the server's own FHIR base."""
    base = get_settings().public_url.rstrip("/") + "/fhir/R4"
    return {
        "resourceType": "Bundle",
        "id": f"patient-{patient_id}-export",
        "type": "collection",
        "timestamp": instant(utcnow()),
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in content.resources
        ],
    }


# --- the sealed files -------------------------------------------------------------------------------


def _path(job_id: int, suffix: str) -> Path:
    return get_settings().data_export_dir / f"export-{job_id}.{suffix}.sealed"


def seal_kind(job_id: int, suffix: str) -> str:
    """The associated data an export file is sealed with (key rotation re-seals with it too)."""
    return f"export:{job_id}:{suffix}"


def store(job_id: int, suffix: str, data: bytes) -> None:
    path = _path(job_id, suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(current_cipher().seal(seal_kind(job_id, suffix), data))


def exists(job_id: int, suffix: str) -> bool:
    return _path(job_id, suffix).exists()


def load(job_id: int, suffix: str) -> bytes | None:
    """The file's bytes, or None once retention removed it."""
    path = _path(job_id, suffix)
    if not path.exists():
        return None
    return current_cipher().unseal(seal_kind(job_id, suffix), path.read_bytes())


def run_export(progress: Progress) -> dict[str, Any]:
    patient_id = int(progress.params["patient_id"])
    progress.total = len(SECTIONS) + 2  # the sections, then the Bundle, then the PDF
    with session_scope() as session:
        patient = session.get(Patient, patient_id)
        starter = session.get(StaffUser, progress.params.get("staff_id") or 0)
        if patient is None:
            raise WorkError("the patient no longer exists")
        # re-checked when it runs: a break-glass grant may have expired since it was asked
        if starter is None or not may_view(session, starter, patient_id):
            raise WorkError("the person who asked may no longer see this record")
        content = collect(session, patient, progress)
        language = starter.language
        name = patient.name
    progress.save()
    job_id = progress.job_id
    # the Bundle first: a PDF that cannot be made (no WeasyPrint here) must not cost the patient her data
    data = json.dumps(bundle(content, patient_id), ensure_ascii=False, indent=1).encode("utf-8")
    store(job_id, "json", data)
    progress.advance()
    progress.save()
    from backend.privacy.export_pdf import render_pdf

    files = ["json"]
    try:
        store(job_id, "pdf", render_pdf(content, name=name, language=language))
        files.append("pdf")
    except WorkError as exc:
        progress.error("pdf", str(exc))
    progress.advance()
    return {
        "patient_id": patient_id,
        "files": files,
        "resources": len(content.resources),
        "counts": {section: len(content.rows.get(section, [])) for section in SECTIONS},
    }


def _result_url(job: WorkJob) -> str | None:
    return f"/staff/privacy/exports/{job.id}"


register(Runner(kind=KIND, run=run_export, title="Patient data export", result_url=_result_url))
