"""A role that needs a second factor (administrative permissions) gets one after single sign-on too: the
ID token shows it (RFC 8176 `amr`, or a configured `acr`), or CareLoop asks for the account's own
authenticator code before any session opens. A nurse is never asked; a wrong code opens nothing and
feeds the throttle; a code is good once."""

from __future__ import annotations

import re

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, StaffSession, StaffUser
from backend.security.oidc import shows_second_factor
from tests import factories
from tests.backend.security import fake_oidc
from tests.backend.security.test_sso import provider, through_provider
from tests.conftest import reset_caches

__all__ = ["provider"]  # the fixture, shared with the sign-on tests


@pytest.mark.parametrize(
    ("claims", "acr_values", "shown"),
    [
        ({}, [], False),
        ({"amr": ["pwd"]}, [], False),
        ({"amr": ["pwd", "pin"]}, [], False),  # two things she knows are one kind of factor
        ({"amr": ["otp"]}, [], False),
        ({"amr": ["pwd", "otp"]}, [], True),
        ({"amr": ["hwk", "fpt"]}, [], True),
        ({"amr": ["mfa"]}, [], True),
        ({"amr": "mfa"}, [], False),  # not a list: malformed, shows nothing
        ({"amr": ["pwd", 7]}, [], False),
        ({"amr": ["swk", "face", "unknown"]}, [], True),
        ({"acr": "2"}, ["2"], True),
        ({"acr": "1"}, ["2"], False),
        ({"acr": "2"}, [], False),
        ({"acr": ["2"]}, ["2"], False),
    ],
)
def test_what_counts_as_a_second_factor_in_the_id_token(
    claims: dict[str, object], acr_values: list[str], shown: bool
) -> None:
    assert shows_second_factor(claims, acr_values) is shown


def _sessions(db: Session, staff_id: int) -> int:
    db.expire_all()
    return db.scalar(sa.select(sa.func.count()).where(StaffSession.staff_id == staff_id)) or 0


def _form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_an_admin_without_a_provider_second_factor_types_her_own_code(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    db.commit()
    provider.claims = {"preferred_username": "root", "groups": ["/it-admins"], "amr": ["pwd"]}
    answered = through_provider(client)
    assert answered.status_code == 303 and answered.headers["location"] == "/staff/sso/code"
    assert _sessions(db, root.id) == 0  # nothing is open yet
    assert client.get("/staff", follow_redirects=False).status_code == 303  # still signed out
    page = client.get("/staff/sso/code")
    assert page.status_code == 200 and 'id="sso-code"' in page.text
    token = _form_token(page.text)

    wrong = client.post("/staff/sso/code", data={"totp_code": "000000", "form_token": token})
    assert wrong.status_code == 401 and "not accepted" in wrong.text
    assert _sessions(db, root.id) == 0
    forged = client.post("/staff/sso/code", data={"totp_code": "000000", "form_token": "x" * 32})
    assert forged.status_code == 403 and 'data-reason="state_mismatch"' in forged.text

    user = db.get(StaffUser, root.id)
    assert user is not None and user.totp_secret
    code = pyotp.TOTP(user.totp_secret).now()
    signed = client.post(
        "/staff/sso/code", data={"totp_code": code, "form_token": token}, follow_redirects=False
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/staff"
    assert _sessions(db, root.id) == 1
    assert client.get("/staff", follow_redirects=False).status_code == 200
    methods = [
        e.detail.get("method")
        for e in db.scalars(sa.select(AuditEvent).where(AuditEvent.action.like("staff.sign_in%")))
    ]
    assert methods == ["oidc", "oidc+totp"]  # the failed try, then the sign-in

    # the same code again, from a new sign-in through the provider: spent
    again = TestClient(client.app)
    assert through_provider(again).headers["location"] == "/staff/sso/code"
    token = _form_token(again.get("/staff/sso/code").text)
    replay = again.post("/staff/sso/code", data={"totp_code": code, "form_token": token})
    assert replay.status_code == 401 and _sessions(db, root.id) == 1


def test_an_admin_whose_provider_shows_a_second_factor_goes_straight_in(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    db.commit()
    provider.claims = {"preferred_username": "root", "groups": ["/it-admins"], "amr": ["pwd", "otp"]}
    answered = through_provider(client)
    assert answered.status_code == 303 and answered.headers["location"] == "/staff"
    assert _sessions(db, root.id) == 1


def test_without_any_second_factor_an_admin_is_refused_and_a_nurse_is_not_asked(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    factories.staff(db, username="keeper", role=Role.ADMIN, totp=True)  # the last admin is someone else
    nurse = factories.staff(db, username="nurse.li")
    db.commit()
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/ward-nurses"]}
    assert through_provider(client).headers["location"] == "/staff"
    assert _sessions(db, nurse.id) == 1
    # promoted by the provider to admin, with no authenticator enrolled and no second factor shown
    fresh = TestClient(client.app)
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/it-admins"]}
    refused = through_provider(fresh)
    assert refused.status_code == 403 and 'data-reason="second_factor_missing"' in refused.text
    assert _sessions(db, nurse.id) == 1  # only the earlier one
    reasons = [
        e.detail["reason"]
        for e in db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.sso_refused"))
    ]
    assert reasons == ["second_factor_missing"]


def test_provider_mode_refuses_a_token_without_a_second_factor_even_with_a_local_code(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_OIDC_ADMIN_SECOND_FACTOR", "provider")
    monkeypatch.setenv("CARELOOP_OIDC_MFA_ACR_VALUES", '["gold"]')
    reset_caches()
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    db.commit()
    provider.claims = {"preferred_username": "root", "groups": ["/it-admins"], "acr": "silver"}
    refused = through_provider(client)
    assert refused.status_code == 403 and 'data-reason="second_factor_missing"' in refused.text
    provider.claims = {"preferred_username": "root", "groups": ["/it-admins"], "acr": "gold"}
    assert through_provider(client).headers["location"] == "/staff"
    assert _sessions(db, root.id) == 1


def test_the_code_page_without_a_waiting_sign_in_says_so(client: TestClient) -> None:
    page = client.get("/staff/sso/code")
    assert page.status_code == 403 and 'data-reason="state_mismatch"' in page.text
    posted = client.post("/staff/sso/code", data={"totp_code": "123456", "form_token": "t"})
    assert posted.status_code == 403
