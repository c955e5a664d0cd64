"""The outreach pages: managers only; a batch made from the form (a segment, or an uploaded file with its
unmatched rows listed), previewed, sent with its job, reported; refusals shown in words; the list
filters and exports; every step audited."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import Anchor, AuditEvent, FollowUpPlan, OutboxItem, OutreachBatch, Role
from backend.work import runs
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in


def _form(client: TestClient, **values: str) -> dict[str, str]:
    token = _csrf(client.get("/staff/outreach/new").text)
    base = {
        "csrf_token": token,
        "name": "Cardiology check-up",
        "purpose": "care",
        "channel": "sms",
        "message_en": "Please book your check-up.",
        "message_zh-CN": "请预约复查。",
        "recipients": "segment",
    }
    return base | values


def test_nurses_may_not_open_outreach(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    assert sign_in(client, "nurse1").status_code == 303
    assert client.get("/staff/outreach").status_code == 403
    assert client.get("/staff/outreach/new").status_code == 403
    db.expire_all()
    assert db.scalar(sa.select(AuditEvent.action).where(AuditEvent.action == "outreach.view_denied"))


def test_a_manager_creates_previews_sends_and_reads_the_report(
    client: TestClient, db: Session, no_quiet_hours: None
) -> None:
    dept = factories.department(db)
    people = [factories.patient(db, dept=dept) for _ in range(3)]
    people[0].do_not_disturb = True
    factories.staff(db, username="boss", role=Role.MANAGER)
    db.commit()
    assert sign_in(client, "boss").status_code == 303

    bad = client.post("/staff/outreach/new", data=_form(client, age_min="90", age_max="20"))
    assert bad.status_code == 400 and "Age to" in bad.text
    empty = client.post("/staff/outreach/new", data=_form(client, message_en="", **{"message_zh-CN": ""}))
    assert empty.status_code == 400 and "at least one language" in empty.text

    made = client.post(
        "/staff/outreach/new", data=_form(client, department=str(dept.id)), follow_redirects=False
    )
    assert made.status_code == 303
    url = made.headers["location"]
    page = client.get(url).text
    assert "Nothing is sent before you have seen a preview" in page and 'id="send-batch"' not in page
    assert "1 (GSM-7)" in page and "1 (UCS-2)" in page

    client.post(f"{url}/preview", data={"csrf_token": _csrf(page)})
    page = client.get(url).text
    assert '<td data-count="send">2</td>' in page
    assert 'data-count="suppress:excluded:do_not_disturb">1<' in page

    wrong = client.post(f"{url}/send", data={"csrf_token": _csrf(page), "preview_id": "0"})
    assert wrong.status_code == 400 and "Preview this batch yourself" in wrong.text
    preview_id = page.split('name="preview_id" value="')[1].split('"')[0]
    sent = client.post(f"{url}/send", data={"csrf_token": _csrf(page), "preview_id": preview_id})
    assert sent.status_code == 200  # the redirect followed to the batch page with the job's bar
    runs.wait_for_background()
    page = client.get(url).text
    assert 'id="report-chart"' in page and '<td data-report="suppressed">1</td>' in page
    db.expire_all()
    batch = db.scalars(sa.select(OutreachBatch)).one()
    assert db.scalar(sa.select(sa.func.count()).where(OutboxItem.batch_id == batch.outbox_key)) == 3
    actions = set(db.scalars(sa.select(AuditEvent.action)))
    assert {"outreach.create", "outreach.preview", "outreach.send", "outreach.view"} <= actions


def test_an_uploaded_file_lists_rows_that_matched_nobody(client: TestClient, db: Session) -> None:
    person = factories.patient(db, mrn="MRN-5")
    factories.staff(db, username="boss", role=Role.MANAGER)
    db.commit()
    assert sign_in(client, "boss").status_code == 303
    made = client.post(
        "/staff/outreach/new",
        data=_form(client, recipients="list"),
        files={"list_file": ("list.csv", b"mrn\nMRN-5\nMRN-404\n", "text/csv")},
        follow_redirects=False,
    )
    assert made.status_code == 303
    page = client.get(made.headers["location"]).text
    assert '<span id="listed-count">1</span>' in page and '<span id="unmatched-count">1</span>' in page
    assert "no patient with this MRN" in page
    db.expire_all()
    assert db.scalars(sa.select(OutreachBatch)).one().listed_patient_ids == [person.id]


def test_the_list_filters_and_exports(client: TestClient, db: Session) -> None:
    factories.department(db)
    factories.staff(db, username="boss", role=Role.MANAGER)
    db.commit()
    assert sign_in(client, "boss").status_code == 303
    client.post("/staff/outreach/new", data=_form(client, name="=SUM(A1)"))
    client.post("/staff/outreach/new", data=_form(client, name="Greetings", purpose="marketing"))
    listing = client.get("/staff/outreach?purpose=marketing").text
    assert "Greetings" in listing and "SUM" not in listing
    assert client.get("/staff/outreach?state=lost").status_code == 400
    rows = list(csv.reader(io.StringIO(client.get("/staff/outreach.csv").text)))
    assert rows[0][:3] == ["id", "name", "purpose"]
    assert {r[1] for r in rows[1:]} == {"'=SUM(A1)", "Greetings"}


def test_a_plans_population_page_shows_counts_channels_and_a_masked_sample(
    client: TestClient, db: Session
) -> None:
    dept = factories.department(db)
    person = factories.patient(db, dept=dept, name="王小明")  # discharged two days ago: day 3 is due soon
    plan = FollowUpPlan(
        name="Cardiology day 3",
        questionnaire_id="post_discharge",
        anchor=Anchor.DISCHARGE,
        department_ids=[dept.id],
        offsets_days=[3],
        channels=["wechat", "sms"],
        send_hour=10,
    )
    db.add(plan)
    factories.staff(db, username="boss", role=Role.MANAGER)
    db.commit()
    assert sign_in(client, "boss").status_code == 303
    assert f'href="/staff/outreach/plans/{plan.id}"' in client.get("/staff/outreach").text
    page = client.get(f"/staff/outreach/plans/{plan.id}").text
    assert '<td data-days="7">1</td>' in page and '<td data-days="30">1</td>' in page
    assert "王**" in page and "王小明" not in page and (person.phone or "") not in page
    assert client.get("/staff/outreach/plans/999999").status_code == 404
