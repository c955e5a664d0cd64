"""Single sign-on against a local OpenID Connect provider (tests/backend/security/fake_oidc.py) over real
sockets: PKCE, state and nonce, the ID token's signature, audience, issuer and expiry, the group-to-role
mapping, unknown users, and password sign-in limited to break-glass accounts. Each refusal says why on
the page and leaves an audit row; none leaves a session."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, StaffSession, StaffUser
from backend.security import oidc
from tests import factories
from tests.backend.security import fake_oidc
from tests.conftest import reset_caches
from tests.factories import PASSWORD

MAPPING = {"/it-admins": "admin", "/managers": "manager", "/ward-nurses": "nurse"}  # every group that fits


@pytest.fixture
def provider(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[fake_oidc.FakeProvider]:
    found, server = fake_oidc.start()
    monkeypatch.setenv("CARELOOP_OIDC_ISSUER", found.issuer)
    monkeypatch.setenv("CARELOOP_OIDC_CLIENT_ID", fake_oidc.CLIENT_ID)
    monkeypatch.setenv("CARELOOP_OIDC_CLIENT_SECRET", fake_oidc.CLIENT_SECRET)
    monkeypatch.setenv("CARELOOP_OIDC_GROUP_ROLES", json.dumps(MAPPING))
    reset_caches()
    oidc.clear_caches()
    yield found
    server.shutdown()
    server.server_close()
    oidc.clear_caches()


def through_provider(client: TestClient) -> Any:
    """Click the button, let the provider answer (a real HTTP round trip), and bring its answer back."""
    start = client.get("/staff/sso/start", follow_redirects=False)
    assert start.status_code == 303, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/staff/sso/callback"
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def _refusals(db: Session) -> list[dict[str, Any]]:
    db.expire_all()
    return [
        e.detail for e in db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.sso_refused"))
    ]


def _sessions(db: Session) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(StaffSession)) or 0


def test_a_mapped_user_signs_in_with_pkce_state_and_nonce(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    nurse = factories.staff(db, username="nurse.li")
    db.commit()
    provider.claims = {"preferred_username": "Nurse.Li", "groups": ["/ward-nurses", "/unrelated"]}
    login = client.get("/staff/login")
    assert 'id="sso"' in login.text and 'href="/staff/sso/start"' in login.text
    start = client.get("/staff/sso/start", follow_redirects=False)
    asked = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
    assert (
        asked["code_challenge_method"] == "S256"
        and asked["redirect_uri"] == "http://127.0.0.1:8000/staff/sso/callback"
    )
    assert asked["scope"].split()[0] == "openid" and len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    answered = through_provider(client)
    assert answered.status_code == 303 and answered.headers["location"] == "/staff", answered.text
    assert (
        provider.refusals == []
    )  # the provider found the client secret, the verifier and the redirect right
    assert provider.token_requests[-1]["code_verifier"] and "client_secret" not in provider.token_requests[-1]
    home = client.get("/staff")
    assert home.status_code == 200 and nurse.display_name in home.text
    signed = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.sign_in")).one()
    assert signed.staff_id == nurse.id and signed.detail == {"method": "oidc"}
    assert _refusals(db) == []


@pytest.mark.parametrize(
    ("tamper", "reason", "words"),
    [
        ("forged", "bad_signature", "answer was not signed by the hospital"),
        ("audience", "wrong_audience", "meant for another application"),
        ("nonce", "nonce_mismatch", "belongs to another sign-in"),
        ("expired", "expired", "has expired"),
        ("issuer", "wrong_issuer", "came from another sign-in service"),
    ],
)
def test_a_bad_id_token_is_refused_with_a_clear_message_and_an_audit_row(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session, tamper: str, reason: str, words: str
) -> None:
    factories.staff(db, username="nurse.li")
    db.commit()
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/ward-nurses"]}
    provider.tamper = tamper
    answered = through_provider(client)
    assert answered.status_code == 403
    assert words in answered.text and f'data-reason="{reason}"' in answered.text
    assert [r["reason"] for r in _refusals(db)] == [reason]
    assert _sessions(db) == 0
    assert client.get("/staff", follow_redirects=False).status_code == 303  # still signed out


def test_an_answer_for_another_browser_or_a_replayed_code_is_refused(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    factories.staff(db, username="nurse.li")
    db.commit()
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/ward-nurses"]}
    start = client.get("/staff/sso/start", follow_redirects=False)
    back = urlsplit(httpx.get(start.headers["location"], follow_redirects=False).headers["location"])
    code = parse_qs(back.query)["code"][0]
    # another browser (no pending cookie) brings this answer: refused before the code is exchanged
    with TestClient(client.app, base_url="http://127.0.0.1:8000") as other:
        stranger = other.get(f"/staff/sso/callback?code={code}&state=whatever", follow_redirects=False)
    assert stranger.status_code == 403 and 'data-reason="state_mismatch"' in stranger.text
    # this browser with a state it did not send: refused likewise
    forged_state = client.get(f"/staff/sso/callback?code={code}&state=not-mine", follow_redirects=False)
    assert 'data-reason="state_mismatch"' in forged_state.text
    assert provider.token_requests == []
    # the real answer works once; the same code again is refused by the provider, and so by us
    assert client.get(f"{back.path}?{back.query}", follow_redirects=False).status_code == 303
    start_again = client.get("/staff/sso/start", follow_redirects=False)
    state = parse_qs(urlsplit(start_again.headers["location"]).query)["state"][0]
    replay = client.get(f"/staff/sso/callback?code={code}&state={state}", follow_redirects=False)
    assert replay.status_code == 403 and 'data-reason="token_exchange_failed"' in replay.text
    assert [r["reason"] for r in _refusals(db)] == [
        "state_mismatch",
        "state_mismatch",
        "token_exchange_failed",
    ]
    assert _sessions(db) == 1


def test_the_provider_saying_no_is_refused_and_recorded(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    start = client.get("/staff/sso/start", follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    answered = client.get(f"/staff/sso/callback?error=access_denied&state={state}", follow_redirects=False)
    assert answered.status_code == 403 and 'data-reason="provider_error"' in answered.text
    assert _refusals(db)[0]["detail"] == '"access_denied"'


def test_groups_decide_the_roles_and_the_change_is_audited(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    nurse = factories.staff(db, username="nurse.li")
    db.commit()
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/managers", "/ward-nurses"]}
    assert through_provider(client).status_code == 303
    db.expire_all()
    # every group she is in that maps gives its role
    assert db.get(StaffUser, nurse.id).roles == {Role.MANAGER, Role.NURSE}
    change = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.role_assign")).one()
    assert change.detail == {
        "roles": ["manager", "nurse"],
        "roles_before": ["nurse"],
        "reason": "single sign-on group mapping",
    }
    # the same groups again: nothing to change, nothing written
    assert through_provider(client).status_code == 303
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "staff.role_assign")) == 1
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/visitors"]}
    refused = through_provider(client)
    assert refused.status_code == 403 and 'data-reason="no_role"' in refused.text
    db.expire_all()
    assert db.get(StaffUser, nurse.id).roles == {
        Role.MANAGER,
        Role.NURSE,
    }  # a refused sign-in changes nothing


def test_the_last_admin_is_not_demoted_by_a_group_change(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    db.commit()
    provider.claims = {"preferred_username": "root", "groups": ["/ward-nurses"]}
    assert through_provider(client).status_code == 303
    db.expire_all()
    assert db.get(StaffUser, root.id).roles == {Role.ADMIN}
    kept = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.role_kept_last_admin")).one()
    assert kept.detail == {"roles": ["admin"], "mapped": ["nurse"]}


def test_unknown_users_are_refused_or_made_disabled_per_setting(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.claims = {"preferred_username": "dr.new", "name": "Dr New", "groups": ["/ward-nurses"]}
    refused = through_provider(client)
    assert refused.status_code == 403 and 'data-reason="unknown_user"' in refused.text
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffUser)) == 0
    monkeypatch.setenv("CARELOOP_OIDC_UNKNOWN_USERS", "create_disabled")
    reset_caches()
    made = through_provider(client)
    assert made.status_code == 403 and "an administrator must activate it" in made.text
    user = db.scalars(sa.select(StaffUser).where(StaffUser.username == "dr.new")).one()
    assert (user.active, user.roles, user.display_name) == (False, {"nurse"}, "Dr New")
    again = through_provider(client)
    assert 'data-reason="account_disabled"' in again.text
    assert [r["reason"] for r in _refusals(db)] == [
        "unknown_user",
        "account_created_disabled",
        "account_disabled",
    ]
    assert _sessions(db) == 0


def test_an_unreachable_provider_is_said_plainly(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_OIDC_ISSUER", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("CARELOOP_OIDC_CLIENT_ID", "careloop")
    monkeypatch.setenv("CARELOOP_OIDC_TIMEOUT_SECONDS", "2")
    reset_caches()
    oidc.clear_caches()
    answered = client.get("/staff/sso/start", follow_redirects=False)
    assert answered.status_code == 503 and 'data-reason="provider_unreachable"' in answered.text
    assert [r["reason"] for r in _refusals(db)] == ["provider_unreachable"]


def test_without_single_sign_on_there_is_no_button_and_no_route(client: TestClient, db: Session) -> None:
    assert 'id="sso"' not in client.get("/staff/login").text
    assert client.get("/staff/sso/start", follow_redirects=False).status_code == 404


def test_break_glass_only_keeps_passwords_for_the_named_accounts(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_PASSWORD_SIGN_IN", "break_glass_only")
    monkeypatch.setenv("CARELOOP_BREAK_GLASS_USERNAMES", '["nurse.glass"]')
    reset_caches()
    factories.staff(db, username="nurse.li")
    factories.staff(db, username="nurse.glass")
    db.commit()

    def password(username: str) -> int:
        page = client.get("/staff/login").text
        assert 'id="break-glass"' in page and 'id="sso"' in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        response = client.post(
            "/staff/login",
            data={"username": username, "password": PASSWORD, "totp_code": "", "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        return response.status_code

    assert password("nurse.li") == 401  # the right password, but she signs in through the provider
    assert password("nurse.glass") == 303
    db.expire_all()
    off = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.password_sign_in_off")).one()
    assert off.staff_id == db.scalars(sa.select(StaffUser.id).where(StaffUser.username == "nurse.li")).one()


def test_a_rotated_provider_key_is_fetched_once_and_accepted(
    provider: fake_oidc.FakeProvider, client: TestClient, db: Session
) -> None:
    """The JWKS is cached; a token signed with a key id the cache lacks makes us read it once more."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    factories.staff(db, username="nurse.li")
    db.commit()
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/ward-nurses"]}
    assert through_provider(client).status_code == 303
    provider.key, provider.kid = rsa.generate_private_key(65537, 2048), "key-2"
    client.cookies.clear()
    assert through_provider(client).status_code == 303
    assert _sessions(db) == 2 and _refusals(db) == []
