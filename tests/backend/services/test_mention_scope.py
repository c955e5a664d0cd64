"""A mention gives access to the task, so it is limited: the task's department may bring anyone in, a
colleague there only by a mention may name only people who can see the task already (mention-only access
is not passed on), and a refused note says why and writes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import Role, TaskMention
from backend.services import inbox
from backend.services.refusal import ActionRefused
from tests import factories
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.test_inbox import _token, _world


def _mentioned(db: Session, task_id: int) -> set[int]:
    db.expire_all()
    return set(db.scalars(sa.select(TaskMention.staff_id).where(TaskMention.task_id == task_id)))


def test_mention_only_access_cannot_be_passed_on(client: TestClient, db: Session) -> None:
    w = _world(db)
    derm = factories.department(db)
    third = factories.staff(db, username="nurse3", departments=[derm])
    task = w.tasks["alice"]  # cardiology; nurse2 is orthopaedics
    inbox.do_add_note(db, task=task, staff_id=w.nurse.id, text="@nurse2 your view?")
    db.commit()
    sign_in(client, "nurse2")
    refused = client.post(
        f"/staff/inbox/{task.id}/note",
        data={"csrf_token": _token(client, task.id), "text": "@nurse3 have a look too"},
    )
    assert refused.status_code == 409
    assert "you can mention only people who can already see it" in refused.text
    assert third.id not in _mentioned(db, task.id)
    sign_in(client, "nurse3")
    assert client.get(f"/staff/inbox/{task.id}").status_code == 403


def test_who_may_be_named_by_whom(db: Session) -> None:
    w = _world(db)
    derm = factories.department(db)
    third = factories.staff(db, username="nurse3", departments=[derm])
    factories.staff(db, username="agent2", role=Role.SERVICE_AGENT)
    task = w.tasks["alice"]
    inbox.do_add_note(db, task=task, staff_id=w.nurse.id, text="@nurse2 your view?")  # her department
    # mentioned-only: the task's own staff, the service centre and those mentioned already are fine
    inbox.do_add_note(db, task=task, staff_id=w.ortho_nurse.id, text="@nurse1 @agent2 @nurse2 fine")
    with pytest.raises(ActionRefused, match="mention_outside"):
        inbox.do_add_note(db, task=task, staff_id=w.ortho_nurse.id, text="@nurse3 please")
    inbox.do_add_note(db, task=task, staff_id=w.agent.id, text="@nurse3 please")  # sees every department
    db.commit()
    assert third.id in _mentioned(db, task.id)
