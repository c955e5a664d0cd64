"""A short link does not extend its own life: the full link it opens ends when the short code ends, however
late it is opened and however often."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkExpired, LinkKind, make_short_url, read_token
from tests import factories


def test_the_full_link_ends_with_the_short_code(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = factories.patient(db)
    db.commit()
    settings = get_settings()
    made = time.time() - 23 * 3600  # a one-day short code, opened in its last hours
    code = make_short_url(settings, LinkKind.CHAT, person.id, days=1, now=made).rsplit("/", 1)[1]
    opened = client.get(f"/s/{code}", follow_redirects=False)
    assert opened.status_code == 303
    path = opened.headers["location"].removeprefix(settings.public_url)
    token = path.rsplit("/c/", 1)[1]
    assert read_token(settings, LinkKind.CHAT, token, settings.chat_link_days * 86400) == person.id
    assert client.get(path).status_code == 200
    later = time.time() + 3 * 3600  # the short code has ended; a fresh full link would work for a week
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(LinkExpired):
        read_token(settings, LinkKind.CHAT, token, settings.chat_link_days * 86400)
    assert client.get(path).status_code == 410
