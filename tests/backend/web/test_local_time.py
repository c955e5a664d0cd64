"""Staff pages show times in the hospital's zone and name it; nothing says UTC any more."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from backend.models import Role, TaskPriority
from backend.web.local_time import local_time
from tests import factories
from tests.backend.security.test_staff_auth import sign_in
from tests.conftest import reset_caches


def test_a_stored_utc_time_is_shown_in_the_hospital_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_DEFAULT_TIMEZONE", "Asia/Shanghai")
    reset_caches()
    assert local_time(datetime(2026, 12, 7, 16, 30, tzinfo=UTC)) == "2026-12-08 00:30"
    assert local_time(datetime(2026, 12, 7, 16, 30)) == "2026-12-08 00:30"  # naive: stored UTC
    assert local_time(datetime(2026, 12, 7, 16, 30, tzinfo=UTC), "%Y-%m-%d") == "2026-12-08"
    monkeypatch.setenv("CARELOOP_DEFAULT_TIMEZONE", "Asia/Ho_Chi_Minh")
    reset_caches()
    assert local_time(datetime(2026, 12, 7, 16, 30, tzinfo=UTC)) == "2026-12-07 23:30"
    assert local_time(date(2026, 12, 7)) == "2026-12-07 00:00"  # a calendar date is not moved
    assert local_time(None) == ""


def test_the_inbox_and_the_task_page_show_local_times_with_the_zone(client: object, db: Session) -> None:
    dept = factories.department(db)
    factories.staff(db, username="nurse1", role=Role.NURSE, departments=[dept])
    person = factories.patient(db, dept=dept)
    raised = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    task = factories.task(db, person=person, dept=dept, priority=TaskPriority.NORMAL, now=raised)
    db.commit()
    due = local_time(task.due_at)  # 24 h later, in Shanghai: 15:00 on the 8th
    assert due == "2026-12-08 15:00"
    assert sign_in(client, "nurse1").status_code == 303  # type: ignore[arg-type]
    for page in ("/staff/inbox", f"/staff/inbox/{task.id}"):
        html = client.get(page).text  # type: ignore[attr-defined]
        assert due in html
        assert "Asia/Shanghai" in html
        assert "UTC" not in html
