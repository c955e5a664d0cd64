"""The data-rights pages through the real app: asking from the record, the privacy officer's decision,
break-glass from the refusal page and its review, the access report and the export's downloads."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    BreakGlass,
    Patient,
    RightsRequest,
    RightsState,
    Role,
    WorkJob,
    WorkState,
)
from backend.work import runs
from tests import factories
from tests.backend.admin.helpers import admin, sign_in


def _actions(db: Session) -> list[str]:
    return list(db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_a_correction_asked_on_the_record_is_approved_by_the_privacy_officer(
    client: TestClient, db: Session
) -> None:
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    officer = admin(db)
    person = factories.patient(db, name="Alise Wang", dept=dept)
    db.commit()
    token = sign_in(client, nurse)
    page = client.get(f"/staff/patients/{person.id}")
    assert 'id="rights-form"' in page.text
    # a bad date: refused with its reason, nothing recorded
    bad = client.post(
        f"/staff/patients/{person.id}/rights",
        data={"csrf_token": token, "kind": "correction", "birth_date": "17/05/1960", "reason": "typo"},
    )
    assert bad.status_code == 409 and "A corrected value is not valid" in bad.text
    assert db.scalar(sa.select(sa.func.count()).select_from(RightsRequest)) == 0
    asked = client.post(
        f"/staff/patients/{person.id}/rights",
        data={
            "csrf_token": token,
            "kind": "correction",
            "name": "Alice Wang",
            "reason": "Spelling, ID card shown",
        },
        follow_redirects=False,
    )
    assert asked.status_code == 303 and asked.headers["location"].endswith("done=rights#rights")
    request = db.scalars(sa.select(RightsRequest)).one()
    # the nurse cannot open the officer's pages
    assert client.get("/staff/privacy/requests").status_code == 403
    client.cookies.clear()
    token = sign_in(client, officer)
    listing = client.get("/staff/privacy/requests?state=pending")
    assert f'data-request="{request.id}"' in listing.text
    assert client.get("/staff/privacy/requests?state=nonsense").status_code == 400
    exported = list(csv.reader(io.StringIO(client.get("/staff/privacy/requests.csv").text)))
    assert exported[1][2:4] == ["correction", "pending"]
    detail = client.get(f"/staff/privacy/requests/{request.id}")
    assert "Alice Wang" in detail.text and "Alise Wang" in detail.text
    done = client.post(
        f"/staff/privacy/requests/{request.id}/approve",
        data={"csrf_token": token, "note": ""},
        follow_redirects=False,
    )
    assert done.status_code == 303
    db.expire_all()
    assert db.get(Patient, person.id).name == "Alice Wang"  # type: ignore[union-attr]
    assert db.get(RightsRequest, request.id).state is RightsState.APPLIED  # type: ignore[union-attr]
    assert "rights.applied" in _actions(db)


def test_a_held_approval_is_refused_on_the_page_and_lists_the_hold(client: TestClient, db: Session) -> None:
    from tests.backend.privacy.helpers import open_complaint

    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    officer = admin(db)
    person = factories.patient(db, name="Bo Li", dept=dept)
    db.commit()
    token = sign_in(client, nurse)
    client.post(
        f"/staff/patients/{person.id}/rights",
        data={"csrf_token": token, "kind": "anonymisation", "reason": "Leaving the programme"},
    )
    open_complaint(db, db.get(Patient, person.id))  # type: ignore[arg-type]
    db.commit()
    request = db.scalars(sa.select(RightsRequest)).one()
    client.cookies.clear()
    token = sign_in(client, officer)
    held = client.post(f"/staff/privacy/requests/{request.id}/approve", data={"csrf_token": token})
    assert held.status_code == 409
    assert "An open complaint case" in held.text
    db.expire_all()
    assert db.get(Patient, person.id).name == "Bo Li"  # type: ignore[union-attr]
    assert "rights.approve_held" in _actions(db)


def test_break_glass_from_the_refusal_page_opens_the_record_and_is_reviewed(
    client: TestClient, db: Session
) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[cardio])
    officer = admin(db)
    person = factories.patient(db, name="Chen Jie", dept=ortho)
    db.commit()
    token = sign_in(client, nurse)
    denied = client.get(f"/staff/patients/{person.id}")
    assert denied.status_code == 403 and "Break the glass" in denied.text
    short = client.post(
        f"/staff/patients/{person.id}/break-glass", data={"csrf_token": token, "reason": "urgent"}
    )
    assert short.status_code == 400 and "Give the reason" in short.text
    assert db.scalar(sa.select(sa.func.count()).select_from(BreakGlass)) == 0
    opened = client.post(
        f"/staff/patients/{person.id}/break-glass",
        data={"csrf_token": token, "reason": "Collapsed in the lobby, checking allergies"},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    assert client.get(f"/staff/patients/{person.id}").status_code == 200
    # a record of her own departments needs no glass broken: back to it, no grant
    own = factories.patient(db, dept=cardio)
    db.commit()
    again = client.post(
        f"/staff/patients/{own.id}/break-glass",
        data={"csrf_token": token, "reason": "Just checking something here"},
        follow_redirects=False,
    )
    assert again.status_code == 303 and again.headers["location"] == f"/staff/patients/{own.id}"
    assert db.scalar(sa.select(sa.func.count()).select_from(BreakGlass)) == 1
    client.cookies.clear()
    token = sign_in(client, officer)
    review = client.get("/staff/privacy/break-glass")
    assert "Collapsed in the lobby" in review.text
    grant = db.scalars(sa.select(BreakGlass)).one()
    rows = list(csv.reader(io.StringIO(client.get("/staff/privacy/break-glass.csv").text)))
    assert rows[1][5] == "Collapsed in the lobby, checking allergies" and rows[1][6] == "1"
    client.post(f"/staff/privacy/break-glass/{grant.id}/review", data={"csrf_token": token, "note": "ok"})
    db.expire_all()
    assert db.get(BreakGlass, grant.id).reviewed_by_id == officer.id  # type: ignore[union-attr]
    assert f'data-grant="{grant.id}"' not in client.get("/staff/privacy/break-glass").text


def test_the_access_report_is_for_managers_and_admins_and_exports_csv(
    client: TestClient, db: Session
) -> None:
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    manager = factories.staff(db, username="boss", role=Role.MANAGER)
    person = factories.patient(db, dept=dept)
    db.commit()
    sign_in(client, nurse)
    client.get(f"/staff/patients/{person.id}")
    assert client.get(f"/staff/patients/{person.id}/access").status_code == 403
    client.cookies.clear()
    sign_in(client, manager)
    page = client.get(f"/staff/patients/{person.id}/access?views_only=1")
    assert page.status_code == 200 and "Nurse" in page.text
    assert client.get(f"/staff/patients/{person.id}/access?since=yesterday").status_code == 400
    rows = list(csv.reader(io.StringIO(client.get(f"/staff/patients/{person.id}/access.csv").text)))
    assert [r[1] for r in rows[1:]].count("Nurse") == 1
    assert "privacy.access_export" in _actions(db)


def test_the_export_runs_as_long_work_and_each_download_is_audited(client: TestClient, db: Session) -> None:
    pytest.importorskip("weasyprint", reason="the PDF half needs WeasyPrint")
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    other = factories.staff(db, username="other", departments=[dept])
    person = factories.patient(db, dept=dept)
    db.commit()
    token = sign_in(client, nurse)
    started = client.post(
        f"/staff/patients/{person.id}/export", data={"csrf_token": token}, follow_redirects=False
    )
    assert started.status_code == 303 and started.headers["location"].startswith("/staff/work/")
    runs.wait_for_background()
    job = db.scalars(sa.select(WorkJob)).one()
    db.refresh(job)
    assert job.state is WorkState.DONE, job.failure
    page = client.get(f"/staff/privacy/exports/{job.id}")
    assert "record.pdf" in page.text
    pdf = client.get(f"/staff/privacy/exports/{job.id}/record.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("attachment")
    bundle = client.get(f"/staff/privacy/exports/{job.id}/bundle.json").json()
    assert bundle["resourceType"] == "Bundle"
    downloads = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "privacy.export_download")).all()
    assert [(d.patient_id, d.detail["file"]) for d in downloads] == [
        (person.id, "record.pdf"),
        (person.id, "bundle.json"),
    ]
    # a colleague who did not start it does not get the files
    client.cookies.clear()
    sign_in(client, other)
    assert client.get(f"/staff/privacy/exports/{job.id}/record.pdf").status_code == 404
