"""The canned-replies kind on its own: every validation rule, the diff per reply, field and language, and the
editor's rows read back into a body (pure, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from backend.content import canned
from backend.content.kinds import Change, kind_of


def _reply(key: str = "received", **parts: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "key": key,
        "label": {"zh-CN": "已收到", "vi": "Đã nhận", "en": "Received"},
        "text": {"zh-CN": "已收到您的消息。", "vi": "Đã nhận tin nhắn.", "en": "We got your message."},
    }
    reply.update(parts)
    return reply


def _codes(body: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    return [(p.where, p.code, p.detail, p.blocking) for p in canned.validate(body)]


def test_a_complete_list_has_no_problem_and_the_file_in_content_is_valid() -> None:
    assert canned.validate({"replies": [_reply(), _reply("call_back", category="calls")]}) == []
    assert canned.validate({"replies": []}) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, [("replies", "not_a_list", "", True)]),
        ({"replies": "x"}, [("replies", "not_a_list", "", True)]),
        ({"replies": ["x"]}, [("#1", "not_a_table", "", True)]),
        ({"replies": [_reply("Bad Key")]}, [("Bad Key", "bad_key", "Bad Key", True)]),
        (
            {
                "replies": [
                    _reply(""),
                ]
            },
            [("#1", "bad_key", "", True)],
        ),
        ({"replies": [_reply(), _reply()]}, [("received", "duplicate", "received", True)]),
        ({"replies": [_reply(category="x" * 41)]}, [("received/category", "too_long", "x" * 40, True)]),
        ({"replies": [_reply(label="Received")]}, [("received/label", "not_a_table", "", True)]),
        ({"replies": [_reply(extra=1)]}, [("received", "unknown_part", "extra", True)]),
    ],
)
def test_each_structural_problem_is_named_where_it_is(body: dict[str, Any], expected: list[Any]) -> None:
    assert _codes(body) == expected


def test_a_missing_translation_is_flagged_and_only_english_blocks() -> None:
    reply = _reply()
    reply["text"] = {"zh-CN": "", "en": "Hello"}
    assert _codes({"replies": [reply]}) == [
        ("received/text", "missing", "zh-CN", False),
        ("received/text", "missing", "vi", False),
    ]
    reply["text"] = {"zh-CN": "你好", "vi": "Xin chào"}
    assert _codes({"replies": [reply]}) == [("received/text", "missing", "en", True)]


def test_texts_that_are_not_text_too_long_or_in_an_unknown_language_are_refused() -> None:
    reply = _reply()
    reply["text"] = {"zh-CN": 3, "vi": "x" * (canned.MAX_TEXT + 1), "en": "ok", "fr": "non"}
    reply["label"] = {**reply["label"], "en": "y" * (canned.MAX_LABEL + 1)}
    assert _codes({"replies": [reply]}) == [
        ("received/label", "too_long", f"en: {canned.MAX_LABEL + 1} > {canned.MAX_LABEL}", True),
        ("received/text", "unknown_language", "fr", True),
        ("received/text", "not_text", "zh-CN", True),
        ("received/text", "too_long", f"vi: {canned.MAX_TEXT + 1} > {canned.MAX_TEXT}", True),
    ]


def test_the_diff_names_each_field_and_language_that_changed() -> None:
    before = {"replies": [_reply(), _reply("call_back")]}
    after_reply = _reply(category="calls")
    after_reply["text"] = {**after_reply["text"], "vi": "Đã nhận được."}
    after = {"replies": [after_reply, _reply("come_in")]}
    changes = canned.diff(before, after)
    assert Change("received/text", "vi", "Đã nhận tin nhắn.", "Đã nhận được.") in changes
    assert Change("received/category", None, None, "calls") in changes
    assert Change("call_back/text", "en", "We got your message.", None) in changes
    assert Change("come_in/label", "zh-CN", None, "已收到") in changes
    assert all(c.where.split("/")[0] in {"received", "call_back", "come_in"} for c in changes)
    assert canned.diff(before, before) == []


def test_a_new_order_is_one_change() -> None:
    a, b = _reply("a_one"), _reply("b_two")
    assert canned.diff({"replies": [a, b]}, {"replies": [b, a]}) == [
        Change("order", None, "a_one b_two", "b_two a_one")
    ]


def test_the_editor_rows_become_a_body_in_order_dropping_removed_and_empty_rows() -> None:
    form = {
        "r|2|key": "call_back",
        "r|2|label|en": "Call back",
        "r|2|text|en": " We will call. ",
        "r|2|text|vi": "",
        "r|1|key": "received",
        "r|1|category": "general",
        "r|1|label|zh-CN": "已收到",
        "r|1|text|zh-CN": "收到",
        "r|3|key": "gone",
        "r|3|remove": "1",
        "r|4|key": "",
        "r|4|text|en": "",
        "r|x|key": "ignored",
        "csrf_token": "t",
    }
    assert canned.body_from_form(form) == {
        "replies": [
            {
                "key": "received",
                "category": "general",
                "label": {"zh-CN": "已收到"},
                "text": {"zh-CN": "收到"},
            },
            {"key": "call_back", "label": {"en": "Call back"}, "text": {"en": "We will call."}},
        ]
    }


def test_the_kind_is_registered_not_clinical_and_previews_in_the_language_with_english_fallback() -> None:
    kind = kind_of(canned.KIND)
    reply = _reply()
    reply["text"] = {"en": "Hello"}
    assert not kind.needs_approver(None, {"replies": [reply]})
    assert kind.preview({"replies": [reply]}, "vi") == {"received": "Hello"}
