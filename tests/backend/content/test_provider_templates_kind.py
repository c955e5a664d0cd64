"""Provider template mappings: the kind's rules and diff on their own (pure), and on both databases that
the content file seeds them, the outbox reads the published revision (the console's mapping still wins),
and the studio's editor counts each WeChat field per language."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.admin.channels import WECHAT_FIELD_LIMIT
from backend.app.settings import get_settings
from backend.content import provider_templates as kind
from backend.content import revisions as rv
from backend.content.bundle import seed_one_file_kinds
from backend.content.kinds import Change
from backend.content.kinds import problems as kind_problems
from backend.models import Role
from backend.outbox.providers import template_spec
from bots.domain import Channel
from tests import factories
from tests.backend.security.test_staff_auth import sign_in

SID = "HX" + "0" * 32
SAMPLES = {
    "zh-CN": {"hospital": "第一医院", "title": "出院随访"},
    "en": {"hospital": "First Hospital", "title": "A" * 15},
}


def _body(**wechat_fields: str) -> dict[str, Any]:
    return {
        "notice": {
            "wechat": {"id": "tmpl-notice", "fields": {"first": "{hospital}", **wechat_fields}},
            "whatsapp": {"id": SID, "fields": {"1": "{hospital}", "2": "{text}"}},
            "sms": {"id": "SMS_123", "fields": {"text": "{text}"}},
        }
    }


def _codes(problems: list[Any]) -> list[tuple[str, str, str, bool]]:
    return [(p.where, p.code, p.detail, p.blocking) for p in problems]


def test_a_well_formed_mapping_and_the_content_file_have_no_problem() -> None:
    import yaml

    assert kind.validate(_body(keyword1="{title}")) == []
    path = get_settings().content_dir / "channels" / "templates.yaml"
    assert kind.validate(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"notice": "x"}, [("notice", "not_a_table", "", True)]),
        ({"notice": {"fax": {}}}, [("notice/fax", "unknown_channel", "fax", True)]),
        ({"notice": {"wechat": "x"}}, [("notice/wechat", "not_a_table", "", True)]),
        (
            {"notice": {"wechat": {"id": "bad id!", "fields": {"a": "b"}}}},
            [("notice/wechat/id", "bad_template_id", "bad id!", True)],
        ),
        (
            {"notice": {"whatsapp": {"id": "HX123", "fields": {"1": "x"}}}},
            [("notice/whatsapp/id", "bad_template_id", "HX123", True)],
        ),
        ({"notice": {"sms": {"id": "SMS 1"}}}, [("notice/sms/id", "bad_template_id", "SMS 1", True)]),
        ({"notice": {"sms": {"id": "SMS_1"}}}, []),  # an SMS template is filled with the text: no fields
        (
            {"notice": {"wechat": {"id": "t", "fields": {}}}},
            [("notice/wechat/fields", "no_fields", "", True)],
        ),
        (
            {"notice": {"wechat": {"id": "t", "fields": "a = b"}}},
            [("notice/wechat/fields", "not_a_table", "", True)],
        ),
        (
            {"notice": {"wechat": {"id": "t", "fields": {"bad name": "x", "ok": "y" * 201}}}},
            [
                ("notice/wechat/fields", "bad_field_name", "bad name", True),
                ("notice/wechat/fields/ok", "too_long", "y" * 40, True),
            ],
        ),
    ],
)
def test_each_shape_problem_is_named_where_it_is(body: dict[str, Any], expected: list[Any]) -> None:
    assert _codes(kind.validate(body)) == expected


def test_wechat_fields_are_counted_per_language_and_a_cut_one_is_flagged_without_blocking() -> None:
    body = _body(keyword1="{title}", keyword2="{hospital}：{title}", keyword3="{url}", remark="{text}")
    assert kind.counts(body, SAMPLES) == {
        "notice/keyword1": {"zh-CN": 4, "en": 15},
        "notice/keyword2": {"zh-CN": 9, "en": 30},
        "notice/keyword3": {"zh-CN": 0, "en": 0},
    }
    assert _codes(kind.limit_problems(body, SAMPLES)) == [
        (
            "notice/wechat/fields/keyword2",
            "too_long_for_wechat",
            f"en: 30 > {WECHAT_FIELD_LIMIT}: First Hospital：" + "A" * 15,
            False,
        ),
        ("notice/wechat/fields/keyword3", "unbounded", "", False),
    ]


def test_the_diff_names_each_id_and_field_and_the_form_reads_back() -> None:
    before = _body(keyword1="{title}")
    after = _body(keyword1="{hospital}")
    after["notice"]["whatsapp"]["id"] = "HX" + "1" * 32
    del after["notice"]["sms"]
    assert kind.diff(before, after) == [
        Change("notice/sms/fields/text", None, "{text}", None),
        Change("notice/sms/id", None, "SMS_123", None),
        Change("notice/wechat/fields/keyword1", None, "{title}", "{hospital}"),
        Change("notice/whatsapp/id", None, SID, "HX" + "1" * 32),
    ]
    form = {
        "t|notice|wechat|id": " tmpl-notice ",
        "t|notice|wechat|fields": "first = {hospital}\r\n\r\nkeyword1={title}\nno equals sign",
        "t|notice|whatsapp|id": "",
        "t|notice|whatsapp|fields": "",
        "t|notice|sms|id": "SMS_9",
        "csrf_token": "x",
    }
    body = kind.body_from_form(form)
    assert body == {
        "notice": {
            "wechat": {
                "id": "tmpl-notice",
                "fields": {"first": "{hospital}", "keyword1": "{title}", "?no equals sign": ""},
            },
            "sms": {"id": "SMS_9", "fields": {"text": "{text}"}},
        }
    }
    assert ("notice/wechat/fields", "bad_field_name", "?no equals sign", True) in _codes(kind.validate(body))


def test_the_published_mapping_is_what_the_outbox_uses_and_the_console_still_wins(db: Session) -> None:
    settings = get_settings()
    seed_one_file_kinds(db, settings.content_dir)
    item = rv.get_item(db, kind.KIND, kind.KEY)
    assert item.published_number == 1 and not item.clinical
    spec = template_spec("notice", Channel.WECHAT, settings, db)
    assert spec is not None and spec["id"] == "DEMO-wechat-notice"
    assert template_spec("notice", Channel.SMS, settings, db) is None  # no carrier id anywhere yet
    from backend.admin.channel_store import template_rows

    sources = {(r.key, r.channel): r.source for r in template_rows(db, settings)}
    assert sources[("notice", Channel.WECHAT)] == "studio"  # the admin page says where the mapping comes from

    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    draft = rv.do_start_draft(db, item, author)
    body = dict(draft.body)
    body["notice"] = {
        **body["notice"],
        "wechat": {"id": "hospital-notice-1", "fields": {"first": "{hospital}", "remark": "{text}"}},
    }
    body["notice"]["sms"] = {"id": "SMS_2024", "fields": {"text": "{text}"}}
    rv.do_save_draft(db, item, draft.number, author, version=draft.version, body=body)
    assert kind_problems(db, kind.KIND, body) == []
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, colleague)
    db.commit()
    spec = template_spec("notice", Channel.WECHAT, settings, db)
    assert spec is not None and spec["id"] == "hospital-notice-1"
    sms = template_spec("notice", Channel.SMS, settings, db)
    assert sms == {"id": "SMS_2024", "fields": {"text": "{text}"}}

    from backend.admin.channel_store import do_set_template

    do_set_template(
        db, "notice", Channel.WECHAT, "console-id", "first = {hospital}", by=colleague.id, ip=None
    )
    db.commit()
    spec = template_spec("notice", Channel.WECHAT, settings, db)
    assert spec is not None and spec["id"] == "console-id"


def test_the_editor_counts_each_wechat_field_in_every_language_and_renders_problems_back(
    client: TestClient, db: Session
) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    db.commit()
    sign_in(client, "editor1")
    home = client.get("/staff/studio")
    token = home.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    opened = client.post("/staff/studio/provider-templates/open", data={"csrf_token": token})
    assert (
        opened.status_code == 200 and 'id="templates-form"' in opened.text
    )  # a draft of the file's mappings
    url = str(opened.url)
    assert "DEMO-wechat-followup-invite" in opened.text
    page = client.post(
        f"{url}/save",
        data={
            "csrf_token": token,
            "version": "1",
            "t|notice|wechat|id": "bad id!",
            "t|notice|wechat|fields": "first = {hospital}\nkeyword1 = {hospital}{hospital}",
        },
    )
    assert page.status_code == 200
    assert 'data-code="bad_template_id"' in page.text
    hospital = len(get_settings().hospital_name) * 2
    assert f"en {hospital}/{WECHAT_FIELD_LIMIT}" in page.text
    saved = rv.get_revision(db, rv.get_item(db, kind.KIND, kind.KEY), 1)
    db.refresh(saved)
    assert saved.body["notice"]["wechat"]["id"] == "bad id!"  # a draft keeps what was typed
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = client.post(f"{url}/submit", data={"csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 303 and "error=content_invalid" in refused.headers["location"]
