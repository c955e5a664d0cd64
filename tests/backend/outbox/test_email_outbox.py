"""Email end to end through the outbox and its gates, a local SMTP relay, the bounce hook, the unsubscribe
link and the patient record's address field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.dispatcher import dispatch_due
from backend.followup.planner import run_planner
from backend.integration.merges import do_merge_patients
from backend.messaging.email_tokens import item_token, unsubscribe_token
from backend.models import AuditEvent, ConsentEvent, OutboxItem, OutboxStatus, Patient
from backend.models.staff import Role
from backend.outbox.sender import send_item
from backend.services.consents import do_revoke_consent, has_consent
from bots.domain import Channel, ConsentPurpose
from bots.messages import Outbound, Text
from tests import factories
from tests.backend.followup.test_followup import NOW as PLAN_NOW
from tests.backend.followup.test_followup import _setup
from tests.backend.outbox.test_outbox import NOW, _item, _queue
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.channels.dsn import bounce, sample
from tests.channels.fake_smtp import FakeSmtp
from tests.conftest import reset_caches

DOMAIN = "care.example.vn"
HOOK_TOKEN = "hook-token-for-tests-0123456789"
QUIET = NOW.replace(hour=15)  # 23:00 in Shanghai


@pytest.fixture
def relay(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSmtp]:
    with FakeSmtp(username="careloop", password="pw", tls="starttls", require_tls=True) as fake:
        for name, value in {
            "SMTP_HOST": fake.host,
            "SMTP_PORT": str(fake.port),
            "SMTP_SECURITY": "starttls",
            "SMTP_USERNAME": "careloop",
            "SMTP_PASSWORD": "pw",
            "SMTP_CA_FILE": fake.cert_file,
            "FROM_ADDRESS": f"follow-up@{DOMAIN}",
            "REPLY_TO": f"service@{DOMAIN}",
            "HOOK_TOKEN": HOOK_TOKEN,
        }.items():
            monkeypatch.setenv(f"CARELOOP_EMAIL_{name}", value)
        monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "2")
        reset_caches()
        yield fake
        reset_caches()


def _patient(db: Session, email: str | None = "lan.nguyen@example.vn", language: str = "vi") -> Patient:
    person = factories.patient(db, language=language, email=email)
    db.commit()
    return person


def _email(db: Session, patient: Patient, **kwargs: object) -> int:
    outbound = Outbound((Text("Lịch tái khám của chị: 12/12 lúc 9:00."),))
    return _queue(db, patient, channel=Channel.EMAIL, outbound=outbound, **kwargs)  # type: ignore[arg-type]


def _audits(db: Session, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _hook(client: TestClient, raw: bytes, to: str | None, token: str = HOOK_TOKEN) -> tuple[int, str]:
    query = {"to": to} if to else {}
    reply = client.post(
        "/hooks/email",
        params=query,
        content=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"},
    )
    return reply.status_code, reply.text


# --- sending ----------------------------------------------------------------------------------------


def test_an_email_goes_through_the_outbox_in_the_patients_language(relay: FakeSmtp, db: Session) -> None:
    patient = _patient(db, email=" Lan.Nguyen@Example.VN ")
    assert patient.email == "lan.nguyen@example.vn"  # normalised, stored encrypted
    stored = db.execute(
        sa.text("SELECT email, email_bidx FROM patients WHERE id = :id"), {"id": patient.id}
    ).one()
    assert "lan" not in stored.email and stored.email_bidx == Patient.email_index("LAN.nguyen@example.vn")
    item_id = _email(db, patient)
    assert send_item(item_id, NOW) == "sent"
    [got] = relay.received
    token = item_token(get_settings(), item_id)
    assert got.recipients == ["lan.nguyen@example.vn"]
    assert got.envelope_from == f"bounces+{token}@{DOMAIN}"
    message = got.message
    assert message["Message-ID"] == f"<careloop.{token}@{DOMAIN}>"
    assert message["Subject"].endswith("thông tin về việc chăm sóc của bạn")
    assert message["Reply-To"] == f"service@{DOMAIN}"
    assert message["Auto-Submitted"] == "auto-generated"
    unsubscribe = unsubscribe_token(get_settings(), patient.id, ConsentPurpose.CARE)
    assert f"/m/u/{unsubscribe}>" in message["List-Unsubscribe"]
    item = _item(db, item_id)
    assert item.status is OutboxStatus.SENT and item.provider_message_id == message["Message-ID"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("no_address", "suppressed:unreachable"),
        ("bounced", "suppressed:unreachable"),
        ("revoked", "suppressed:no_consent"),
        ("marketing_never_granted", "suppressed:no_consent"),
        ("do_not_disturb", "suppressed:excluded:do_not_disturb"),
    ],
)
def test_the_gates_stop_email_as_any_channel(relay: FakeSmtp, db: Session, setup: str, reason: str) -> None:
    patient = _patient(db, email=None if setup == "no_address" else "lan@example.vn")
    purpose = ConsentPurpose.MARKETING if setup == "marketing_never_granted" else ConsentPurpose.CARE
    if setup == "bounced":
        patient.email_bounced = True
    if setup == "revoked":
        do_revoke_consent(db, patient_id=patient.id, purpose=purpose, channel=Channel.EMAIL, source="test")
    if setup == "do_not_disturb":
        patient.do_not_disturb = True
    db.commit()
    item_id = _email(db, patient, purpose=purpose)
    assert send_item(item_id, NOW) == reason
    assert relay.received == []
    assert _item(db, item_id).status is OutboxStatus.SUPPRESSED


def test_email_waits_for_the_end_of_quiet_hours_like_sms(relay: FakeSmtp, db: Session) -> None:
    item_id = _email(db, _patient(db))
    assert send_item(item_id, QUIET) == "deferred:quiet_hours"
    assert relay.received == []
    assert _item(db, item_id).not_before.astimezone(NOW.tzinfo).hour == 0  # 08:00 in Shanghai


def test_revoking_sms_leaves_email_alone(relay: FakeSmtp, db: Session) -> None:
    patient = _patient(db)
    do_revoke_consent(
        db, patient_id=patient.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test"
    )
    db.commit()
    assert send_item(_email(db, patient), NOW) == "sent"


def test_a_resend_after_an_ambiguous_end_carries_the_same_message_id(relay: FakeSmtp, db: Session) -> None:
    item_id = _email(db, _patient(db))
    relay.hang_after_data()
    assert send_item(item_id, NOW) == "retry"
    item = _item(db, item_id)
    assert (item.status, item.reason) == (OutboxStatus.PENDING, "ambiguous")
    assert send_item(item_id, item.not_before) == "sent"
    first, second = relay.received  # the documented bound: one duplicate per ambiguous attempt
    assert first.message["Message-ID"] == second.message["Message-ID"]


def test_no_such_mailbox_at_submission_stops_email_until_the_address_changes(
    relay: FakeSmtp, db: Session
) -> None:
    patient = _patient(db)
    relay.fail("RCPT", 550, "5.1.1 <lan.nguyen@example.vn>: user unknown")
    item_id = _email(db, patient)
    assert send_item(item_id, NOW) == "failed"
    db.expire_all()
    assert db.get(Patient, patient.id).email_bounced  # type: ignore[union-attr]
    assert _item(db, item_id).last_error.startswith("smtp_550_5.1.1")  # type: ignore[union-attr]
    assert send_item(_email(db, patient), NOW) == "suppressed:unreachable"
    assert not db.get(Patient, patient.id).invalid_contact  # type: ignore[union-attr]  # SMS still goes


def test_a_transient_refusal_is_retried(relay: FakeSmtp, db: Session) -> None:
    item_id = _email(db, _patient(db))
    relay.fail("DATA-END", 451, "4.3.0 try later")
    assert send_item(item_id, NOW) == "retry"
    assert (_item(db, item_id).reason, relay.received) == ("retry", [])
    assert send_item(item_id, NOW + timedelta(hours=2)) == "sent"


# --- bounces ----------------------------------------------------------------------------------------


def _sent(relay: FakeSmtp, db: Session, patient: Patient) -> tuple[int, str, str]:
    item_id = _email(db, patient)
    assert send_item(item_id, NOW) == "sent"
    got = relay.received[-1]
    return item_id, got.envelope_from, str(got.message["Message-ID"])


def test_a_hard_bounce_fails_the_item_and_stops_the_address_until_staff_edit_it(
    relay: FakeSmtp, db: Session, client: TestClient
) -> None:
    patient = _patient(db)
    item_id, verp, message_id = _sent(relay, db, patient)
    raw = bounce(to=verp, recipient="lan.nguyen@example.vn", status="5.1.1", message_id=message_id)
    assert _hook(client, raw, verp) == (200, "hard_bounce")
    item = _item(db, item_id)
    assert (item.status, item.reason, item.last_error) == (OutboxStatus.FAILED, "bounced", "dsn 5.1.1")
    assert db.get(Patient, patient.id).email_bounced  # type: ignore[union-attr]
    assert [a.detail["status"] for a in _audits(db, "outbox.bounced")] == ["5.1.1"]
    assert "lan" not in str(_audits(db, "outbox.bounced")[0].detail)  # no address in the audit
    assert send_item(_email(db, patient), NOW) == "suppressed:unreachable"

    factories.staff(db, username="agent", role=Role.SERVICE_AGENT)
    db.commit()
    sign_in(client, "agent")
    token = _csrf(client.get(f"/staff/patients/{patient.id}").text)
    page = client.get(f"/staff/patients/{patient.id}")
    assert 'id="email-bounced"' in page.text and "l***@example.vn" in page.text
    done = client.post(
        f"/staff/patients/{patient.id}/email", data={"email": "lan.n@example.vn", "csrf_token": token}
    )
    assert done.status_code == 200 and "The email address was saved." in done.text
    db.expire_all()
    edited = db.get(Patient, patient.id)
    assert edited is not None and edited.email == "lan.n@example.vn" and not edited.email_bounced
    [audit] = _audits(db, "patient.email_set")
    assert audit.detail["was_bounced"] is True and "lan" not in str(audit.detail)
    assert send_item(_email(db, edited), NOW) == "sent"


def test_a_soft_bounce_fails_the_item_but_keeps_the_address(
    relay: FakeSmtp, db: Session, client: TestClient
) -> None:
    patient = _patient(db)
    item_id, verp, message_id = _sent(relay, db, patient)
    raw = bounce(to=verp, recipient="lan.nguyen@example.vn", status="5.2.2", message_id=message_id)
    assert _hook(client, raw, None) == (200, "bounce")  # the recipient read from the report's To
    assert _item(db, item_id).status is OutboxStatus.FAILED
    assert not db.get(Patient, patient.id).email_bounced  # type: ignore[union-attr]


def test_a_bounce_found_by_its_quoted_message_id_when_the_address_lost_its_token(
    relay: FakeSmtp, db: Session, client: TestClient
) -> None:
    patient = _patient(db)
    item_id, _, message_id = _sent(relay, db, patient)
    mangled = f"bounces+{item_id}-00000000000000000000@{DOMAIN}"
    raw = bounce(to=mangled, recipient="lan.nguyen@example.vn", status="5.1.1", message_id=message_id)
    assert _hook(client, raw, mangled) == (200, "hard_bounce")
    assert _item(db, item_id).reason == "bounced"


def test_a_delay_report_changes_nothing(relay: FakeSmtp, db: Session, client: TestClient) -> None:
    patient = _patient(db)
    item_id, verp, _ = _sent(relay, db, patient)
    assert _hook(client, sample("rfc3464_10_4_delayed.eml"), verp) == (200, "bounce")
    assert _item(db, item_id).status is OutboxStatus.SENT


@pytest.mark.parametrize(
    ("case", "status"),
    [("no_token", 403), ("wrong_token", 403), ("not_a_dsn", 400), ("forged_item", 404), ("stranger", 400)],
)
def test_the_hook_refuses_what_is_not_ours_and_changes_nothing(
    relay: FakeSmtp, db: Session, client: TestClient, case: str, status: int
) -> None:
    patient = _patient(db)
    item_id, verp, _ = _sent(relay, db, patient)
    raw = bounce(to=verp, recipient="x@example.vn", status="5.1.1", message_id="<someone@else.example>")
    to = verp
    token = HOOK_TOKEN
    if case == "no_token":
        token = ""
    elif case == "wrong_token":
        token = "not-the-token"
    elif case == "not_a_dsn":
        raw = b"From: someone@example.vn\r\nSubject: Out of office\r\n\r\nI am away."
    elif case == "forged_item":
        to = f"bounces+{item_id}-ffffffffffffffffffff@{DOMAIN}"
    elif case == "stranger":
        to = f"postmaster@{DOMAIN}"
    assert _hook(client, raw, to, token)[0] == status
    assert _item(db, item_id).status is OutboxStatus.SENT
    assert not db.get(Patient, patient.id).email_bounced  # type: ignore[union-attr]


def test_the_hook_is_closed_when_not_configured(
    relay: FakeSmtp, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CARELOOP_EMAIL_HOOK_TOKEN")
    reset_caches()
    assert _hook(client, b"x", None)[0] == 404


# --- unsubscribe ------------------------------------------------------------------------------------


def _link_path(relay: FakeSmtp) -> str:
    header = str(relay.received[-1].message["List-Unsubscribe"])
    url = re.search(r"<(https?://[^>]+)>", header)
    assert url is not None
    return urlsplit(url.group(1)).path


def test_one_click_unsubscribe_revokes_email_for_that_purpose_only(
    relay: FakeSmtp, db: Session, client: TestClient
) -> None:
    patient = _patient(db, language="zh-CN")
    _sent(relay, db, patient)
    path = _link_path(relay)
    page = client.get(path)  # a mail scanner opening the link changes nothing
    assert page.status_code == 200 and "不再接收" in page.text and 'lang="zh-CN"' in page.text
    assert has_consent(db, patient.id, ConsentPurpose.CARE, Channel.EMAIL)
    done = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "已退订" in done.text
    db.expire_all()
    assert not has_consent(db, patient.id, ConsentPurpose.CARE, Channel.EMAIL)
    assert has_consent(db, patient.id, ConsentPurpose.CARE, Channel.SMS)
    [event] = db.scalars(sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient.id))
    assert (event.source, event.channel, event.granted) == ("email:unsubscribe_link", Channel.EMAIL, False)
    assert len(_audits(db, "consent.revoke")) == 1
    assert client.post(path).status_code == 200  # twice: still done, nothing more recorded
    assert len(_audits(db, "consent.revoke")) == 1
    assert send_item(_email(db, patient), NOW) == "suppressed:no_consent"
    assert "已退订" in client.get(path).text


def test_a_forged_unsubscribe_link_changes_nothing(relay: FakeSmtp, db: Session, client: TestClient) -> None:
    patient = _patient(db)
    forged = f"/m/u/{patient.id}-care-00000000000000000000"
    assert client.post(forged).status_code == 404
    assert client.get(f"/m/u/{patient.id}-care-zz").status_code == 404
    assert has_consent(db, patient.id, ConsentPurpose.CARE, Channel.EMAIL)


def test_the_mailto_unsubscribe_arrives_through_the_hook(
    relay: FakeSmtp, db: Session, client: TestClient
) -> None:
    patient = _patient(db)
    _sent(relay, db, patient)
    header = str(relay.received[-1].message["List-Unsubscribe"])
    mailto = re.search(r"<mailto:([^?>]+)", header)
    assert mailto is not None
    raw = f"From: lan.nguyen@example.vn\r\nTo: {mailto.group(1)}\r\nSubject: unsubscribe\r\n\r\n".encode()
    assert _hook(client, raw, mailto.group(1)) == (200, "unsubscribed")
    db.expire_all()
    assert not has_consent(db, patient.id, ConsentPurpose.CARE, Channel.EMAIL)
    assert db.scalars(sa.select(ConsentEvent.source)).all() == ["email:unsubscribe_mail"]


# --- the record's address field ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "value", "status", "reason"),
    [
        (Role.NURSE, "new@example.vn", 403, "You may not change the patient&#39;s contact details."),
        (Role.SERVICE_AGENT, "not an address", 400, "Enter one email address, such as name@example.com."),
    ],
)
def test_editing_the_address_is_refused_with_a_reason_and_changes_nothing(
    db: Session, client: TestClient, role: Role, value: str, status: int, reason: str
) -> None:
    dept = factories.department(db)
    patient = factories.patient(db, email="lan@example.vn", dept=dept)
    factories.staff(db, username="someone", role=role, departments=[dept])
    db.commit()
    sign_in(client, "someone")
    token = _csrf(client.get(f"/staff/patients/{patient.id}").text)
    refused = client.post(f"/staff/patients/{patient.id}/email", data={"email": value, "csrf_token": token})
    assert refused.status_code == status and reason in refused.text
    db.expire_all()
    assert db.get(Patient, patient.id).email == "lan@example.vn"  # type: ignore[union-attr]
    assert _audits(db, "patient.email_set") == []
    assert len(_audits(db, "patient.email_denied")) == (1 if role is Role.NURSE else 0)


def test_clearing_the_address_is_audited(db: Session, client: TestClient) -> None:
    patient = factories.patient(db, email="lan@example.vn")
    factories.staff(db, username="agent", role=Role.SERVICE_AGENT)
    db.commit()
    sign_in(client, "agent")
    token = _csrf(client.get(f"/staff/patients/{patient.id}").text)
    client.post(f"/staff/patients/{patient.id}/email", data={"email": "", "csrf_token": token})
    db.expire_all()
    cleared = db.get(Patient, patient.id)
    assert cleared is not None and cleared.email is None and cleared.email_bidx is None
    assert len(_audits(db, "patient.email_cleared")) == 1


# --- plans ------------------------------------------------------------------------------------------


def test_a_follow_up_plan_sends_its_form_by_email_and_falls_back_without_an_address(
    relay: FakeSmtp, db: Session, no_quiet_hours: None
) -> None:
    patient, _, _ = _setup(db, channels=["email", "sms"])
    patient.email = "lan@example.vn"
    db.commit()
    run_planner(db, PLAN_NOW)
    db.commit()
    assert dispatch_due(PLAN_NOW) == {"sent:email": 1}
    item = db.scalars(sa.select(OutboxItem)).one()
    if item.status is OutboxStatus.PENDING:  # the dispatcher kicks it; send it here if it has not gone
        send_item(item.id, PLAN_NOW)
    [got] = relay.received
    html = str(got.message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert re.search(r'<a href="http[^"]+/q/[^"]+">', html)  # the form's link, signed, not the reference
    assert "careloop-link:" not in got.data.decode()


def test_a_merge_carries_the_address_and_what_its_bounces_taught(db: Session) -> None:
    old = factories.patient(db, email="lan@example.vn")
    old.email_bounced = True
    survivor = factories.patient(db)
    do_merge_patients(db, old, survivor, source="test")
    db.commit()
    db.expire_all()
    moved = db.get(Patient, survivor.id)
    assert moved is not None and moved.email == "lan@example.vn" and moved.email_bounced
    assert moved.email_bidx == Patient.email_index("lan@example.vn")
    assert db.get(Patient, old.id).email is None  # type: ignore[union-attr]
