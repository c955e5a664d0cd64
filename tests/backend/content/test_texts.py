"""The message-catalogue kind's pure rules: placeholders, validation, diff, channel costs, staleness."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.content.texts import (
    BrokenPlaceholder,
    changed_in,
    cost,
    diff,
    merge_edits,
    placeholders,
    stale,
    touches_clinical,
    validate,
)
from backend.dialogue.content import catalog_tables

CONTENT = Path(__file__).resolve().parents[3] / "content"


@pytest.mark.parametrize(
    ("text", "names"),
    [("plain", set()), ("Hello {name}, {hospital}", {"name", "hospital"}), ("{{literal}} {x}", {"x"})],
)
def test_placeholders_are_the_named_fields(text: str, names: set[str]) -> None:
    assert placeholders(text) == names


@pytest.mark.parametrize("text", ["{name", "name}", "{}", "{0}", "{a.b}", "{a[0]}", "{a:>3}", "{a!r}"])
def test_a_placeholder_the_bot_cannot_fill_is_broken(text: str) -> None:
    with pytest.raises(BrokenPlaceholder):
        placeholders(text)


def test_the_shipped_catalogue_validates_clean() -> None:
    assert validate(catalog_tables(CONTENT)) == []


def test_validation_names_every_problem_and_only_a_missing_fallback_blocks() -> None:
    body = {
        "en": {"a": "Hi {name}", "b": "ok", "c": "x {y", "d": " "},
        "zh-CN": {"a": "你好 {nom}", "b": "好", "c": "x", "d": "d", "e": "only here"},
        "vi": {"a": "Chào {name}", "c": "x", "d": "d", "e": "chỉ"},
    }
    problems = {(p.where, p.code, p.blocking) for p in validate(body)}
    assert problems == {
        ("a", "placeholders_differ", True),
        ("b", "missing", False),  # vi falls back to en: shown, not blocking
        ("c", "broken_placeholder", True),
        ("d", "empty", True),
        ("e", "missing", True),  # no English fallback: a patient could get nothing
    }
    assert [p.code for p in validate({"fr": {}})] == ["unknown_language"]
    assert "not_text" in [p.code for p in validate({"en": {"a": 3}})]


def test_diff_lists_changed_added_and_removed_texts_per_language() -> None:
    before = {"en": {"a": "one", "b": "two"}, "vi": {"a": "một"}}
    after = {"en": {"a": "one!", "c": "three"}, "vi": {"a": "một"}}
    assert [(c.where, c.lang, c.before, c.after) for c in diff(before, after)] == [
        ("a", "en", "one", "one!"),
        ("b", "en", "two", None),
        ("c", "en", None, "three"),
    ]


def test_cost_counts_sms_segments_by_encoding_and_wechat_bytes() -> None:
    assert (cost("a" * 160).encoding, cost("a" * 160).sms_segments) == ("GSM-7", 1)
    assert cost("a" * 161).sms_segments == 2
    assert (cost("你" * 70).encoding, cost("你" * 70).sms_segments) == ("UCS-2", 1)
    assert cost("你" * 71).sms_segments == 2
    assert cost("你" * 683).wechat_too_long and not cost("你" * 682).wechat_too_long
    assert cost("Hi {name}").sms_segments == 1  # placeholders counted as «name»


def test_a_translation_older_than_its_source_text_is_stale() -> None:
    history = [
        (1, {"zh-CN": {"a": "甲", "b": "乙"}, "en": {"a": "A", "b": "B"}, "vi": {"a": "A-vi"}}),
        (2, {"zh-CN": {"a": "甲甲", "b": "乙"}, "en": {"a": "A", "b": "B"}, "vi": {"a": "A-vi"}}),
        (3, {"zh-CN": {"a": "甲甲", "b": "乙乙"}, "en": {"a": "A", "b": "BB"}, "vi": {"a": "A-vi"}}),
    ]
    changed = changed_in(history)
    assert changed[("a", "zh-CN")] == 2 and changed[("b", "en")] == 3
    assert stale(changed, ["a", "b"], "zh-CN") == {("a", "en"), ("a", "vi")}


def test_edits_merge_and_an_empty_edit_removes_the_text() -> None:
    body = {"en": {"a": "A", "b": "B"}, "vi": {"a": "a"}, "zh-CN": {}}
    merged = merge_edits(
        body, {("a", "en"): "A2\r\nline", ("b", "en"): "  ", ("a", "zh-CN"): "甲", ("a", "xx"): "?"}
    )
    assert merged == {"en": {"a": "A2\nline"}, "vi": {"a": "a"}, "zh-CN": {"a": "甲"}}
    assert body["en"] == {"a": "A", "b": "B"}  # the input is left as it was


def test_emergency_texts_are_clinical() -> None:
    assert touches_clinical({"en": {"safety.x": "a"}}, {"en": {"safety.x": "b"}})
    assert not touches_clinical(
        {"en": {"menu.x": "a", "safety.x": "s"}}, {"en": {"menu.x": "b", "safety.x": "s"}}
    )
