"""The plan editor through the app: starting a plan, the preview of the unsaved form (whole page and the
script's fragment) storing nothing, problems named in the editor's words with what was typed kept, two
editors saving one draft, submit refused for a retired questionnaire, the list's filter and export, and
pause and resume."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.content import revisions as rv
from backend.content.plan import KIND
from backend.followup.catalog import do_publish
from backend.models import AuditEvent, ContentItem, ContentRevision, FollowUpPlan, RevisionState, Role
from backend.models.base import utcnow
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.backend.security.test_staff_auth import _csrf, sign_in

BASE = f"/staff/studio/items/{KIND}/cardio"


def _editor(client: TestClient, db: Session, username: str = "editor") -> str:
    factories.staff(db, username=username, role=Role.CONTENT_EDITOR)
    db.commit()
    assert sign_in(client, username).status_code == 303
    return _csrf(client.get("/staff").text)


def _version(page: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', page)
    assert found is not None
    return found.group(1)


def _form(csrf: str, version: str, dept_id: int, **changes: str) -> dict[str, object]:
    return {
        "csrf_token": csrf,
        "version": version,
        "name": "Cardiology discharges",
        "questionnaire_id": "recovery",
        "encounter_kinds": ["discharge"],
        "department_ids": [str(dept_id)],
        "diagnosis_prefixes": "",
        "procedure_codes": "",
        "anchor": "discharge",
        "offsets_days": "3, 30",
        "send_hour": "10",
        "channel_1": "wechat",
        "channel_2": "sms",
        "sample_percent": "100",
        "resend_after_hours": "48",
        "attempts_per_channel": "2",
        "excluded_flags": ["deceased"],
        **changes,
    }


def test_a_plan_is_started_previewed_unsaved_saved_and_submitted(client: TestClient, db: Session) -> None:
    do_publish(db, DEFINITION)
    dept = factories.department(db)
    for days_ago in (1, 1, 10):
        patient = factories.patient(db)
        enc = factories.encounter(db, patient, dept)
        enc.ended_at = utcnow() - timedelta(days=days_ago)
    db.commit()
    csrf = _editor(client, db)
    started = client.post(
        "/staff/studio/plans/new",
        data={"csrf_token": csrf, "key": "cardio", "name": "Cardio"},
        follow_redirects=False,
    )
    assert started.status_code == 303 and started.headers["location"] == f"{BASE}/r/1"
    page = client.get(f"{BASE}/r/1")
    assert page.status_code == 200 and 'data-field="questionnaire_id"' in page.text  # the skeleton's one gap
    version = _version(page.text)

    fragment = client.post(
        f"{BASE}/r/1/preview", data={**_form(csrf, version, dept.id), "fragment": "1"}, follow_redirects=False
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert '<td data-days="30">3</td>' in fragment.text and 'id="plan-channels-chart"' in fragment.text
    whole = client.post(
        f"{BASE}/r/1/preview",
        data=_form(csrf, version, dept.id, offsets_days="3, 30"),
        follow_redirects=False,
    )
    assert whole.status_code == 200 and '<td data-days="7">2</td>' in whole.text
    db.expire_all()
    revision = db.scalars(sa.select(ContentRevision)).one()
    assert revision.body["questionnaire_id"] == ""  # previewing stored nothing
    assert db.scalar(sa.select(sa.func.count()).select_from(FollowUpPlan)) == 0
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "plan.preview")) == 2

    bad = client.post(
        f"{BASE}/r/1/save", data=_form(csrf, version, dept.id, offsets_days="3, soon"), follow_redirects=False
    )
    assert bad.status_code == 303  # a draft may hold problems; the editor names them
    shown = client.get(f"{BASE}/r/1").text
    assert 'data-field="offsets_days"' in shown and 'value="3, soon"' in shown
    refused = client.post(f"{BASE}/r/1/submit", data={"csrf_token": csrf}, follow_redirects=False)
    assert refused.headers["location"].endswith("error=content_invalid")
    good = client.post(f"{BASE}/r/1/save", data=_form(csrf, _version(shown), dept.id), follow_redirects=False)
    assert good.status_code == 303
    assert (
        client.post(f"{BASE}/r/1/submit", data={"csrf_token": csrf}, follow_redirects=False)
        .headers["location"]
        .endswith("done=submit")
    )
    db.expire_all()
    assert db.scalars(sa.select(ContentRevision)).one().state is RevisionState.IN_REVIEW


def test_a_second_editor_is_told_and_keeps_what_she_typed(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    item = rv.get_item(db, KIND, "cardio", create=True, clinical=True)
    rv.do_start_draft(db, item, author, body={"name": "x", "questionnaire_id": "recovery"})
    db.commit()
    csrf = _editor(client, db)
    version = _version(client.get(f"{BASE}/r/1").text)
    rv.do_save_draft(
        db, item, 1, author, version=int(version), body={"name": "first", "questionnaire_id": "q"}
    )
    db.commit()
    late = client.post(
        f"{BASE}/r/1/save", data=_form(csrf, version, dept.id, name="Mine"), follow_redirects=False
    )
    assert late.status_code == 409 and 'value="Mine"' in late.text and 'id="studio-error"' in late.text
    db.expire_all()
    assert db.scalars(sa.select(ContentRevision)).one().body["name"] == "first"


def test_submitting_a_plan_of_a_retired_questionnaire_is_refused(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    csrf = _editor(client, db)
    client.post(
        "/staff/studio/plans/new",
        data={"csrf_token": csrf, "key": "cardio", "name": "Cardio"},
        follow_redirects=False,
    )
    version = _version(client.get(f"{BASE}/r/1").text)
    client.post(
        f"{BASE}/r/1/save",
        data=_form(csrf, version, dept.id, questionnaire_id="gone"),
        follow_redirects=False,
    )
    refused = client.post(f"{BASE}/r/1/submit", data={"csrf_token": csrf}, follow_redirects=False)
    assert refused.headers["location"].endswith("error=content_invalid")
    assert "gone" in client.get(f"{BASE}/r/1").text
    db.expire_all()
    assert db.scalars(sa.select(ContentRevision)).one().state is RevisionState.DRAFT


def test_the_list_filters_exports_and_pauses(client: TestClient, db: Session) -> None:
    do_publish(db, DEFINITION)
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    item = rv.get_item(db, KIND, "cardio", create=True, clinical=True)
    body = {
        "name": "=Cardio",
        "questionnaire_id": "recovery",
        "offsets_days": [3],
        "send_hour": 10,
        "channels": ["sms"],
        "sample_ratio": 1.0,
        "resend_after_hours": 48,
        "attempts_per_channel": 2,
        "anchor": "discharge",
        "encounter_kinds": [],
        "department_ids": [],
        "ward_ids": [],
        "diagnosis_prefixes": [],
        "procedure_codes": [],
        "excluded_flags": [],
    }
    draft = rv.do_start_draft(db, item, author, body=body)
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, approver)
    db.add(FollowUpPlan(name="Seeded", questionnaire_id="recovery", offsets_days=[7], channels=["sms"]))
    db.commit()
    csrf = _editor(client, db)
    listed = client.get("/staff/studio/plans?state=active&q=cardio").text
    assert 'data-key="cardio"' in listed and "Seeded" not in listed
    export = client.get("/staff/studio/plans/export.csv?q=cardio")
    assert export.status_code == 200 and "'=Cardio" in export.text and "Seeded" not in export.text
    assert (
        client.post(
            "/staff/studio/plans/cardio/pause", data={"csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    again = client.post("/staff/studio/plans/cardio/pause", data={"csrf_token": csrf}, follow_redirects=False)
    assert again.headers["location"].endswith("error=plan_already_paused")
    db.expire_all()
    plan = db.scalars(sa.select(FollowUpPlan).where(FollowUpPlan.content_key == "cardio")).one()
    assert plan.active is False
    assert "Paused" in client.get("/staff/studio/plans?state=paused").text
    client.post("/staff/studio/plans/cardio/resume", data={"csrf_token": csrf}, follow_redirects=False)
    db.expire_all()
    assert db.get_one(FollowUpPlan, plan.id).active is True
    assert db.scalar(sa.select(ContentItem.published_number).where(ContentItem.key == "cardio")) == 1


def test_a_nurse_cannot_open_the_plans(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse", role=Role.NURSE)
    db.commit()
    sign_in(client, "nurse")
    assert client.get("/staff/studio/plans").status_code == 403
