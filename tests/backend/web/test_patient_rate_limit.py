"""Patients' links are rate limited per link and per address: a flood is answered 429 with a message in
the patient's language (JSON for the chat page's script), and whatever was accepted before is kept."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import Direction, FeedbackCase, Message
from backend.security.ephemeral import MemoryEphemeral, RedisEphemeral
from backend.web import rate_limit
from backend.web.app import create_app
from tests import factories
from tests.conftest import reset_caches

REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _inbound(db: Session) -> int:
    db.expire_all()
    query = sa.select(sa.func.count()).where(Message.direction == Direction.INBOUND, Message.text != "")
    return int(db.scalar(query) or 0)


def test_a_chat_flood_from_one_link_is_throttled_and_nothing_accepted_is_lost(
    client: TestClient, db: Session
) -> None:
    person = factories.patient(db, dept=factories.department(db))
    db.commit()
    token = make_token(get_settings(), LinkKind.CHAT, person.id)
    statuses = []
    for n in range(300):
        response = client.post(
            f"/c/{token}/messages",
            data={"text": f"message {n}", "client_id": f"flood-{n:04d}"},
            headers={"Accept": "application/json", "Accept-Language": "zh-CN"},
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert "请稍等一分钟后再试" in response.json()["message"]
            assert response.headers["retry-after"] == "60"
    accepted = statuses.count(200)
    assert accepted == rate_limit.POSTS.per_link and statuses.count(429) == 300 - accepted
    assert statuses[:accepted] == [200] * accepted  # the first ones, all of them, in order
    assert _inbound(db) == accepted


def test_a_feedback_flood_makes_a_few_cases_and_then_a_page_the_patient_reads(
    client: TestClient, db: Session
) -> None:
    person = factories.patient(db, language="vi")
    db.commit()
    token = make_token(get_settings(), LinkKind.FEEDBACK, person.id)
    form = {"kind": "complaint", "category": "waiting", "text": "Waited three hours."}
    statuses = [
        client.post(f"/f/{token}", data=form, headers={"Accept-Language": "vi"}, follow_redirects=False)
        for _ in range(30)
    ]
    assert [r.status_code for r in statuses].count(303) == rate_limit.FEEDBACK_POSTS.per_link
    refused = statuses[-1]
    assert refused.status_code == 429 and "Vui lòng chờ một phút rồi thử lại" in refused.text
    assert refused.headers["content-type"].startswith("text/html")
    db.expire_all()
    cases = db.scalar(sa.select(sa.func.count()).select_from(FeedbackCase))
    assert cases == rate_limit.FEEDBACK_POSTS.per_link


@pytest.fixture
def behind_proxy(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CARELOOP_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    monkeypatch.setattr(rate_limit, "READS", rate_limit.Limit(per_link=100, per_address=5, window_seconds=60))
    reset_caches()
    with TestClient(create_app(), client=("10.0.0.2", 4000)) as client:
        yield client


def test_one_address_opening_many_links_is_throttled_but_not_its_neighbours(
    behind_proxy: TestClient, db: Session
) -> None:
    people = [factories.patient(db) for _ in range(7)]
    db.commit()
    links = [make_token(get_settings(), LinkKind.CHAT, p.id) for p in people]
    scraper = {"X-Forwarded-For": "203.0.113.9"}
    codes = [behind_proxy.get(f"/c/{token}", headers=scraper).status_code for token in links[:6]]
    assert codes == [200] * 5 + [429]
    neighbour = behind_proxy.get(f"/c/{links[6]}", headers={"X-Forwarded-For": "203.0.113.10"})
    assert neighbour.status_code == 200


@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_counts_are_kept_in_the_shared_store(store: str) -> None:
    memory = MemoryEphemeral()
    counter = memory if store == "memory" else RedisEphemeral(REDIS_URL, memory)
    key = f"test:{uuid.uuid4().hex}"
    assert [counter.hit(key, 60) for _ in range(3)] == [1, 2, 3]
    if store == "redis":
        assert memory.hit(key, 60) == 1  # the counts went to Redis


def test_the_address_limit_scales_with_the_setting_and_zero_turns_it_off(
    behind_proxy: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [factories.patient(db) for _ in range(12)]
    db.commit()
    links = [make_token(get_settings(), LinkKind.CHAT, p.id) for p in people]
    ward = {"X-Forwarded-For": "203.0.113.20"}
    monkeypatch.setenv("CARELOOP_PATIENT_ADDRESS_LIMIT_SCALE", "2")  # 5 reads an address, doubled
    reset_caches()
    codes = [behind_proxy.get(f"/c/{token}", headers=ward).status_code for token in links[:11]]
    assert codes == [200] * 10 + [429]
    monkeypatch.setenv("CARELOOP_PATIENT_ADDRESS_LIMIT_SCALE", "0")  # off: only each link's own limit
    reset_caches()
    assert behind_proxy.get(f"/c/{links[11]}", headers=ward).status_code == 200
