"""Outreach batches on both databases: lists matched to patients, sends refused without the sender's own
preview or with changed counts, approval by a second person, the send as long work through the outbox
to a local Twilio (once per patient, gates applied when each item goes), cancel, and the report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.audiences.filters import Audience
from backend.models import (
    AuditEvent,
    BatchPurpose,
    BatchState,
    Department,
    OutboxItem,
    OutboxStatus,
    OutreachBatch,
    Patient,
    Role,
    StaffUser,
    WorkJob,
    WorkState,
)
from backend.models.base import utcnow
from backend.outbox.sender import drain_outbox
from backend.outreach.batches import (
    do_approve,
    do_cancel,
    do_create_batch,
    do_preview,
    do_send,
    rendered,
    start_scheduled_batches,
)
from backend.outreach.lists import match_list
from backend.outreach.report import batch_report
from backend.services.consents import do_grant_consent, do_revoke_consent
from backend.services.refusal import ActionRefused, Reason
from backend.work import runs
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches

SENDER = "+15005550006"


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", SENDER)
        monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "2")
        reset_caches()
        yield fake
        reset_caches()


def _people(db: Session, n: int) -> tuple[Department, list[Patient], StaffUser, StaffUser]:
    dept = factories.department(db)
    people = [factories.patient(db, dept=dept, language=("zh-CN" if i % 2 else "en")) for i in range(n)]
    maker = factories.staff(db, username="manager1", role=Role.MANAGER)
    checker = factories.staff(db, username="manager2", role=Role.MANAGER)
    return dept, people, maker, checker


def _batch(db: Session, dept: Department, maker: StaffUser, **kw: object) -> OutreachBatch:
    values: dict[str, object] = {
        "name": "Flu clinic",
        "purpose": BatchPurpose.CARE,
        "channel": Channel.SMS,
        "messages": {"en": "Flu vaccination opens Monday.", "zh-CN": "流感疫苗门诊周一开放。"},
        "audience": Audience(department_ids=(dept.id,)),
    }
    values.update(kw)
    return do_create_batch(db, staff=maker, **values)  # type: ignore[arg-type]


def _refused(reason: Reason) -> pytest.RaisesExc[ActionRefused]:
    return pytest.raises(ActionRefused, match=f"^{reason.value}$")


def test_an_uploaded_list_matches_mrn_id_number_and_phone_and_lists_the_rest(db: Session) -> None:
    a = factories.patient(db, mrn="MRN-77")
    b = factories.patient(db, id_number="110101199003070011")
    c = factories.patient(db, phone="+8613800138123")
    db.flush()
    text = "mrn\nmrn-77\n110101199003070011, extra\n138 0013 8123\n+1 555 01\nNOBODY9\n\nMRN-77\n"
    matched = match_list(db, text)
    assert matched.rows == 6
    assert matched.patient_ids == sorted({a.id, b.id, c.id})
    assert matched.unmatched == [
        {"row": 5, "value": "+1*******", "reason": "bad_number"},
        {"row": 6, "value": "NO*****", "reason": "not_found"},
    ]


def test_a_batch_needs_a_name_a_message_and_one_kind_of_recipients(db: Session) -> None:
    dept, _, maker, _ = _people(db, 1)
    with _refused(Reason.BATCH_NAME):
        _batch(db, dept, maker, name=" ")
    with _refused(Reason.BATCH_MESSAGE):
        _batch(db, dept, maker, messages={"en": "  ", "fr": "Bonjour"})
    with _refused(Reason.BATCH_MESSAGE):
        _batch(db, dept, maker, messages={"en": "x" * 1001})
    with _refused(Reason.BATCH_RECIPIENTS):
        _batch(db, dept, maker, listing="MRN-1")
    with _refused(Reason.BATCH_LIST):
        _batch(db, dept, maker, audience=None, listing="\n\n")
    with _refused(Reason.CHANNEL_NOT_SUPPORTED):
        _batch(db, dept, maker, channel=Channel.VOICE)


def test_sending_needs_the_senders_own_preview_of_this_batch_with_the_same_counts(db: Session) -> None:
    dept, people, maker, checker = _people(db, 4)
    batch = _batch(db, dept, maker)
    other = _batch(db, dept, maker, name="Other")
    theirs = do_preview(db, batch, checker)
    of_other = do_preview(db, other, maker)
    with _refused(Reason.PREVIEW_REQUIRED):
        do_send(db, batch, maker, theirs.id)
    with _refused(Reason.PREVIEW_REQUIRED):
        do_send(db, batch, maker, of_other.id)
    with _refused(Reason.PREVIEW_REQUIRED):
        do_send(db, batch, maker, 999_999)
    mine = do_preview(db, batch, maker)
    assert mine.counts["send"] + sum(mine.counts["defer"].values()) == 4
    do_revoke_consent(
        db, patient_id=people[0].id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t"
    )
    with _refused(Reason.COUNTS_CHANGED):
        do_send(db, batch, maker, mine.id)
    fresh = do_preview(db, batch, maker)
    job = do_send(db, batch, maker, fresh.id)
    assert batch.state is BatchState.SENDING and batch.job_id == job.id
    with _refused(Reason.BATCH_NOT_DRAFT):
        do_preview(db, batch, maker)


def test_marketing_with_nobody_opted_in_sends_nothing_and_says_why(db: Session) -> None:
    dept, _, maker, _ = _people(db, 3)
    batch = _batch(db, dept, maker, purpose=BatchPurpose.MARKETING)
    preview = do_preview(db, batch, maker)
    assert preview.counts["send"] == 0 and preview.counts["suppress"] == {"no_consent": 3}
    with _refused(Reason.NOTHING_TO_SEND):
        do_send(db, batch, maker, preview.id)


def test_a_batch_over_the_threshold_needs_a_second_persons_approval_of_the_same_counts(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_OUTREACH_APPROVAL_THRESHOLD", "2")
    get_settings.cache_clear()
    dept, people, maker, checker = _people(db, 4)
    batch = _batch(db, dept, maker)
    mine = do_preview(db, batch, maker)
    with _refused(Reason.APPROVAL_REQUIRED):
        do_send(db, batch, maker, mine.id)
    with _refused(Reason.OWN_BATCH):
        do_approve(db, batch, maker, mine.id)
    with _refused(Reason.PREVIEW_REQUIRED):
        do_approve(db, batch, checker, mine.id)  # she must see the counts herself
    seen = do_preview(db, batch, checker)
    do_approve(db, batch, checker, seen.id)
    assert batch.approved_by_id == checker.id and batch.approved_preview_id == seen.id
    # counts moved after the approval: a new preview of the sender's no longer matches the approved one
    do_revoke_consent(
        db, patient_id=people[0].id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t"
    )
    changed = do_preview(db, batch, maker)
    with _refused(Reason.APPROVAL_REQUIRED):
        do_send(db, batch, maker, changed.id)
    do_grant_consent(
        db, patient_id=people[0].id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t"
    )
    job = do_send(db, batch, maker, mine.id)  # the counts are those approved again
    assert job.kind == "outreach.send"
    get_settings.cache_clear()


def _quiet_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet hours around the present hour in Shanghai, so queued items wait (deferred) and the test
    decides when they go."""
    hour = datetime.now(ZoneInfo("Asia/Shanghai")).hour
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_START", str(hour))
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_END", str((hour + 2) % 24))
    get_settings.cache_clear()


