"""Feedback cases on both databases: filters, statistics, the Excel export, and the patient's feedback
page in their language."""

from __future__ import annotations

import io
import re

import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.i18n import translations
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    AuditEvent,
    CaseSource,
    FeedbackCase,
    Task,
)
from backend.services import case_queries, cases
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.case_world import (
    World,
    case_row,
    make_world,
    register_case,
)

# --- list, statistics, export ----------------------------------------------------------------------


def _several(db: Session, w: World) -> list[FeedbackCase]:
    made = [
        register_case(db, w),
        register_case(db, w, kind="praise", department_id=w.ortho.id),
        register_case(db, w, kind="suggestion", patient_id=None),
    ]
    first, second, _ = (case_row(db, c.id) for c in made)
    cases.do_set_validity(db, case=first, staff_id=w.agent.id, valid=True)
    cases.do_set_validity(db, case=second, staff_id=w.agent.id, valid=False, reason="Not our patient")
    cases.do_close_case(db, case=first, staff_id=w.agent.id, summary="done")
    cases.do_record_satisfaction(
        db, case=first, staff_id=w.agent.id, satisfaction=cases.Satisfaction.SATISFIED
    )
    db.commit()
    return made


def test_filters_statistics_and_the_excel_export(client: TestClient, db: Session) -> None:
    w = make_world(db)
    first, second, _ = _several(db, w)
    sign_in(client, "agent1")
    listed = client.get("/staff/cases", params={"kind": "praise"}).text
    assert f'data-case="{second.id}"' in listed and f'data-case="{first.id}"' not in listed
    assert client.get("/staff/cases", params={"validity": "maybe"}).status_code == 400
    stats = case_queries.case_stats(db, user=w.agent, filters=case_queries.CaseFilters())
    assert stats.total == 3
    assert stats.by_kind == {"complaint": 1, "praise": 1, "suggestion": 1}
    assert stats.by_validity == {"valid": 1, "invalid": 1, "unjudged": 1}
    assert stats.by_progress == {"new": 2, "in_progress": 0, "closed": 1}
    assert stats.by_satisfaction == {"satisfied": 1, "dissatisfied": 0, "unknown": 2}
    assert stats.by_category == {"other": 3}
    nurse_stats = case_queries.case_stats(db, user=w.nurse, filters=case_queries.CaseFilters())
    assert nurse_stats.total == 2  # cardiology leads the first and the third, not the praise
    page = client.get("/staff/cases/stats", params={"progress": "new"}).text
    assert 'id="stats-total"' in page and "<strong>2</strong>" in page
    export = client.get("/staff/cases/export.xlsx", params={"kind": "complaint"})
    assert export.status_code == 200
    book = load_workbook(io.BytesIO(export.content))
    rows = list(book["Cases"].iter_rows(values_only=True))
    assert rows[0][0] == "Filters"
    assert {("kind", "complaint"), ("category", "all")} <= {
        r[:2] for r in rows
    }  # the file states its filters
    header = rows.index(next(r for r in rows if r[0] == "number"))
    assert [r[0] for r in rows[header + 1 :]] == [first.id]
    summary = list(book["Statistics"].iter_rows(values_only=True))
    assert ("total", None, 1, 1) in summary and ("kind", "Complaint", 1, 1) in summary
    assert (
        db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "case.export")).one().detail["rows"] == 1
    )


# --- the patient's page --------------------------------------------------------------------------


def test_a_patient_sends_a_complaint_from_the_mobile_page_in_their_language(
    client: TestClient, db: Session
) -> None:
    w = make_world(db)
    w.alice.language = "vi"
    db.commit()
    token = make_token(get_settings(), LinkKind.FEEDBACK, w.alice.id)
    page = client.get(f"/f/{token}")
    assert page.status_code == 200 and "Khiếu nại, khen ngợi và góp ý" in page.text
    empty = client.post(f"/f/{token}", data={"kind": "complaint", "category": "waiting", "text": " "})
    assert empty.status_code == 400 and "Vui lòng viết nội dung" in empty.text
    sent = client.post(
        f"/f/{token}",
        data={
            "kind": "complaint",
            "category": "waiting",
            "department": str(w.cardio.id),
            "text": "Chờ quá lâu.",
        },
    )
    assert sent.status_code == 200 and "Ý kiến của bạn đã được tiếp nhận" in sent.text
    case = db.scalars(sa.select(FeedbackCase)).one()
    assert (case.source, case.patient_id, case.department_id, case.text) == (
        CaseSource.MOBILE,
        w.alice.id,
        w.cardio.id,
        "Chờ quá lâu.",
    )
    assert db.get_one(Task, case.task_id).department_id == w.cardio.id
    assert client.get("/f/forged").status_code == 404
    chat_token = make_token(get_settings(), LinkKind.CHAT, w.alice.id)
    assert client.get(f"/f/{chat_token}").status_code == 404  # a chat link is not a feedback link


def test_every_case_label_and_section_string_is_translated() -> None:
    """The code names shown through label() and the patient-page section (outside the glob of
    test_every_staff_ui_string_is_translated) have zh-CN and vi entries."""

    from backend.i18n import CATALOG_DIR
    from backend.web.cases import LABELS

    used = {english for group in LABELS.values() for english in group.values()}
    section = (CATALOG_DIR.parent / "web" / "templates" / "staff" / "patient" / "_cases.html").read_text(
        "utf-8"
    )
    used |= set(re.findall(r'_\("([^"]+)"\)', section))
    for lang in ("zh-CN", "vi"):
        gettext = translations(lang).gettext
        assert [u for u in sorted(used) if gettext(u) == u] == [], lang
