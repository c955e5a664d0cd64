"""Request dependencies: database session, settings, templates, the signed-in staff member."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from backend.app.db import session_factory
from backend.app.settings import Settings, get_settings
from backend.messaging.links import hide_link_refs
from backend.models import StaffSession
from backend.security.auth import resume_session
from backend.security.client_address import client_address
from backend.web.local_time import hospital_zone, local_time
from backend.web.text_links import linkify

SESSION_COOKIE = "cl_session"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))  # autoescapes .html
templates.env.filters["linkify"] = linkify
templates.env.filters["local"] = local_time
templates.env.filters["without_links"] = hide_link_refs
templates.env.globals["hospital_zone"] = hospital_zone


def get_db() -> Iterator[Session]:
    """The request's session, committed when the endpoint returns. SessionDep runs this exit with
    scope="function": before the response is sent, so a client that follows a redirect (or reads its
    own write) finds the commit done, and a failed commit is a 500 rather than a success reply for
    lost data. (FastAPI's default scope runs it after the response has gone.)"""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def provider_settings() -> Settings:
    """The settings with the admin console's channel values over the environment's: where the providers'
    credentials (webhook signatures, API keys) are read, so a key replaced in the console applies."""
    from backend.outbox.overrides import effective_settings

    return effective_settings()


ProviderSettingsDep = Annotated[Settings, Depends(provider_settings)]


class NotSignedIn(Exception):
    """Raised by the staff dependency; the app turns it into a redirect to the sign-in page."""


def client_ip(request: Request) -> str:
    """The client's address; X-Forwarded-For counts only from a configured trusted proxy."""
    return client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        tuple(get_settings().trusted_proxies),
    )


def current_staff_session(request: Request, db: SessionDep, settings: SettingsDep) -> StaffSession:
    token = request.cookies.get(SESSION_COOKIE)
    found = resume_session(db, settings, token) if token else None
    if found is None:
        db.commit()  # keep the idle-timeout audit row
        raise NotSignedIn
    return found


StaffDep = Annotated[StaffSession, Depends(current_staff_session)]
