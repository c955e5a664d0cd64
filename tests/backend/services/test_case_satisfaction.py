"""The patient rates how their closed feedback case was handled, on their mobile page /f/<token>; the
rating is counted in the case statistics; only their own closed cases, once; both DBs."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import AuditEvent, Satisfaction
from backend.services import cases
from tests import factories
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.case_world import case_row, make_world, register_case


def _stat_row(page: str, code: str) -> str:
    table = page.split('id="stats-satisfaction"', 1)[1].split("</table>", 1)[0]
    found = re.search(rf'<tr data-code="{code}"><td>[^<]*</td><td>(\d+)</td>', table)
    assert found is not None, table
    return found.group(1)


def test_the_patient_rates_a_closed_case_on_the_mobile_page_and_the_statistics_count_it(
    client: TestClient, db: Session
) -> None:
    w = make_world(db)
    closed, still_open = register_case(db, w), register_case(db, w)
    cases.do_close_case(db, case=case_row(db, closed.id), staff_id=w.agent.id, summary="We apologised.")
    db.commit()
    token = make_token(get_settings(), LinkKind.FEEDBACK, w.alice.id)
    page = client.get(f"/f/{token}").text
    assert 'id="feedback-rate"' in page
    assert f'name="case" value="{closed.id}"' in page and f'name="case" value="{still_open.id}"' not in page
    done = client.post(f"/f/{token}/rate", data={"case": str(closed.id), "value": "dissatisfied"})
    assert done.status_code == 200 and 'id="feedback-rated"' in done.text
    assert 'id="feedback-rate"' not in done.text  # nothing left to rate
    assert case_row(db, closed.id).satisfaction is Satisfaction.DISSATISFIED
    [row] = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "case.satisfaction")).all()
    assert (row.staff_id, row.patient_id, row.detail) == (
        None,
        w.alice.id,
        {"satisfaction": "dissatisfied", "by": "patient"},
    )
    sign_in(client, "agent1")
    stats = client.get("/staff/cases/stats").text
    assert _stat_row(stats, "dissatisfied") == "1" and _stat_row(stats, "unknown") == "1"


def test_a_second_rating_an_open_case_and_another_patients_case_are_refused_and_change_nothing(
    client: TestClient, db: Session
) -> None:
    w = make_world(db)
    bob = factories.patient(db, name="Bob Li", dept=w.cardio)
    db.commit()
    mine, open_case, bobs = (
        register_case(db, w),
        register_case(db, w),
        register_case(db, w, patient_id=bob.id),
    )
    for case in (mine, bobs):
        cases.do_close_case(db, case=case_row(db, case.id), staff_id=w.agent.id, summary="Done.")
    db.commit()
    token = make_token(get_settings(), LinkKind.FEEDBACK, w.alice.id)
    client.post(f"/f/{token}/rate", data={"case": str(mine.id), "value": "satisfied"})
    for case_id, value in ((mine.id, "dissatisfied"), (open_case.id, "satisfied"), (bobs.id, "satisfied")):
        refused = client.post(f"/f/{token}/rate", data={"case": str(case_id), "value": value})
        assert refused.status_code == 400 and 'id="feedback-error"' in refused.text
    refused = client.post(f"/f/{token}/rate", data={"case": "x", "value": "great"})
    assert refused.status_code == 400
    assert case_row(db, mine.id).satisfaction is Satisfaction.SATISFIED
    assert case_row(db, open_case.id).satisfaction is None and case_row(db, bobs.id).satisfaction is None
    forged = client.post("/f/not-a-token/rate", data={"case": str(bobs.id), "value": "satisfied"})
    assert forged.status_code == 404 and case_row(db, bobs.id).satisfaction is None
