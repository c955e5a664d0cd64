"""Passwords: the policy, and one-time links that are stored hashed, expire, work once, and end the
owner's sessions when used."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin.passwords import do_issue_reset, do_set_password, password_problems, reset_for_token
from backend.app.settings import get_settings
from backend.models import AuditEvent, PasswordReset, StaffSession
from backend.models.base import utcnow
from backend.security.auth import SignInRefused, do_sign_in
from backend.services.refusal import ActionRefused, Reason
from tests import factories
from tests.factories import PASSWORD

NEW = "a-long-enough-phrase"


@pytest.mark.parametrize(
    ("password", "problems"),
    [
        ("correct horse battery", []),
        ("short", [Reason.PASSWORD_TOO_SHORT]),
        ("x" * 11, [Reason.PASSWORD_TOO_SHORT]),
        ("x" * 12, []),
        ("my-name-is-Nurse1!", [Reason.PASSWORD_HAS_USERNAME]),
        ("nurse1", [Reason.PASSWORD_TOO_SHORT, Reason.PASSWORD_HAS_USERNAME]),
    ],
)
def test_policy(password: str, problems: list[Reason]) -> None:
    assert password_problems(password, username="nurse1", min_length=12) == problems


def test_the_minimum_follows_the_setting() -> None:
    assert password_problems("x" * 15, username="a1", min_length=16) == [Reason.PASSWORD_TOO_SHORT]
    assert password_problems("x" * 16, username="a1", min_length=16) == []


def test_a_link_sets_the_password_once_and_ends_the_sessions(db: Session) -> None:
    settings = get_settings()
    root = factories.staff(db, username="root")
    nurse = factories.staff(db, username="nurse1")
    do_sign_in(db, settings, username="nurse1", password=PASSWORD, totp_code="", ip="10.0.0.1")
    link = do_issue_reset(db, settings, staff=nurse, by=root.id)
    db.commit()
    stored = db.scalars(sa.select(PasswordReset)).one()
    assert stored.token_hash != link.token and link.token not in link.url.replace(link.token, "")
    assert link.url.endswith(f"/staff/password/{link.token}")
    do_set_password(db, settings, token=link.token, password=NEW, repeated=NEW)
    db.commit()
    assert db.scalars(sa.select(StaffSession.ended_at)).one() is not None
    with pytest.raises(ActionRefused) as again:
        do_set_password(db, settings, token=link.token, password=NEW + "x", repeated=NEW + "x")
    assert again.value.reason is Reason.RESET_LINK_INVALID
    with pytest.raises(SignInRefused):
        do_sign_in(db, settings, username="nurse1", password=PASSWORD, totp_code="", ip="10.0.0.2")
    do_sign_in(db, settings, username="nurse1", password=NEW, totp_code="", ip="10.0.0.3")
    actions = db.scalars(sa.select(AuditEvent.action)).all()
    assert "staff.password_link" in actions and "staff.password_set" in actions


def test_a_refused_password_keeps_the_link_usable(db: Session) -> None:
    settings = get_settings()
    nurse = factories.staff(db, username="nurse1")
    link = do_issue_reset(db, settings, staff=nurse, by=nurse.id)
    db.commit()
    for password, repeated, reason in (
        ("short", "short", Reason.PASSWORD_TOO_SHORT),
        ("i-am-nurse1-really", "i-am-nurse1-really", Reason.PASSWORD_HAS_USERNAME),
        (NEW, NEW + "!", Reason.PASSWORDS_DIFFER),
    ):
        with pytest.raises(ActionRefused) as refused:
            do_set_password(db, settings, token=link.token, password=password, repeated=repeated)
        assert refused.value.reason is reason
        db.rollback()
    assert reset_for_token(db, link.token) is not None


def test_links_expire_are_replaced_and_die_with_the_account(db: Session) -> None:
    settings = get_settings()
    nurse = factories.staff(db, username="nurse1")
    first = do_issue_reset(db, settings, staff=nurse, by=nurse.id)
    second = do_issue_reset(db, settings, staff=nurse, by=nurse.id)
    db.commit()
    assert reset_for_token(db, first.token) is None  # a newer link retires the older
    assert reset_for_token(db, second.token) is not None
    later = utcnow() + timedelta(hours=settings.password_reset_hours, seconds=1)
    assert reset_for_token(db, second.token, now=later) is None
    nurse.active = False
    db.commit()
    assert reset_for_token(db, second.token) is None
    assert reset_for_token(db, "") is None and reset_for_token(db, "x" * 500) is None
