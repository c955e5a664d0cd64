"""The education-article kind on its own: every validation rule, missing translations flagged (English
required), the diff per part and language, and the editor's fields read back into a body (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.app.settings import get_settings
from backend.content import education
from backend.content.kinds import Change, kind_of


def _article(**parts: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "diet",
        "departments": ["cardiology"],
        "title": {"zh-CN": "饮食", "vi": "Chế độ ăn", "en": "Diet"},
        "summary": {"zh-CN": "少盐。", "vi": "Ít muối.", "en": "Less salt."},
        "body": {"zh-CN": ["少盐。", "多菜。"], "vi": ["Ít muối."], "en": ["Less salt.", "More greens."]},
    }
    body.update(parts)
    return body


def _codes(body: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    return [(p.where, p.code, p.detail, p.blocking) for p in education.validate(body)]


def test_every_article_in_content_is_valid() -> None:
    files = sorted((get_settings().content_dir / "education").glob("*.yaml"))
    assert files
    for path in files:
        body = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        assert education.validate(body) == [], path.name
        assert body["id"] == path.stem


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"id": "Diet"}, [("id", "bad_id", "Diet", True)]),
        ({"id": None}, [("id", "bad_id", "", True)]),
        ({"departments": "cardiology"}, [("departments", "not_a_list", "", True)]),
        ({"departments": [""]}, [("departments", "not_a_list", "", True)]),
        ({"title": "Diet"}, [("title", "not_a_table", "", True)]),
        ({"body": ["x"]}, [("body", "not_a_table", "", True)]),
        ({"extra": 1}, [("extra", "unknown_part", "", True)]),
        (
            {"summary": {"zh-CN": "a\nb", "vi": 1, "en": "x" * (education.MAX_SUMMARY + 1), "fr": "y"}},
            [
                ("summary", "unknown_language", "fr", True),
                ("summary", "not_one_line", "zh-CN", True),
                ("summary", "not_text", "vi", True),
                ("summary", "too_long", f"en: {education.MAX_SUMMARY + 1} > {education.MAX_SUMMARY}", True),
            ],
        ),
        (
            {"body": {"zh-CN": "一段", "vi": ["", "x"], "en": ["x" * (education.MAX_PARAGRAPH + 1)]}},
            [
                ("body", "not_text", "zh-CN", True),
                ("body", "empty", "vi", True),
                ("body", "too_long", f"en: > {education.MAX_PARAGRAPH}", True),
            ],
        ),
    ],
)
def test_each_problem_is_named_where_it_is(parts: dict[str, Any], expected: list[Any]) -> None:
    assert _codes(_article(**parts)) == expected


def test_missing_translations_are_flagged_and_only_missing_english_blocks() -> None:
    body = _article(title={"en": "Diet"}, body={"zh-CN": ["少盐。"], "en": ["Less salt."]})
    assert _codes(body) == [
        ("title", "missing", "zh-CN", False),
        ("title", "missing", "vi", False),
        ("body", "missing", "vi", False),
    ]
    assert education.missing_languages(body) == ["zh-CN", "vi"]
    english_missing = _article(summary={"zh-CN": "少盐。", "vi": "Ít muối.", "en": " "})
    assert _codes(english_missing) == [("summary", "missing", "en", True)]


def test_the_diff_is_per_part_and_language_with_paragraphs_one_text() -> None:
    after = _article(departments=["cardiology", "geriatrics"])
    after["body"] = {**after["body"], "vi": ["Ít muối.", "Nhiều rau."]}
    after["title"] = {k: v for k, v in after["title"].items() if k != "zh-CN"}
    assert education.diff(_article(), after) == [
        Change("body", "vi", "Ít muối.", "Ít muối.\n\nNhiều rau."),
        Change("departments", None, "cardiology", "cardiology, geriatrics"),
        Change("title", "zh-CN", "饮食", None),
    ]
    assert education.diff(_article(), _article()) == []


def test_the_editor_fields_become_a_body_paragraphs_split_on_blank_lines() -> None:
    form = {
        "departments": " cardiology, ,geriatrics ",
        "title|en": " Diet ",
        "title|vi": "",
        "summary|en": "Less salt.",
        "body|en": "Less salt.\r\n\r\nMore\ngreens.\n\n\n",
        "body|zh-CN": "   ",
    }
    assert education.body_from_form(form, "diet") == {
        "id": "diet",
        "departments": ["cardiology", "geriatrics"],
        "title": {"en": "Diet"},
        "summary": {"en": "Less salt."},
        "body": {"en": ["Less salt.", "More greens."]},
    }


def test_the_kind_is_clinical_and_previews_with_english_where_a_translation_is_missing() -> None:
    kind = kind_of(education.KIND)
    body = _article(title={"en": "Diet"})
    assert kind.needs_approver(None, body) and kind.needs_approver(body, body)
    assert kind.preview(body, "vi") == {"title": "Diet", "summary": "Ít muối.", "body": "Ít muối."}
