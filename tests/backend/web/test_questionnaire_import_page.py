"""The FHIR import page over HTTP: editors only, CSRF checked, the report in the editor's language,
refusals that publish nothing, and every report note translated in both catalogues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import QuestionnaireVersion, Role, StaffUser
from questionnaires.fhir_report import NOTE_TEXTS
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.questionnaires.published_forms import lhc_phq9

URL = "/staff/studio/questionnaires/import"
ROOT = Path(__file__).resolve().parents[3]


def _upload(client: TestClient, content: bytes, **fields: str) -> object:
    token = _csrf(client.get(URL).text)
    return client.post(
        URL,
        data={"csrf_token": token, **fields},
        files={"file": ("form.json", content, "application/fhir+json")},
    )


def _versions(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireVersion)) or 0)


def test_only_editors_see_the_page(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1", role=Role.NURSE)
    db.commit()
    sign_in(client, "nurse1")
    assert client.get(URL).status_code == 403


def test_a_forged_form_is_refused_and_nothing_published(client: TestClient, db: Session) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    db.commit()
    sign_in(client, "editor1")
    response = client.post(
        URL,
        data={"csrf_token": "forged", "draft": "true"},
        files={"file": ("form.json", json.dumps(lhc_phq9()).encode(), "application/json")},
    )
    assert response.status_code == 403 and _versions(db) == 0


def test_the_report_is_shown_in_the_editors_language(client: TestClient, db: Session) -> None:
    editor = factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    editor.language = "zh-CN"
    db.commit()
    sign_in(client, "editor1")
    page = _upload(client, json.dumps(lhc_phq9()).encode(), language="en")
    assert page.status_code == 200  # type: ignore[attr-defined]
    text = page.text  # type: ignore[attr-defined]
    assert "导入报告" in text and "该计算条目已成为 CareLoop 总分 /44261-6（共 9 题）" in text
    assert "self_harm_thoughts" in text and _versions(db) == 0
    db.execute(sa.update(StaffUser).values(language="vi"))
    db.commit()
    text = _upload(client, json.dumps(lhc_phq9()).encode(), language="en").text  # type: ignore[attr-defined]
    assert "Báo cáo nhập" in text and "văn bản chưa có bản dịch zh-CN" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"%PDF-1.4", "not JSON"),
        (json.dumps({"resourceType": "Observation"}).encode(), "got &#39;Observation&#39;"),
        (b" " * (2 * 1024 * 1024 + 1), "the largest accepted is 2097152 bytes"),
    ],
)
def test_bad_uploads_are_refused_clearly(
    client: TestClient, db: Session, content: bytes, expected: str
) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    db.commit()
    sign_in(client, "editor1")
    response = _upload(client, content, draft="true")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert expected in response.text  # type: ignore[attr-defined]
    assert _versions(db) == 0


def test_a_fifty_megabyte_upload_is_cut_off_by_the_body_limit(client: TestClient, db: Session) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    db.commit()
    sign_in(client, "editor1")
    response = _upload(client, b" " * (50 * 1024 * 1024), draft="true")
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert _versions(db) == 0


def test_every_report_note_is_translated_in_both_catalogues() -> None:
    for code in ("zh_CN", "vi"):
        with (ROOT / "backend" / "i18n" / f"{code}.po").open("rb") as po:
            catalog = read_po(po)
        missing = [t for t in NOTE_TEXTS.values() if not (catalog.get(t) and catalog.get(t).string)]
        assert missing == [], f"{code} lacks {missing}"
        for text in NOTE_TEXTS.values():  # the same placeholders, or format() fails on the page
            assert sorted(_fields(catalog.get(text).string)) == sorted(_fields(text))


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]
