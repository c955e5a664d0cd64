"""The studio's pages through the app: who may enter, the editor's flags and costs, filter and export, two
editors saving one draft (the second gets her texts back), the diff, and approval from the page."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.bundle import seed_from_files
from backend.content.catalogue import DIALOGUES
from backend.content.texts import KIND
from backend.models import ContentRevision, RevisionState, Role
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in

BASE = f"/staff/studio/items/{KIND}/{DIALOGUES}"


def _editor_client(client: TestClient, db: Session, username: str = "editor") -> str:
    factories.staff(db, username=username, role=Role.CONTENT_EDITOR)
    db.commit()
    assert sign_in(client, username).status_code == 303
    return _csrf(client.get("/staff/studio").text)


def test_only_editors_and_admins_enter_the_studio(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse", role=Role.NURSE)
    db.commit()
    sign_in(client, "nurse")
    assert client.get("/staff/studio").status_code == 403
    assert "Content studio" not in client.get("/staff").text


def test_the_editor_shows_texts_side_by_side_with_flags_costs_filter_and_export(
    client: TestClient, db: Session
) -> None:
    csrf = _editor_client(client, db)
    assert client.post("/staff/studio/seed", data={"csrf_token": csrf}).status_code == 200
    page = client.get(f"{BASE}/r/1", params={"q": "welcome.greeting"})
    assert page.status_code == 200
    assert page.text.count('<tr data-key="') == 1 and "SMS: " in page.text and "WeChat: " in page.text

    client.post(f"{BASE}/draft", data={"csrf_token": csrf})
    draft = client.get(f"{BASE}/r/2", params={"q": "welcome.greeting"}).text
    version = re.search(r'name="version" value="(\d+)"', draft)
    assert version is not None
    form = {
        "csrf_token": csrf,
        "version": version.group(1),
        "q": "welcome.greeting",
        "t|zh-CN|welcome.greeting": "您好，这里是{hospital}的随访服务。",
        "t|vi|welcome.greeting": "",  # removed: a missing translation
        "t|en|welcome.greeting": "Hello from {hospital}.",
        "changelog": "shorter greeting",
    }
    saved = client.post(f"{BASE}/r/2/save", data=form)
    assert saved.status_code == 200
    assert 'class="badge missing"' in saved.text and 'class="badge stale"' not in saved.text
    missing = client.get(f"{BASE}/r/2", params={"show": "missing"}).text
    assert missing.count('<tr data-key="') == 1
    export = client.get(f"{BASE}/r/2/export.csv", params={"show": "changed"})
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    assert lines[0].startswith("key,zh-CN,vi,en") and len(lines) == 2 and "welcome.greeting" in lines[1]

    # the second editor who loaded the same version is told, and gets what she typed back
    stale_form = {**form, "t|en|welcome.greeting": "Hi there from {hospital}!"}
    conflict = client.post(f"{BASE}/r/2/save", data=stale_form)
    assert conflict.status_code == 409
    assert "Someone saved this draft" in conflict.text and "Hi there from {hospital}!" in conflict.text
    db.expire_all()
    item = rv.get_item(db, KIND, DIALOGUES)
    assert rv.get_revision(db, item, 2).body["en"]["welcome.greeting"] == "Hello from {hospital}."


def test_a_broken_placeholder_is_refused_at_submit_and_shown(client: TestClient, db: Session) -> None:
    csrf = _editor_client(client, db)
    seed_from_files(db, get_settings().content_dir)
    db.commit()
    client.post(f"{BASE}/draft", data={"csrf_token": csrf})
    form = {"csrf_token": csrf, "version": "1", "t|en|welcome.greeting": "Hello {hospital"}
    client.post(f"{BASE}/r/2/save", data=form)
    refused = client.post(f"{BASE}/r/2/submit", data={"csrf_token": csrf})
    assert "This revision has problems" in refused.text and "broken placeholder" in refused.text
    db.expire_all()
    assert (
        db.scalar(sa.select(ContentRevision.state).where(ContentRevision.number == 2)) is RevisionState.DRAFT
    )


def test_a_colleague_approves_from_the_page_and_the_diff_shows_the_change(
    client: TestClient, db: Session
) -> None:
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    seed_from_files(db, get_settings().content_dir)
    item = rv.get_item(db, KIND, DIALOGUES)
    body = {lang: dict(t) for lang, t in rv.get_revision(db, item, 1).body.items()}
    body["vi"]["menu.prompt"] = "Bạn cần gì hôm nay?"
    draft = rv.do_start_draft(db, item, author, body=body)
    rv.do_submit(db, item, draft.number, author)
    db.commit()
    csrf = _editor_client(client, db, "colleague")
    home = client.get("/staff/studio").text
    awaiting = home[home.index('id="awaiting"') :]
    assert f"{DIALOGUES}</code> · revision 2" in awaiting[: awaiting.index("</ul>")]
    approved = client.post(f"{BASE}/r/2/approve", data={"csrf_token": csrf, "publish_at": ""})
    assert approved.status_code == 200
    db.expire_all()
    assert rv.get_item(db, KIND, DIALOGUES).published_number == 2
    diff = client.get(f"{BASE}/diff", params={"a": 1, "b": 2}).text
    assert diff.count('<tr data-key="') == 1 and "Bạn cần gì hôm nay?" in diff


def test_translations_go_out_as_po_and_come_back_into_the_draft(client: TestClient, db: Session) -> None:
    csrf = _editor_client(client, db)
    seed_from_files(db, get_settings().content_dir)
    db.commit()
    client.post(f"{BASE}/draft", data={"csrf_token": csrf})
    exported = client.get(f"{BASE}/r/2/translation/vi.po")
    assert exported.status_code == 200 and b'msgctxt "welcome.greeting"' in exported.content
    assert client.get(f"{BASE}/r/2/translation/zh-CN.po").status_code == 404  # the source language itself
    item = rv.get_item(db, KIND, DIALOGUES)
    old_vi = rv.get_revision(db, item, 1).body["vi"]["welcome.greeting"]
    new_vi = "Xin chào, đây là dịch vụ theo dõi của {hospital}."
    changed = exported.content.replace(old_vi.encode(), new_vi.encode())
    files = {"file": ("vi.po", changed, "text/x-gettext-translation")}
    page = client.post(
        f"{BASE}/r/2/translation", data={"csrf_token": csrf, "lang": "vi", "version": "1"}, files=files
    )
    assert "1 translations taken; 0 skipped" in page.text
    db.expire_all()
    assert rv.get_revision(db, item, 2).body["vi"]["welcome.greeting"] == new_vi

    wrong = {"file": ("x.po", b"not a po file at all", "text/plain")}
    refused = client.post(
        f"{BASE}/r/2/translation", data={"csrf_token": csrf, "lang": "vi", "version": "2"}, files=wrong
    )
    assert "nothing was taken from it" in refused.text


def test_approval_for_a_later_local_time_schedules_it_and_a_bad_time_is_refused(
    client: TestClient, db: Session
) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    seed_from_files(db, get_settings().content_dir)
    item = rv.get_item(db, KIND, DIALOGUES)
    draft = rv.do_start_draft(db, item, author)
    rv.do_submit(db, item, draft.number, author)
    db.commit()
    csrf = _editor_client(client, db, "colleague")
    bad = client.post(f"{BASE}/r/2/approve", data={"csrf_token": csrf, "publish_at": "tomorrow noon"})
    assert "Give the publish time as a date and a time." in bad.text
    zone = ZoneInfo(get_settings().default_timezone)
    local = (datetime.now(zone) + timedelta(days=1)).replace(second=0, microsecond=0, tzinfo=None)
    client.post(
        f"{BASE}/r/2/approve", data={"csrf_token": csrf, "publish_at": local.isoformat(timespec="minutes")}
    )
    db.expire_all()
    scheduled = rv.get_revision(db, rv.get_item(db, KIND, DIALOGUES), 2)
    assert scheduled.state is RevisionState.APPROVED
    assert scheduled.publish_at == local.replace(tzinfo=zone)
    assert rv.get_item(db, KIND, DIALOGUES).published_number == 1
