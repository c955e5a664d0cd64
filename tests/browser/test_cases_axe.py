"""axe-core finds no serious or critical violations on the case pages and the patient's feedback page.

Uses the "record" branch's helper `tests/browser/axe.py`; until the branches are merged it is skipped."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.services import cases
from tests import factories
from tests.browser.test_cases_browser import _sign_in

axe = pytest.importorskip("tests.browser.axe", reason="tests/browser/axe.py arrives with the record branch")
pytestmark = pytest.mark.browser


def test_the_case_pages_have_no_serious_accessibility_violations(
    live_server: str, browser: Any, db: Session
) -> None:
    dept = factories.department(db)
    factories.staff(db, username="nurse1", departments=[dept])
    person = factories.patient(db, name="Alice Wang", dept=dept)
    case = cases.do_register_case(
        db,
        kind="complaint",
        text="The night nurse was rude.",
        patient_id=person.id,
        anonymous=False,
        department_id=dept.id,
        channel=None,
        conversation_id=None,
        actor="bot",
    )
    db.commit()
    page = _sign_in(browser, live_server, "nurse1")
    found = {}
    for url in (
        f"/staff/cases/{case.id}",
        "/staff/cases",
        "/staff/cases/new",
        "/staff/cases/stats",
        f"/staff/cases/{case.id}/report",
        f"/f/{make_token(get_settings(), LinkKind.FEEDBACK, person.id)}",
    ):
        page.goto(f"{live_server}{url}")
        found[url] = axe.describe(axe.violations(page))
    page.context.close()
    assert {url: text for url, text in found.items() if text} == {}
