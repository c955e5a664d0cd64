"""Short signed links for SMS: compact, tamper-evident, expiring, and leading to the full link."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from backend.app.settings import get_settings
from backend.messaging.links import LinkExpired, LinkInvalid, LinkKind, make_short_url, read_short, read_token


def test_a_short_link_is_short_and_reads_back(database_url: str) -> None:
    settings = get_settings()
    url = make_short_url(settings, LinkKind.FORM, 123456, days=14)
    code = url.rsplit("/", 1)[1]
    assert len(code) <= 24 and url.startswith(f"{settings.public_url}/s/")
    assert read_short(settings, code) == (LinkKind.FORM, 123456)


def test_every_short_link_reads_back_whatever_characters_its_signature_has(database_url: str) -> None:
    # base64url signatures contain "-" and "_" for some ids: the separator must never be confused with them
    settings = get_settings()
    codes = {n: make_short_url(settings, LinkKind.FORM, n, days=1).rsplit("/", 1)[1] for n in range(300)}
    assert any("-" in code or "_" in code for code in codes.values())
    assert all(read_short(settings, code) == (LinkKind.FORM, n) for n, code in codes.items())


@pytest.mark.parametrize("change", ["kind", "id", "expiry", "signature"])
def test_any_change_to_a_short_link_is_refused(database_url: str, change: str) -> None:
    settings = get_settings()
    code = make_short_url(settings, LinkKind.FORM, 42, days=14).rsplit("/", 1)[1]
    body, sig = code.rsplit(".", 1)
    head, expires = body.split(".")
    tampered = {
        "kind": f"c{head[1:]}.{expires}.{sig}",
        "id": f"{head[0]}{head[1:]}1.{expires}.{sig}",
        "expiry": f"{head}.{expires}z.{sig}",
        "signature": f"{body}.{'A' * len(sig)}",
    }[change]
    with pytest.raises(LinkInvalid):
        read_short(settings, tampered)


def test_an_expired_short_link_is_refused(database_url: str) -> None:
    settings = get_settings()
    code = make_short_url(settings, LinkKind.CHAT, 7, days=1, now=time.time() - 2 * 86400).rsplit("/", 1)[1]
    with pytest.raises(LinkExpired):
        read_short(settings, code)


def test_opening_a_short_link_redirects_to_the_full_link(client: TestClient) -> None:
    settings = get_settings()
    code = make_short_url(settings, LinkKind.CHAT, 7, days=1).rsplit("/", 1)[1]
    response = client.get(f"/s/{code}", follow_redirects=False)
    assert response.status_code == 303
    token = response.headers["location"].rsplit("/c/", 1)[1]
    assert read_token(settings, LinkKind.CHAT, token, 3600) == 7
    forged = code[:-1] + ("x" if code[-1] != "x" else "y")
    assert client.get(f"/s/{forged}", follow_redirects=False).status_code == 404
    old = make_short_url(settings, LinkKind.CHAT, 7, days=1, now=time.time() - 2 * 86400).rsplit("/", 1)[1]
    assert client.get(f"/s/{old}", follow_redirects=False).status_code == 410
