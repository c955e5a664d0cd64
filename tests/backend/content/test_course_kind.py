"""Education courses: the shape rules and diff on their own (pure), and on both databases that a course may
only name articles published in the studio."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import course
from backend.content import revisions as rv
from backend.content.bundle import seed_one_file_kinds
from backend.content.kinds import Change, kind_of
from backend.content.kinds import problems as kind_problems
from backend.models import Role
from backend.services.refusal import ActionRefused
from tests import factories


def _course(*entries: tuple[Any, Any], **parts: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": {"zh-CN": "心内科出院", "vi": "Xuất viện tim mạch", "en": "Leaving cardiology"},
        "articles": [{"article": a, "day": d} for a, d in entries],
    }
    body.update(parts)
    return body


def _codes(body: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    return [(p.where, p.code, p.detail, p.blocking) for p in course.validate(body)]


def test_an_ordered_course_has_no_problem() -> None:
    assert course.validate(_course(("cardiology_diet", 0), ("cardiology_medication", 0), ("x_y", 7))) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_course(), [("articles", "not_a_list", "", True)]),
        (_course(articles="x"), [("articles", "not_a_list", "", True)]),
        (_course(articles=["x"]), [("articles/1", "not_a_table", "", True)]),
        (_course(("Diet", 1)), [("articles/1", "bad_id", "Diet", True)]),
        (_course(("diet", 1), ("diet", 2)), [("articles/2", "duplicate", "diet", True)]),
        (_course(("diet", "3")), [("articles/1", "bad_day", "3", True)]),
        (_course(("diet", True)), [("articles/1", "bad_day", "True", True)]),
        (_course(("diet", 366)), [("articles/1", "bad_day", "366", True)]),
        (_course(("diet", -1)), [("articles/1", "bad_day", "-1", True)]),
        (_course(("diet", 5), ("meds", 2)), [("articles/2", "out_of_order", "2", True)]),
        (_course(("diet", 0), title="x"), [("title", "not_a_table", "", True)]),
        (
            _course(("diet", 0), title={"en": "x" * 121, "vi": "Khóa"}),
            [("title", "missing", "zh-CN", False), ("title", "too_long", "en: 121 > 120", True)],
        ),
        (
            _course(("diet", 0), title={"zh-CN": "课程"}),
            [
                ("title", "missing", "vi", False),
                ("title", "missing", "en", True),
            ],
        ),
    ],
)
def test_each_problem_is_named_at_its_line(body: dict[str, Any], expected: list[Any]) -> None:
    assert _codes(body) == expected


def test_the_diff_names_the_title_per_language_and_the_list_as_a_whole() -> None:
    before = _course(("diet", 0), ("meds", 3))
    after = _course(("diet", 0), ("meds", 5), title={**before["title"], "vi": "Khóa tim mạch"})
    assert course.diff(before, after) == [
        Change("title", "vi", "Xuất viện tim mạch", "Khóa tim mạch"),
        Change("articles", None, "0 | diet\n3 | meds", "0 | diet\n5 | meds"),
    ]
    assert course.diff(before, before) == []


def test_the_editor_lines_become_entries_and_a_day_typed_wrong_is_kept_for_the_validator() -> None:
    form = {"title|en": " Heart ", "title|vi": "", "articles": "0 | diet\r\n\r\n three| meds \n7|walks"}
    body = course.body_from_form(form, "heart")
    assert body == {
        "title": {"en": "Heart"},
        "articles": [
            {"article": "diet", "day": 0},
            {"article": "meds", "day": "three"},
            {"article": "walks", "day": 7},
        ],
    }
    assert ("articles/2", "bad_day", "three", True) in _codes(body)
    assert not kind_of(course.KIND).needs_approver(None, body)


def test_a_course_names_only_articles_published_in_the_studio(db: Session) -> None:
    seed_one_file_kinds(db, get_settings().content_dir)  # the three cardiology articles, published
    body = _course(("cardiology_diet", 0), ("cardiology_warning_signs", 1), ("knee_exercises", 2))
    assert [(p.where, p.code, p.detail) for p in kind_problems(db, course.KIND, body)] == [
        ("articles/3", "not_published", "knee_exercises")
    ]
    editor = factories.staff(db, username="editor", role=Role.CONTENT_EDITOR)
    item = rv.get_item(db, course.KIND, "cardiology_discharge", create=True)
    draft = rv.do_start_draft(db, item, editor, body=body)
    with pytest.raises(rv.ContentInvalid):
        rv.do_submit(db, item, draft.number, editor)
    fixed = _course(("cardiology_diet", 0), ("cardiology_warning_signs", 1))
    rv.do_save_draft(db, item, draft.number, editor, version=draft.version, body=fixed)
    rv.do_submit(db, item, draft.number, editor)
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    rv.do_approve(db, item, draft.number, colleague)  # not clinical: another editor publishes it
    db.commit()
    assert item.published_number == draft.number
    with pytest.raises(ActionRefused):
        rv.do_approve(db, item, draft.number, colleague)  # published once: not in review any more
