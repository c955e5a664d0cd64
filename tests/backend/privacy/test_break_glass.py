"""Break-glass: a reason opens one record outside her departments for a limited time, every view is
audited with the grant, lists stay scoped, and an admin other than her marks the grant reviewed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role
from backend.models.base import utcnow
from backend.privacy.break_glass import do_break_glass, do_review, grant_rows
from backend.services import patients
from backend.services.refusal import ActionRefused, Reason
from tests import factories


def test_a_grant_opens_one_record_for_a_while_and_every_view_names_it(db: Session) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[cardio])
    theirs = factories.patient(db, dept=ortho)
    neighbour = factories.patient(db, dept=ortho)
    assert not patients.may_view(db, nurse, theirs.id)
    with pytest.raises(patients.AccessDenied):
        patients.open_record(db, nurse, theirs.id, "10.0.0.1")
    grant = do_break_glass(
        db,
        user=nurse,
        patient=theirs,
        reason="Unconscious in ED, allergy check",
        now=utcnow(),
        in_scope=False,
    )
    assert patients.may_view(db, nurse, theirs.id)
    assert patients.open_record(db, nurse, theirs.id, "10.0.0.1") is theirs
    assert not patients.may_view(db, nurse, neighbour.id)  # one record, not the department
    assert patients.search(db, nurse, "") == []  # lists stay scoped
    rows = db.execute(
        sa.select(AuditEvent.action, AuditEvent.detail)
        .where(AuditEvent.patient_id == theirs.id)
        .order_by(AuditEvent.id)
    ).all()
    assert [a for a, _ in rows] == ["patient.view_denied", "patient.break_glass", "patient.view"]
    assert rows[1][1]["reason"] == "Unconscious in ED, allergy check"
    assert rows[2][1]["break_glass"] == grant.id
    # when the grant expires the record closes again
    grant.expires_at = utcnow() - timedelta(seconds=1)
    db.flush()
    assert not patients.may_view(db, nurse, theirs.id)


@pytest.mark.parametrize(
    ("reason", "in_scope", "refusal"),
    [
        ("", False, Reason.REASON_REQUIRED),
        ("urgent", False, Reason.REASON_REQUIRED),
        ("x" * 501, False, Reason.REASON_LENGTH),
        ("Covering a colleague's ward tonight", True, Reason.NOT_NEEDED),
    ],
)
def test_break_glass_needs_a_real_reason_and_a_record_outside_her_departments(
    db: Session, reason: str, in_scope: bool, refusal: Reason
) -> None:
    nurse = factories.staff(db, username="nurse")
    person = factories.patient(db)
    with pytest.raises(ActionRefused) as refused:
        do_break_glass(db, user=nurse, patient=person, reason=reason, now=utcnow(), in_scope=in_scope)
    assert refused.value.reason == refusal
    assert not patients.may_view(db, nurse, person.id)
    assert db.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0


def test_an_admin_other_than_her_reviews_the_grant(db: Session) -> None:
    nurse = factories.staff(db, username="nurse")
    admin = factories.staff(db, username="officer", role=Role.ADMIN)
    other_admin = factories.staff(db, username="root2", role=Role.ADMIN)
    person = factories.patient(db, dept=factories.department(db))
    grant = do_break_glass(
        db, user=nurse, patient=person, reason="Night call, no on-duty doctor", now=utcnow(), in_scope=False
    )
    patients.open_record(db, nurse, person.id, "10.0.0.1")
    patients.open_record(db, nurse, person.id, "10.0.0.1")
    [row] = grant_rows(db, pending_only=True)
    assert (row.grant.id, row.staff_name, row.views) == (grant.id, "Nurse", 2)
    with pytest.raises(ActionRefused) as refused:
        do_review(db, grant=grant, user=nurse, note="", now=utcnow())
    assert refused.value.reason == Reason.NOT_A_PRIVACY_OFFICER
    admin_grant = do_break_glass(
        db, user=admin, patient=person, reason="Checking the complaint file", now=utcnow(), in_scope=False
    )
    with pytest.raises(ActionRefused) as refused:
        do_review(db, grant=admin_grant, user=admin, note="", now=utcnow())
    assert refused.value.reason == Reason.OWN_REQUEST
    do_review(db, grant=grant, user=other_admin, note="Matches the duty roster", now=utcnow())
    assert grant.reviewed_by_id == other_admin.id
    assert [r.grant.id for r in grant_rows(db, pending_only=True)] == [admin_grant.id]
    assert len(grant_rows(db, pending_only=False)) == 2
    with pytest.raises(ActionRefused):
        do_review(db, grant=grant, user=other_admin, note="", now=utcnow())  # once only
