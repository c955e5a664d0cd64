"""A patient with something of every kind the data-rights code touches, written through the real models
and verbs: identifiers, consents, a visit, messages with an attachment, a questionnaire response with a
typed answer, a finding and its task, a voice call with a recording and the audio of an answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import do_publish
from backend.messaging.media import seal_to_file
from backend.models import (
    CaseKind,
    CaseSource,
    Department,
    FeedbackCase,
    Finding,
    Message,
    Patient,
    PatientIdentifier,
    QuestionnaireResponse,
    ResponseStatus,
    Task,
    VoiceCall,
)
from backend.models.base import utcnow
from backend.services.consents import do_grant_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.channels.fake_twilio import FakeTwilio
from voice_ai.call_events import CallState
from voice_ai.gateway import GatewayName

TYPED = "My neighbour Li Lei drives me; call 13900001111"


@lru_cache(maxsize=1)
def _definition(path: Path) -> str:
    return json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")))


def _post_discharge(content_dir: Path) -> dict[str, Any]:
    """The one questionnaire these tests answer, read once (parsing every authored file takes a second)."""
    return dict(json.loads(_definition(content_dir / "questionnaires" / "post_discharge.yaml")))


@dataclass
class Rich:
    patient: Patient
    dept: Department
    message: Message
    response: QuestionnaireResponse
    finding: Finding
    task: Task
    call: VoiceCall
    media_file: str
    audio_file: str


def rich_patient(
    db: Session, *, visit_days_ago: int = 5, now: datetime | None = None, gateway: FakeTwilio | None = None
) -> Rich:
    """With `gateway`, the call's recording is kept there (RE1), as Twilio keeps it; without, the call
    came through the simulated gateway, whose recording link names nothing to delete."""
    now = now or utcnow()
    settings = get_settings()
    dept = factories.department(db)
    person = factories.patient(db, name="Alice Wang", dept=None, id_number="110101196005170011")
    factories.encounter(db, person, dept, started=now - timedelta(days=visit_days_ago + 3))
    db.add(
        PatientIdentifier(
            patient_id=person.id,
            authority="HIS",
            value="HIS-778899",
            value_bidx=PatientIdentifier.index("HIS-778899"),
        )
    )
    do_grant_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="staff"
    )
    conv = factories.conversation(db, person, Channel.SMS)
    message = factories.reply(db, conv, TYPED, at=now - timedelta(days=2))
    media_file = seal_to_file(settings, f"media:{message.id}", b"jpeg bytes")
    message.media = [{"media_id": "m1", "stored": media_file, "mime_type": "image/jpeg"}]
    version = do_publish(db, _post_discharge(settings.content_dir))
    response = QuestionnaireResponse(
        patient_id=person.id,
        version_id=version.id,
        questionnaire_id="post_discharge",
        channel=Channel.SMS,
        language="en",
        status=ResponseStatus.COMPLETED,
        answers={"pain": 8, "other": TYPED},
        scores={"total": 8},
        completed_at=now - timedelta(days=1),
    )
    db.add(response)
    db.flush()
    task = factories.task(db, person=person, dept=dept)
    finding = Finding(
        response_id=response.id, code="pain_severe", severity="high", items=["pain"], task_id=task.id
    )
    db.add(finding)
    audio_file = seal_to_file(settings, "voice-answer", b"wav bytes")
    if gateway is not None:
        gateway.recordings["RE1"] = b"mp3 bytes"
    call = VoiceCall(
        patient_id=person.id,
        gateway=GatewayName.SIMULATED,
        language="en",
        state=CallState.COMPLETED,
        recording_url=(
            f"{gateway.base_url}/2010-04-01/Accounts/{gateway.account_sid}/Recordings/RE1"
            if gateway
            else "simulated:recording-1"
        ),
        recording_id="RE1",
        transcripts=[
            {"item": "other", "heard": TYPED, "confidence": 0.9, "via": "speech", "audio": audio_file}
        ],
        created_at=now - timedelta(days=1),
    )
    db.add(call)
    db.flush()
    return Rich(person, dept, message, response, finding, task, call, media_file, audio_file)


def open_complaint(db: Session, person: Patient) -> FeedbackCase:
    case = FeedbackCase(
        kind=CaseKind.COMPLAINT,
        category="other",
        text="The nurse was rude",
        patient_id=person.id,
        source=CaseSource.PHONE,
    )
    db.add(case)
    db.flush()
    return case
