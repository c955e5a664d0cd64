"""A task raised by a completed form shows the nurse why, first: each finding in words with the question
and the answer that raised it (values with their unit, options by their label), most severe first, then
every answer; the conversation comes after."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of
from backend.followup.finding_views import StoredFinding, answer_text, describe
from backend.models import QuestionnaireVersion, Role, Task, TaskKind
from questionnaires.model import AnswerValue, Questionnaire, Severity
from tests import factories
from tests.backend.followup.test_forms import _form
from tests.backend.security.test_staff_auth import sign_in


def _recovery(db: Session) -> Questionnaire:
    from backend.followup.catalog import do_publish
    from tests.backend.followup.test_followup import DEFINITION

    version = do_publish(db, DEFINITION)
    db.flush()
    row = db.get(QuestionnaireVersion, version.id)
    assert row is not None
    return definition_of(row)


def test_findings_read_as_words_with_their_answers_most_severe_first(db: Session) -> None:
    q = _recovery(db)
    answers: dict[str, AnswerValue] = {"pain": 8, "fever": "yes", "temperature": Decimal("39.4")}
    stored = [
        StoredFinding("pain_high", "high", ("pain",)),
        StoredFinding("very_hot", "urgent", ("temperature",)),
    ]
    findings, every = describe(q, answers, stored, "en")
    assert [(f.code, f.severity, f.text) for f in findings] == [
        ("very_hot", Severity.URGENT, "Temperature 39 or more"),
        ("pain_high", Severity.HIGH, "Pain 7 or more"),
    ]
    assert [(a.question, a.answer) for a in findings[0].answers] == [("Temperature?", "39.4")]
    assert [(a.item_id, a.answer) for a in every] == [
        ("pain", "8"),
        ("fever", "Yes"),
        ("temperature", "39.4"),
    ]


def test_a_safety_finding_has_no_rule_text_and_a_missing_answer_shows_a_dash(db: Session) -> None:
    q = _recovery(db)
    safety = [StoredFinding("safety:chest_pain", "emergency", ("pain",))]
    findings, _ = describe(q, {"pain": 2}, safety, "en")
    assert findings[0].text is None and findings[0].severity is Severity.EMERGENCY
    item = q.item("fever")
    assert answer_text(item, None, "en") == "—" and answer_text(item, "maybe", "en") == "maybe"


def test_the_task_page_shows_the_forms_findings_before_the_conversation(
    client: TestClient, db: Session
) -> None:
    _, token = _form(db)
    done = client.post(
        f"/q/{token}",
        data={"pain": "8", "fever": "yes", "temperature": "39.5", "action": "submit"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    task = db.query(Task).filter(Task.kind == TaskKind.ABNORMAL_ANSWER).one()
    factories.staff(db, username="agent", role=Role.SERVICE_AGENT)
    db.commit()
    client.cookies.clear()
    assert sign_in(client, "agent").status_code == 303
    page = client.get(f"/staff/inbox/{task.id}").text
    findings = page.index('id="form-findings"')
    assert "Temperature 39 or more" in page and "Pain 7 or more" in page
    assert page.index("Temperature 39 or more") < page.index("Pain 7 or more")  # most severe first
    assert "Temperature?: <strong>39.5</strong>" in page
    if 'id="conversation"' in page:
        assert findings < page.index('id="conversation"')


def test_the_patient_record_names_findings_in_words(client: TestClient, db: Session) -> None:
    _, token = _form(db)
    client.post(
        f"/q/{token}",
        data={"pain": "8", "fever": "yes", "temperature": "39.5", "action": "submit"},
        follow_redirects=False,
    )
    task = db.query(Task).filter(Task.kind == TaskKind.ABNORMAL_ANSWER).one()
    factories.staff(db, username="agent", role=Role.SERVICE_AGENT)
    db.commit()
    client.cookies.clear()
    assert sign_in(client, "agent").status_code == 303
    record = client.get(f"/staff/patients/{task.patient_id}").text
    assert "Temperature 39 or more (" in record and "Pain 7 or more (" in record
    assert "very_hot (" not in record and "pain_high (" not in record  # no raw codes
