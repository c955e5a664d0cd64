"""No route answers 500 to an id it cannot use: every route of the app is walked with non-ASCII digits
("１２３", "١٢٣") and ids of 2**63 and more in its integer path, query and form parameters (and in
free-text ones its own code parses as ids), signed in as an admin who sees everything; each must answer
with a 4xx (or its normal answer), on both databases."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import backend.web
from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import Role
from backend.web.app import create_app
from tests import factories
from tests.backend.security.test_staff_auth import _csrf
from tests.factories import PASSWORD

BAD = ("１２３", "١٢٣", "²", str(2**63), str(2**64 + 7))
# Form fields our own code reads as ids from text (they are `str` parameters, so the walk cannot tell)
ID_TEXTS = frozenset({"department", "assignee", "case", "sender", "patient_id", "call", "ward", "doctor"})


def _fields(dependant: Any, attr: str) -> list[Any]:
    found = list(getattr(dependant, attr))
    for sub in dependant.dependencies:
        found += _fields(sub, attr)
    return found


def _is_int(field: Any) -> bool:
    return "int" in str(field.field_info.annotation)


def _routes() -> Iterator[APIRoute]:
    for module in pkgutil.iter_modules(backend.web.__path__):
        router = getattr(importlib.import_module(f"backend.web.{module.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute):
                yield route


@pytest.fixture(autouse=True)
def _short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.web import inbox as inbox_web

    monkeypatch.setattr(inbox_web, "STREAM_SECONDS", 0.0)  # the inbox's event stream ends at once


@pytest.fixture
def admin(database_url: str, db: Session) -> Iterator[TestClient]:
    user = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    factories.patient(db, dept=factories.department(db))
    db.commit()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        token = _csrf(client.get("/staff/login").text)
        signed = client.post(
            "/staff/login",
            data={
                "username": "root",
                "password": PASSWORD,
                "totp_code": pyotp.TOTP(user.totp_secret or "").now(),
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert signed.status_code == 303
        yield client


def _token_for(path: str) -> str:
    kind = {"c": LinkKind.CHAT, "q": LinkKind.FORM, "f": LinkKind.FEEDBACK, "a": LinkKind.CALENDAR}
    prefix = path.split("/")[1]
    return make_token(get_settings(), kind.get(prefix, LinkKind.CHAT), 1)


def test_no_route_answers_500_to_an_unusable_id(admin: TestClient) -> None:
    csrf = _csrf(admin.get("/staff/patients").text)
    failures: list[str] = []
    tried = 0
    for route in _routes():
        dependant = route.dependant
        path_ints = [f for f in _fields(dependant, "path_params") if _is_int(f)]
        for bad in BAD:
            # an unusable id in the path; then, with usable ids there, in the query and the form
            for in_path in [True, False] if path_ints else [False]:
                path = route.path
                for field in _fields(dependant, "path_params"):
                    value = (bad if in_path else "1") if _is_int(field) else _token_for(route.path)
                    path = path.replace("{" + field.name + "}", value)
                query = {f.name: bad for f in _fields(dependant, "query_params") if _is_int(f)}
                form: dict[str, str] = {"csrf_token": csrf}
                for field in _fields(dependant, "body_params"):
                    if field.name != "csrf_token":
                        form[field.name] = bad if _is_int(field) or field.name in ID_TEXTS else "1"
                for method in sorted(route.methods or ()):
                    if method == "HEAD":
                        continue
                    response = admin.request(
                        method,
                        path,
                        params=query,
                        data=form if method == "POST" else None,
                        follow_redirects=False,
                    )
                    tried += 1
                    # the health page's JSON answers 503 by design while a check fails (no worker on a
                    # test machine): what it says about the system, not about the request
                    if response.status_code >= 500 and not (
                        path == "/staff/admin/health.json" and response.status_code == 503
                    ):
                        failures.append(f"{method} {path} {query} {form} -> {response.status_code}")
    assert tried > 100
    assert failures == [], "\n".join(failures)
