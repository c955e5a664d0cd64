"""The HIS source pages over HTTP: only the integration role, a misfit form refused with its reason and
nothing saved, the address never shown back or audited, the list filtered and exported, and a second
"pull now" refused while the first is unfinished; in Chinese and Vietnamese too."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.imports.his_sources import do_start_pull
from backend.models import AuditEvent, HisSource, Role, StaffUser, WorkJob
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in

URL = "postgresql+psycopg://reader:s3cret-his@127.0.0.1:1/emr"
FORM = {
    "name": "HIS-1",
    "url": URL,
    "query": "SELECT * FROM v_患者 WHERE 更新时间 >= :since",
    "kind": "patients",
    "watermark_column": "更新时间",
    "watermark": "",
    "interval_minutes": "60",
    "enabled": "on",
    "version": "0",
}


def _sign_in(db: Session, client: TestClient, role: Role = Role.INTEGRATION, language: str = "en") -> None:
    user = factories.staff(db, username="feed", role=role)
    user.language = language
    db.commit()
    assert sign_in(client, "feed").status_code == 303


def test_only_the_integration_role_sees_the_sources(db: Session, client: TestClient) -> None:
    _sign_in(db, client, Role.NURSE)
    assert client.get("/staff/his-sources").status_code == 403
    assert client.get("/staff/his-sources/export.csv").status_code == 403
    denied = db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action == "his_source.denied")).all()
    assert len(denied) == 2


def test_add_refuse_export_and_pull_once(db: Session, client: TestClient) -> None:
    _sign_in(db, client)
    page = client.get("/staff/his-sources/new")
    csrf = _csrf(page.text)
    refused = client.post("/staff/his-sources/new", data={**FORM, "query": "SELECT 1", "csrf_token": csrf})
    assert refused.status_code == 400 and "A SELECT with the :since parameter." in refused.text
    assert URL not in refused.text and "s3cret-his" not in refused.text  # not even echoed back
    assert db.scalar(sa.select(sa.func.count()).select_from(HisSource)) == 0

    saved = client.post("/staff/his-sources/new", data={**FORM, "csrf_token": csrf})
    assert saved.status_code == 200 and "s3cret-his" not in saved.text and "reader:***@" in saved.text
    source = db.scalars(sa.select(HisSource)).one()
    raw = db.execute(sa.text("SELECT url FROM his_sources")).scalar_one()
    assert "s3cret" not in raw  # encrypted at rest
    audited = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "his_source.saved")).one()
    assert "s3cret" not in str(audited.detail) and audited.detail["changed"] == ["created"]

    stale = client.post(f"/staff/his-sources/{source.id}", data={**FORM, "url": "", "csrf_token": csrf,
                                                                   "version": "0"})  # fmt: skip
    assert stale.status_code == 400 and "Someone changed this source meanwhile" in stale.text

    listed = client.get("/staff/his-sources?outcome=never&kind=patients&enabled=yes&q=HIS")
    assert 'data-source="' in listed.text and "Never pulled" in listed.text
    assert client.get("/staff/his-sources?outcome=whatever").status_code == 400
    exported = client.get("/staff/his-sources/export.csv?kind=patients")
    lines = exported.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("name,kind,database") and lines[1].startswith("HIS-1,patients,postgresql")
    assert "s3cret" not in exported.text

    # a pull not yet run (started here, never launched): "pull now" is refused meanwhile
    do_start_pull(db, source, by=None)
    db.commit()
    second = client.post(
        f"/staff/his-sources/{source.id}/pull", data={"csrf_token": csrf}, follow_redirects=True
    )
    assert "The last pull, or its confirm, has not finished." in second.text
    assert db.scalar(sa.select(sa.func.count()).select_from(WorkJob)) == 1


def test_the_pages_speak_chinese_and_vietnamese(db: Session, client: TestClient) -> None:
    _sign_in(db, client, language="zh-CN")
    assert "HIS 数据源" in client.get("/staff/his-sources").text
    assert "添加 HIS 数据源" in client.get("/staff/his-sources/new").text
    db.execute(sa.update(StaffUser).values(language="vi"))
    db.commit()
    assert "Nguồn HIS" in client.get("/staff/his-sources").text
