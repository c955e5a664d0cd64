"""Binding WeChat followers to patients: OAuth against a local WeChat, birth date and SMS code binds
(through a local Twilio), throttling, QR scenes linking departments, on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, read_token
from backend.models import AuditEvent, BindCode, BindMethod, DepartmentLink, Patient
from backend.services import binding
from backend.web.wechat_pages import FOLLOWER_COOKIE
from tests import factories
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.fake_wechat import QRCODE_CREATE, FakeWeChat
from tests.conftest import reset_caches

PUBLIC = "https://careloop.example.org"


@dataclass
class Fakes:
    wechat: FakeWeChat
    twilio: FakeTwilio


@pytest.fixture
def fakes(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    with FakeWeChat() as wechat, FakeTwilio() as twilio:
        for name, value in {
            "CARELOOP_PUBLIC_URL": PUBLIC,
            "CARELOOP_WECHAT_APP_ID": wechat.app_id,
            "CARELOOP_WECHAT_APP_SECRET": wechat.secret,
            "CARELOOP_WECHAT_API_ROOT": wechat.base_url,
            "CARELOOP_TWILIO_ACCOUNT_SID": twilio.account_sid,
            "CARELOOP_TWILIO_AUTH_TOKEN": twilio.auth_token,
            "CARELOOP_TWILIO_API_BASE": twilio.base_url,
            "CARELOOP_TWILIO_SMS_FROM": "+15005550006",
            # no quiet time, so the code SMS goes out whatever the hour the tests run at
            "CARELOOP_QUIET_HOURS_START": "0",
            "CARELOOP_QUIET_HOURS_END": "0",
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield Fakes(wechat, twilio)
        reset_caches()


def _follow(client: TestClient, fake: FakeWeChat, openid: str, next_path: str = "/wx/bind") -> str:
    """Run the OAuth round trip (an English-speaking browser); returns where the callback sent it."""
    client.headers["Accept-Language"] = "en"
    start = client.get("/wx/auth", params={"next": next_path}, follow_redirects=False)
    assert start.status_code == 302
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    code = f"code{len(fake.oauth_codes)}{openid[-4:]}"
    fake.oauth_codes[code] = openid
    back = client.get("/wx/auth/callback", params={"code": code, "state": state}, follow_redirects=False)
    assert back.status_code == 303, back.text
    return str(back.headers["location"])


def _bound(db: Session, patient_id: int) -> str | None:
    db.expire_all()
    patient = db.get(Patient, patient_id)
    assert patient is not None
    return patient.wechat_openid


def _audits(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_oauth_round_trip_sets_a_sealed_follower_cookie_and_goes_on(fakes: Fakes, client: TestClient) -> None:
    start = client.get("/wx/auth", params={"next": "/q/abc?x=1"}, follow_redirects=False)
    assert start.status_code == 302
    url = urlsplit(start.headers["location"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.netloc == "open.weixin.qq.com" and query["scope"] == "snsapi_base"
    assert query["appid"] == fakes.wechat.app_id
    assert query["redirect_uri"] == f"{PUBLIC}/wx/auth/callback"
    fakes.wechat.oauth_codes["c0de1"] = "o-follower-0001"
    back = client.get(
        "/wx/auth/callback", params={"code": "c0de1", "state": query["state"]}, follow_redirects=False
    )
    assert back.status_code == 303 and back.headers["location"] == "/q/abc?x=1"
    cookie = next(c for c in back.headers.get_list("set-cookie") if c.startswith(f"{FOLLOWER_COOKIE}="))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "o-follower-0001" not in cookie
    assert fakes.wechat.problems == [] and fakes.wechat.oauth_codes == {}
    page = client.get("/wx/bind", follow_redirects=False)
    assert page.status_code == 200 and 'name="phone"' in page.text  # the follower is known


def test_bind_page_sends_an_unknown_browser_through_oauth(fakes: Fakes, client: TestClient) -> None:
    page = client.get("/wx/bind", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/wx/auth?next=%2Fwx%2Fbind"
    client.cookies.set(FOLLOWER_COOKIE, "forged.value.here")
    assert client.get("/wx/bind", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "evil"]
)
def test_oauth_refuses_to_redirect_off_site(fakes: Fakes, client: TestClient, target: str) -> None:
    response = client.get("/wx/auth", params={"next": target}, follow_redirects=False)
    assert response.status_code == 400 and "location" not in response.headers


def test_a_tampered_or_foreign_state_is_refused_before_the_code_is_used(
    fakes: Fakes, client: TestClient
) -> None:
    start = client.get("/wx/auth", params={"next": "/wx/bind"}, follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    fakes.wechat.oauth_codes["c0de2"] = "o-follower-0002"
    forged = state[:-1] + ("1" if state[-1] == "0" else "0")  # always a different last character
    tampered = client.get(
        "/wx/auth/callback", params={"code": "c0de2", "state": forged}, follow_redirects=False
    )
    assert tampered.status_code == 400
    client.cookies.clear()  # another browser: the state is genuine but was not issued to it
    foreign = client.get(
        "/wx/auth/callback", params={"code": "c0de2", "state": state}, follow_redirects=False
    )
    assert foreign.status_code == 400
    assert FOLLOWER_COOKIE not in client.cookies and "c0de2" in fakes.wechat.oauth_codes


def test_phone_and_birth_date_bind_and_are_audited(fakes: Fakes, client: TestClient, db: Session) -> None:
    patient = factories.patient(db, phone="+8613800138000")
    db.commit()
    _follow(client, fakes.wechat, "o-follower-0003")
    done = client.post(
        "/wx/bind", data={"action": "birth_date", "phone": "138 0013 8000", "birth_date": "1960-05-17"}
    )
    assert done.status_code == 200 and "linked to your hospital record" in done.text
    assert _bound(db, patient.id) == "o-follower-0003"
    [event] = _audits(db, "wechat.bound")
    assert event.patient_id == patient.id and event.detail["method"] == "birth_date"
    assert "o-follower-0003" not in str(event.detail)
    assert "already linked" in client.get("/wx/bind").text


def test_a_wrong_birth_date_answers_exactly_like_an_unknown_phone(
    fakes: Fakes, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613800138000")
    db.commit()
    _follow(client, fakes.wechat, "o-follower-0004")
    wrong = client.post(
        "/wx/bind", data={"action": "birth_date", "phone": "13800138000", "birth_date": "1961-05-17"}
    )
    unknown = client.post(
        "/wx/bind", data={"action": "birth_date", "phone": "13700137000", "birth_date": "1961-05-17"}
    )
    assert wrong.status_code == unknown.status_code == 422
    assert wrong.text == unknown.text
    assert _bound(db, patient.id) is None and _audits(db, "wechat.bound") == []


def test_failures_are_throttled_per_follower_even_for_right_details(
    fakes: Fakes, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613800138000")
    db.commit()
    _follow(client, fakes.wechat, "o-follower-0005")
    for _ in range(binding.MAX_FAILURES):
        client.post(
            "/wx/bind", data={"action": "birth_date", "phone": "13800138000", "birth_date": "1999-01-01"}
        )
    right = client.post(
        "/wx/bind", data={"action": "birth_date", "phone": "13800138000", "birth_date": "1960-05-17"}
    )
    assert right.status_code == 429 and _bound(db, patient.id) is None


def _request_code(client: TestClient, phone: str) -> str:
    response = client.post("/wx/bind", data={"action": "code", "phone": phone})
    assert response.status_code == 200 and 'name="code"' in response.text
    return response.text


def test_a_code_goes_by_sms_to_the_records_phone_and_binds(
    fakes: Fakes, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613800138000", language="zh-CN")
    db.commit()
    _follow(client, fakes.wechat, "o-follower-0006")
    page = _request_code(client, "13800138000")
    assert page == _request_code(client, "13700137000")  # an unknown phone: same page, nothing sent
    [sms] = fakes.twilio.messages
    assert sms.params["To"] == "+8613800138000" and "验证码" in sms.params["Body"]
    code = re.search(r"\d{6}", sms.params["Body"])
    assert code is not None
    [row] = db.scalars(sa.select(BindCode)).all()
    assert code.group() not in row.code_hash and row.patient_id == patient.id
    done = client.post("/wx/bind", data={"action": "verify", "code": code.group()})
    assert done.status_code == 200 and _bound(db, patient.id) == "o-follower-0006"
    [event] = _audits(db, "wechat.bound")
    assert event.detail["method"] == "sms_code"
    again = client.post("/wx/bind", data={"action": "verify", "code": code.group()})
    assert "already linked" in again.text


def test_five_wrong_codes_lock_the_code(fakes: Fakes, client: TestClient, db: Session) -> None:
    patient = factories.patient(db, phone="+8613800138000")
    db.commit()
    _follow(client, fakes.wechat, "o-follower-0007")
    _request_code(client, "13800138000")
    right = re.search(r"\d{6}", fakes.twilio.messages[0].params["Body"])
    assert right is not None
    wrong = f"{(int(right.group()) + 1) % 10**6:06d}"
    answers = [client.post("/wx/bind", data={"action": "verify", "code": wrong}) for _ in range(5)]
    assert {a.status_code for a in answers} == {422} and len({a.text for a in answers}) == 1
    db.expire_all()
    [row] = db.scalars(sa.select(BindCode)).all()
    assert row.attempts == 5 and row.locked_at is not None
    assert [e.patient_id for e in _audits(db, "wechat.code_locked")] == [patient.id]
    late = datetime.now(UTC) + binding.FAILURE_WINDOW  # the follower's throttle has passed; the lock holds
    assert binding.do_verify_code(db, openid="o-follower-0007", code=right.group(), now=late) is None
    assert client.post("/wx/bind", data={"action": "verify", "code": right.group()}).status_code != 200
    assert _bound(db, patient.id) is None


def test_an_expired_code_is_refused(fakes: Fakes, client: TestClient, db: Session) -> None:
    patient = factories.patient(db, phone="+8613800138000")
    db.commit()
    _follow(client, fakes.wechat, "o-follower-0008")
    _request_code(client, "13800138000")
    code = re.search(r"\d{6}", fakes.twilio.messages[0].params["Body"])
    assert code is not None
    db.execute(sa.update(BindCode).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.commit()
    response = client.post("/wx/bind", data={"action": "verify", "code": code.group()})
    assert response.status_code == 422 and _bound(db, patient.id) is None


def test_no_code_is_queued_in_the_patients_quiet_hours(
    fakes: Fakes, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_START", "21")
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_END", "8")
    reset_caches()
    factories.patient(db, phone="+8613800138000")
    night = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    assert binding.do_request_code(db, openid="o-follower-0009", phone="13800138000", now=night) is None
    day = night + timedelta(hours=10)
    assert binding.do_request_code(db, openid="o-follower-0009", phone="13800138000", now=day) is not None


def test_an_openid_bound_to_another_patient_is_refused(fakes: Fakes, db: Session) -> None:
    first = factories.patient(db, wechat_openid="o-follower-0010")
    second = factories.patient(db)
    with pytest.raises(binding.OpenidBoundElsewhere):
        binding.do_bind_wechat(db, patient_id=second.id, openid="o-follower-0010", method=BindMethod.SMS_CODE)
    assert second.wechat_openid is None and first.wechat_openid == "o-follower-0010"
    with pytest.raises(binding.PatientBoundElsewhere):  # a birth date is not enough to move a binding
        binding.do_bind_wechat(
            db, patient_id=first.id, openid="o-follower-0011", method=BindMethod.BIRTH_DATE
        )
    assert first.wechat_openid == "o-follower-0010"


def test_the_scene_department_is_linked_at_bind_or_scan_time(
    fakes: Fakes, client: TestClient, db: Session
) -> None:
    cardio, ortho = factories.department(db, code="CARD"), factories.department(db, code="ORTH")
    bound = factories.patient(db)
    binding.do_bind_wechat(
        db,
        patient_id=bound.id,
        openid="o-follower-0012",
        method=BindMethod.BIRTH_DATE,
        scene="dept:CARD",
    )
    binding.do_record_scan(db, openid="o-follower-0012", scene="dept:ORTH")  # already bound: linked now
    assert binding.do_record_scan(db, openid="o-follower-0012", scene="qr:other") is None
    later = factories.patient(db, phone="+8613800138000")
    binding.do_record_scan(db, openid="o-follower-0013", scene="dept:CARD")  # not bound yet: remembered
    db.commit()
    _follow(client, fakes.wechat, "o-follower-0013")
    client.post("/wx/bind", data={"action": "birth_date", "phone": "13800138000", "birth_date": "1960-05-17"})
    db.expire_all()
    links = {(link.department_id, link.patient_id) for link in db.scalars(sa.select(DepartmentLink))}
    assert links == {(cardio.id, bound.id), (ortho.id, bound.id), (cardio.id, later.id)}
    assert binding.linked_patient_ids(db, cardio.id) == sorted([bound.id, later.id])
    events = {(e.patient_id, e.subject_id) for e in _audits(db, "wechat.department_linked")}
    assert events == links and all(
        e.detail["scene"].startswith("dept:") for e in _audits(db, "wechat.department_linked")
    )


def test_department_qr_url_asks_wechat_for_a_permanent_scene_code(fakes: Fakes, db: Session) -> None:
    department = factories.department(db, code="CARD")
    url = binding.department_qr_url(department)
    assert url.startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=")
    [call] = fakes.wechat.calls(QRCODE_CREATE)
    assert call.body["action_name"] == "QR_LIMIT_STR_SCENE"
    assert call.body["action_info"]["scene"]["scene_str"] == "dept:CARD"
    assert fakes.wechat.problems == []


def test_the_menu_chat_entry_finds_the_followers_own_chat(
    fakes: Fakes, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, wechat_openid="o-menu-0001")
    db.commit()
    first = client.get("/wx/chat", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/wx/auth?next=%2Fwx%2Fchat"
    assert _follow(client, fakes.wechat, "o-menu-0001", "/wx/chat") == "/wx/chat"
    chat = client.get("/wx/chat", follow_redirects=False)
    token = chat.headers["location"].rsplit("/c/", 1)[1]
    assert read_token(get_settings(), LinkKind.CHAT, token, 3600) == patient.id


def test_the_menu_form_entry_sends_an_unbound_follower_to_binding(
    fakes: Fakes, client: TestClient, db: Session
) -> None:
    _follow(client, fakes.wechat, "o-stranger-01", "/wx/forms")
    assert client.get("/wx/forms", follow_redirects=False).headers["location"] == "/wx/bind"
    factories.patient(db, wechat_openid="o-stranger-01")
    db.commit()
    nothing = client.get("/wx/forms", follow_redirects=False)
    assert nothing.status_code == 200 and "no questionnaire" in nothing.text