def _run(db: Session, job_id: int) -> WorkJob:
    runs.run_job(job_id)
    db.expire_all()
    job = db.get(WorkJob, job_id)
    assert job is not None
    return job


def test_the_send_queues_each_patient_once_and_the_gates_still_decide_when_each_goes(
    db: Session, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    _quiet_now(monkeypatch)
    monkeypatch.setattr("backend.outreach.sending.CHUNK", 3)
    dept, people, maker, _ = _people(db, 8)
    people[1].deceased = True
    batch = _batch(db, dept, maker)
    preview = do_preview(db, batch, maker)
    assert preview.counts == {
        "send": 0,
        "defer": {"quiet_hours": 7},
        "suppress": {"excluded:deceased": 1},
        "languages": {"en": 4, "zh-CN": 3},
    }
    job = do_send(db, batch, maker, preview.id)
    db.commit()
    job = _run(db, job.id)
    assert job.state is WorkState.DONE and job.done == job.total == 8 and job.counts == {"queued": 8}
    items = db.scalars(sa.select(OutboxItem).where(OutboxItem.batch_id == batch.outbox_key)).all()
    assert sorted(i.patient_id for i in items) == sorted(p.id for p in people)
    assert twilio.messages == []  # quiet hours: all deferred
    # a patient revokes consent while her item waits: she gets nothing
    revoker = people[2]
    do_revoke_consent(db, patient_id=revoker.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    # the job run again (a resumed worker) queues nobody twice: the unique key and the cursor hold it
    db.execute(sa.update(WorkJob).where(WorkJob.id == job.id).values(state=WorkState.QUEUED))
    db.execute(sa.update(OutreachBatch).where(OutreachBatch.id == batch.id).values(state=BatchState.SENDING))
    db.commit()
    _run(db, job.id)
    assert db.scalar(sa.select(sa.func.count()).where(OutboxItem.batch_id == batch.outbox_key)) == 8
    drain_outbox(utcnow() + timedelta(hours=3))
    reached = {m.params["To"] for m in twilio.messages}
    expected = {p.phone for p in people if p.id not in {people[1].id, revoker.id}}
    assert reached == expected and len(twilio.messages) == 6
    bodies = {m.params["To"]: m.params["Body"] for m in twilio.messages}
    assert bodies[people[0].phone] == "Flu vaccination opens Monday."
    assert bodies[people[3].phone] == "流感疫苗门诊周一开放。"
    db.expire_all()
    report = batch_report(db, db.get(OutreachBatch, batch.id))  # type: ignore[arg-type]
    assert report.queued == 8 and report.sent == 6
    assert dict(report.suppressed) == {"excluded:deceased": 1, "no_consent": 1}
    assert report.opted_out == 1 and report.replied == 0
    get_settings.cache_clear()


def test_cancel_stops_the_job_and_withdraws_what_has_not_gone(
    db: Session, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    _quiet_now(monkeypatch)
    dept, _, maker, _ = _people(db, 3)
    batch = _batch(db, dept, maker)
    job = do_send(db, batch, maker, do_preview(db, batch, maker).id)
    db.commit()
    _run(db, job.id)
    db.expire_all()
    batch = db.get(OutreachBatch, batch.id)  # type: ignore[assignment]
    assert do_cancel(db, batch, maker) == 3
    db.commit()
    drain_outbox(utcnow() + timedelta(hours=3))
    assert twilio.messages == []
    statuses = set(db.scalars(sa.select(OutboxItem.reason).where(OutboxItem.batch_id == batch.outbox_key)))
    assert statuses == {"batch_cancelled"} and batch.state is BatchState.CANCELLED
    assert batch_report(db, batch).suppressed == {"batch_cancelled": 3}
    assert {s for s in db.scalars(sa.select(OutboxItem.status))} == {OutboxStatus.SUPPRESSED}
    get_settings.cache_clear()


def test_the_rendered_messages_show_sms_parts_and_wechat_template_fields(db: Session) -> None:
    dept, _, maker, _ = _people(db, 1)
    sms = _batch(db, dept, maker, messages={"en": "a" * 161, "vi": "Xin chào bạn", "zh-CN": "你好"})
    shown = {r.lang: r for r in rendered(sms, get_settings())}
    assert (shown["en"].encoding, shown["en"].segments) == ("GSM-7", 2)
    assert (shown["vi"].encoding, shown["vi"].segments) == ("UCS-2", 1)
    assert list(shown) == ["zh-CN", "vi", "en"] and shown["en"].template_fields == {}
    wechat = _batch(
        db,
        dept,
        maker,
        channel=Channel.WECHAT,
        messages={"zh-CN": "请于下周一前来门诊接种流感疫苗，谢谢配合与支持"},
    )
    [zh] = rendered(wechat, get_settings())
    assert zh.template_fields["remark"] == "请于下周一前来门诊接种流感疫苗，谢谢配合与支持"
    assert "remark" in zh.long_fields


def test_a_scheduled_batch_waits_for_its_time_then_sends_through_the_gates(
    db: Session, twilio: FakeTwilio
) -> None:
    """Previewed and sent for tomorrow: nothing is queued until the periodic job reaches that time; then
    the job queues everyone once, and a patient who withdrew consent in between gets nothing."""
    dept, people, maker, _ = _people(db, 3)
    batch = _batch(db, dept, maker)
    preview = do_preview(db, batch, maker)
    now = utcnow()
    with _refused(Reason.SEND_TIME_PAST):
        do_send(db, batch, maker, preview.id, now=now, at=now - timedelta(minutes=1))
    at = now + timedelta(days=1)
    assert do_send(db, batch, maker, preview.id, now=now, at=at) is None
    db.commit()
    assert batch.state is BatchState.SCHEDULED and batch.scheduled_for == at and batch.job_id is None
    assert start_scheduled_batches(db, now=at - timedelta(seconds=1)) == []  # not yet
    with _refused(Reason.BATCH_NOT_DRAFT):
        do_send(db, batch, maker, preview.id, now=now)  # scheduled is not a draft: no second send
    do_revoke_consent(
        db, patient_id=people[0].id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t"
    )
    db.commit()
    jobs = start_scheduled_batches(db, now=at)
    db.commit()
    assert jobs == [batch.job_id] and batch.state is BatchState.SENDING
    assert start_scheduled_batches(db, now=at + timedelta(minutes=5)) == []  # started once
    assert _run(db, jobs[0]).counts == {"queued": 3}
    drain_outbox(at + timedelta(hours=12))  # whatever quiet hours say now, by then they are over
    assert {m.params["To"] for m in twilio.messages} == {people[1].phone, people[2].phone}
    actions = db.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.subject_id == batch.id).order_by(AuditEvent.id)
    ).all()
    assert [a for a in actions if a in {"outreach.schedule", "outreach.send"}] == [
        "outreach.schedule",
        "outreach.send",
    ]


def test_a_scheduled_batch_cancelled_before_its_time_never_sends(db: Session, twilio: FakeTwilio) -> None:
    dept, _people_list, maker, _ = _people(db, 2)
    batch = _batch(db, dept, maker)
    preview = do_preview(db, batch, maker)
    at = utcnow() + timedelta(hours=2)
    do_send(db, batch, maker, preview.id, at=at)
    assert do_cancel(db, batch, maker) == 0
    db.commit()
    assert start_scheduled_batches(db, now=at + timedelta(minutes=1)) == []
    assert batch.state is BatchState.CANCELLED and batch.job_id is None
    assert db.scalar(sa.select(sa.func.count()).where(OutboxItem.batch_id == batch.outbox_key)) == 0
