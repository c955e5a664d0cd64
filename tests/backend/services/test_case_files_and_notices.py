"""Feedback cases on both databases: refused files store nothing, and a notice to a patient who opted
out is refused with the reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    CaseAttachment,
    FeedbackCase,
    HandlingRecord,
    OutboxItem,
)
from backend.services import cases
from backend.services.consents import do_grant_consent, do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.backend.services.case_world import (
    ALICE_PHONE,
    PNG,
    World,
    case_row,
    csrf_of,
    make_world,
    register_case,
)
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches


@pytest.fixture
def media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    folder = tmp_path / "media"
    monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(folder))
    monkeypatch.setenv("CARELOOP_MAX_ATTACHMENT_BYTES", "1000")
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_START", "0")  # no quiet time: notices go at once
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_END", "0")
    reset_caches()
    return folder


# --- attachments ---------------------------------------------------------------------------------


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*")) if folder.exists() else []


def test_an_oversized_file_and_an_executable_are_refused_and_nothing_is_stored(
    media: Path, client: TestClient, db: Session
) -> None:
    w = make_world(db)
    case = register_case(db, w)
    sign_in(client, "nurse1")
    attempts = [
        ("photo.png", PNG + b"\x00" * 1000, "The file is too large. Files of up to"),
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60, "This type of file cannot be attached"),
        (
            "invoice.pdf",
            b"MZ\x90\x00" + b"\x00" * 60,
            "This type of file cannot be attached",
        ),  # renamed program
    ]
    for name, data, message in attempts:
        refused = client.post(
            f"/staff/cases/{case.id}/record",
            data={"csrf_token": csrf_of(client, case.id), "kind": "facts", "text": "See the evidence."},
            files={"file": (name, data, "application/octet-stream")},
        )
        assert refused.status_code == 409 and message in refused.text
        assert "See the evidence." in refused.text  # the record's text is kept in the form
    assert _files(media) == []
    assert db.scalar(sa.select(sa.func.count()).select_from(CaseAttachment)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(HandlingRecord)) == 0

    ok = client.post(
        f"/staff/cases/{case.id}/record",
        data={"csrf_token": csrf_of(client, case.id), "kind": "facts", "text": "Photo of the ward."},
        files={"file": ("ward.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    attachment = db.scalars(sa.select(CaseAttachment)).one()
    [stored] = _files(media)
    assert stored.name == attachment.stored and PNG not in stored.read_bytes()  # sealed, not plain
    served = client.get(f"/staff/cases/{case.id}/attachments/{attachment.id}")
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert db.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "case.attachment_view")
    ).one().staff_id == (w.nurse.id)
    sign_in(client, "nurse3")
    denied = client.get(f"/staff/cases/{case.id}/attachments/{attachment.id}")
    assert denied.status_code == 403 and PNG not in denied.content


# --- notifying the patient -------------------------------------------------------------------------


def _closed(db: Session, w: World) -> FeedbackCase:
    case = register_case(db, w)
    cases.do_close_case(db, case=case_row(db, case.id), staff_id=w.nurse.id, summary="The nurse apologised.")
    db.commit()
    return case


def test_a_notice_to_a_patient_who_opted_out_is_refused_with_the_reason_and_the_draft_kept(
    twilio: FakeTwilio,  # noqa: F811
    media: Path,
    client: TestClient,
    db: Session,
) -> None:
    w = make_world(db)
    case = _closed(db, w)
    do_revoke_consent(db, patient_id=w.alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    sign_in(client, "nurse1")
    page = client.get(f"/staff/cases/{case.id}").text
    assert "The nurse apologised." in page  # the default notice carries the summary
    refused = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": _csrf(page), "channel": "sms", "text": "We are sorry; the nurse apologised."},
    )
    assert refused.status_code == 409
    assert "Not sent: the patient has opted out of messages on this channel." in refused.text
    assert "We are sorry; the nurse apologised." in refused.text
    assert twilio.messages == [] and db.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0
    assert case_row(db, case.id).notice_draft == "We are sorry; the nurse apologised."
    reason = db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "case.notice_refused")).one()
    assert reason == {"reason": "no_consent", "channel": "sms"}
    assert "We are sorry; the nurse apologised." in client.get(f"/staff/cases/{case.id}").text  # still there

    sent = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": csrf_of(client, case.id), "channel": "whatsapp", "text": "Outcome: apology."},
    )
    assert sent.status_code == 409 and "no valid address" in sent.text  # no WhatsApp number on record
    do_grant_consent(db, patient_id=w.alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    done = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": csrf_of(client, case.id), "channel": "sms", "text": "Outcome: apology."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    [message] = twilio.messages
    assert message.params["To"] == ALICE_PHONE and message.params["Body"].startswith("Outcome: apology.")
    case = case_row(db, case.id)
    assert case.notice_draft is None and case.notice_outbox_id is not None

    # the notice links to the patient's page where she rates the handling; short, as it goes by SMS
    link = re.search(r"(https?://[^/\s]+)(/s/\S+)", message.params["Body"])
    assert link is not None and len(link.group(0)) < 60
    opened = client.get(link.group(2), follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"].startswith(f"{link.group(1)}/f/")
    rating_page = client.get(opened.headers["location"].removeprefix(link.group(1))).text
    assert f'id="rate-q-{case.id}"' in rating_page
    cases.do_record_satisfaction(db, case=case, staff_id=None, satisfaction=cases.Satisfaction.SATISFIED)
    db.commit()
    again = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": csrf_of(client, case.id), "channel": "sms", "text": "One more word."},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert twilio.messages[-1].params["Body"] == "One more word."  # rated already: no link this time
