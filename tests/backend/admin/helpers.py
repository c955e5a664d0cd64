"""Signing in as an admin (password and TOTP) or another role through the real sign-in form."""

from __future__ import annotations

import re

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import Role, StaffUser
from tests import factories
from tests.factories import PASSWORD


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: TestClient, user: StaffUser) -> str:
    """Sign `user` in; returns the session's CSRF token."""
    token = csrf(client.get("/staff/login").text)
    code = pyotp.TOTP(user.totp_secret).now() if user.totp_secret else ""
    response = client.post(
        "/staff/login",
        data={"username": user.username, "password": PASSWORD, "totp_code": code, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf(client.get("/staff").text)


def admin(db: Session, username: str = "root") -> StaffUser:
    return factories.staff(db, username=username, role=Role.ADMIN, totp=True)
