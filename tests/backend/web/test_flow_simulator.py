"""The editors' flow simulator never reaches a real patient: a patient id sent in its state is ignored, and
registering in it with a real patient's phone and birth date binds a synthetic patient instead."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Patient, Role
from backend.services.consents import do_grant_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in


def _state(page: str) -> dict[str, Any]:
    match = re.search(r'name="sim" value="([^"]*)"', page)
    assert match, "no simulation state in the page"
    return dict(json.loads(html.unescape(match.group(1))))


def _turn(client: TestClient, page: str, sim: dict[str, Any], text: str = "", choice: str = "") -> str:
    form = {"csrf_token": _csrf(page), "sim": json.dumps(sim), "transcript": "[]", "text": text}
    if choice:
        form["choice"] = choice
    response = client.post("/staff/flows/simulate", data=form)
    assert response.status_code == 200
    return response.text


def _real_patient(db: Session) -> Patient:
    person = factories.patient(db, phone="+8613800138000", name="Wang Real")
    for channel in Channel:
        for purpose in ConsentPurpose:
            do_grant_consent(db, patient_id=person.id, purpose=purpose, channel=channel, source="test")
    factories.staff(db, username="editor", role=Role.CONTENT_EDITOR)
    db.commit()
    return person


def test_a_patient_id_sent_in_the_state_is_ignored(client: TestClient, db: Session) -> None:
    person = _real_patient(db)
    sign_in(client, "editor")
    page = client.get("/staff/flows/simulate?flow=consent").text
    forged = {"flow_id": "consent", "lang": "en", "state": None, "patient_id": person.id, "turns": 0}
    answer = _turn(client, page, forged)
    assert "given" not in answer  # the real patient's consents are not shown
    assert "I do not know your hospital record yet" in answer


def test_registering_in_the_simulator_binds_a_synthetic_patient(client: TestClient, db: Session) -> None:
    person = _real_patient(db)
    sign_in(client, "editor")
    page = client.get("/staff/flows/simulate?flow=registration").text
    sim = _state(page)
    page = _turn(client, page, sim, choice="phone")
    page = _turn(client, page, _state(page), text="13800138000")
    page = _turn(client, page, _state(page), text="1960-05-17")
    assert "your record is now linked" in page
    sim = _state(page)
    assert sim["synthetic"] is True and "patient_id" not in sim
    consent = _turn(client, page, {**sim, "flow_id": "consent", "state": None})
    assert "not asked yet" in consent and "given" not in consent  # the synthetic patient's consents
    db.expire_all()
    named = db.scalars(sa.select(AuditEvent.action).where(AuditEvent.patient_id == person.id)).all()
    assert [a for a in named if not a.startswith("consent.")] == []  # the lookup never ran
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1  # nothing saved
