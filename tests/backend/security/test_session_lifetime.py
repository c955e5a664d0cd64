"""A staff session ends `session_max_hours` after sign-in however busy it is: activity keeps it from idling
out, never alive for good (a stolen cookie stops working by the end of the shift)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.periodic import end_idle_sessions
from backend.models import AuditEvent, StaffSession
from backend.models.base import utcnow
from tests import factories
from tests.backend.security.test_staff_auth import sign_in


def _age(db: Session, hours: float) -> None:
    now = utcnow()
    db.execute(sa.update(StaffSession).values(created_at=now - timedelta(hours=hours), last_seen_at=now))
    db.commit()


def test_an_active_session_still_ends_after_its_lifetime(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, "nurse1")
    _age(db, 11.5)
    assert client.get("/staff/patients", follow_redirects=False).status_code == 200
    _age(db, 12.5)  # seen a moment ago, but signed in twelve and a half hours ago
    response = client.get("/staff/patients", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/staff/login"
    db.expire_all()
    assert db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id.desc())).first() == (
        "staff.session_expired"
    )


def test_the_periodic_job_ends_sessions_past_their_lifetime(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, "nurse1")
    _age(db, 13)
    assert end_idle_sessions() == 1
