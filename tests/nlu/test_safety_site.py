"""A hospital's own red-flag phrases and exceptions: what they add to the rules, what validation refuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nlu import safety_site as site
from nlu.red_flags import Emergency
from nlu.safety import check
from nlu.safety_match import find


@pytest.fixture(autouse=True)
def _nothing_installed() -> Iterator[None]:
    site.install(site.EMPTY)
    yield
    site.install(site.EMPTY)


def _body(**phrases: dict[str, list[str]]) -> dict[str, Any]:
    body = site.skeleton()
    for category, by_lang in phrases.items():
        if category == "exceptions":
            body["exceptions"].update(by_lang)
        else:
            body["phrases"][category].update(by_lang)
    return body


def _codes(body: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(p.where, p.code, p.blocking) for p in site.problems(body)]


LOCAL = _body(
    chest_pain={"zh-CN": ["心里头绞着"]},
    unconscious={"vi": ["lả đi rồi"]},
    self_harm={"en": ["go to sleep forever"]},
)


def test_installed_phrases_raise_their_category_and_nothing_else_changes() -> None:
    texts = [
        "我妈说心里头绞着难受",
        "bà em lả đi rồi, ngồi im",
        "some days I just want to go to sleep forever",
    ]
    assert [check(t) for t in texts] == [None, None, None]  # the built-in rules do not know these words
    site.install(site.from_body(LOCAL, revision=3))
    hits = [check(t) for t in texts]
    assert [h.emergency if h else None for h in hits] == [
        Emergency.CHEST_PAIN,
        Emergency.UNCONSCIOUS,
        Emergency.SELF_HARM,
    ]
    assert check("I want to book an appointment") is None
    assert check("I have chest pain and I can't breathe") is not None  # the built-in rules still answer
    assert site.active().revision == 3


def test_a_site_phrase_is_discounted_like_any_symptom_except_self_harm() -> None:
    site.install(site.from_body(LOCAL))
    assert check("我妈没有心里头绞着的感觉") is None  # denied
    assert check("上周心里头绞着，现在好了") is None  # over
    assert check("bà em lả đi rồi") is not None
    assert check("ba em la di roi, goi khong day") is not None  # typed without marks
    hit = check("I would never go to sleep forever, don't worry")
    assert hit is not None and hit.emergency is Emergency.SELF_HARM  # never discounted


def test_an_exception_blocks_the_tags_inside_it() -> None:
    text = "胸痛门诊几点开门"  # when does the chest pain clinic open: this hospital's clinic name
    assert find(text)[0].emergency is Emergency.CHEST_PAIN  # the built-in rules do not know it
    site.install(site.from_body(_body(exceptions={"zh-CN": ["胸痛门诊"]})))
    assert find(text) == []
    assert Emergency.CHEST_PAIN in {
        f.emergency for f in find("胸痛得厉害，喘不上气")
    }  # chest pain still counts


def test_a_draft_is_read_only_where_it_is_passed_never_installed() -> None:
    draft = site.from_body(LOCAL)
    assert find("我妈说心里头绞着难受", draft)[0].emergency is Emergency.CHEST_PAIN
    assert find("我妈说心里头绞着难受") == [] and not site.active()


def test_markers_in_a_hospitals_phrase_are_taken_as_written() -> None:
    lexicon = site.from_body(_body(poisoning={"en": ["drank the *bleach*"]}))
    assert find("my son drank the *bleach* cleaner", lexicon)[0].emergency is Emergency.POISONING


def test_a_clean_lexicon_has_no_problems() -> None:
    assert site.problems(LOCAL) == []
    assert site.problems(site.skeleton()) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_body(stroke={"en": ["   "]}), ("phrases/stroke/en", "empty", True)),
        (_body(stroke={"en": ["?!"]}), ("phrases/stroke/en", "empty", True)),
        (_body(stroke={"en": ["arm"]}), ("phrases/stroke/en", "too_short", True)),
        (_body(bleeding={"zh-CN": ["血"]}), ("phrases/bleeding/zh-CN", "too_short", True)),
        (_body(stroke={"en": ["my face " * 12]}), ("phrases/stroke/en", "too_long", True)),
        (_body(seizure={"en": ["fitting", "Fitting"]}), ("phrases/seizure/en", "duplicate", False)),
        (_body(breathing={"en": ["appointment"]}), ("phrases/breathing/en", "matches_benign", True)),
        (_body(chest_pain={"vi": ["đặt lịch"]}), ("phrases/chest_pain/vi", "matches_benign", True)),
        (_body(exceptions={"en": ["chest pain"]}), ("exceptions", "hides_emergency", True)),
    ],
)
def test_validation_names_the_phrase_and_what_is_wrong(
    body: dict[str, Any], expected: tuple[str, str, bool]
) -> None:
    assert expected in _codes(body)


def test_a_benign_match_quotes_the_messages_it_would_alarm_on() -> None:
    [problem] = site.problems(_body(breathing={"en": ["appointment"]}))
    assert problem.detail.startswith("appointment: ") and "appointment" in problem.detail.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"phrases": {"heartache": {"en": ["broken heart"]}}},
            ("phrases/heartache", "unknown_category", True),
        ),
        ({"phrases": {"stroke": {"fr": ["visage"]}}}, ("phrases/stroke/fr", "unknown_language", True)),
        ({"phrases": {"stroke": {"en": "face droop"}}}, ("phrases/stroke/en", "not_a_list", True)),
        ({"phrases": ["face droop"]}, ("phrases", "not_a_table", True)),
        ({"extra": 1}, ("extra", "unknown_part", True)),
    ],
)
def test_a_malformed_body_is_refused_with_its_place(
    body: dict[str, Any], expected: tuple[str, str, bool]
) -> None:
    assert expected in _codes(body)
    assert not site.from_body(body).phrases  # and nothing of it would be installed


def test_weights_count_chinese_characters_double() -> None:
    assert [site.weight(p) for p in ["吐血", "血", "sick", "ho!", "đau"]] == [4, 2, 4, 2, 3]
