"""The questionnaire kind and its editor form, without a database: every problem found in one pass and
placed at its question, total or rule; the form and a definition round-trip; a diff names questions and
languages; changes to rules, totals and option scores are clinical."""

from __future__ import annotations

import copy
from typing import Any

from backend.content import questionnaire_form as qform
from backend.content.questionnaire import diff, touches_clinical, validate
from questionnaires.loader import definition_problems, parse_questionnaire
from tests.backend.followup.test_followup import DEFINITION


def _form_of(body: dict[str, Any]) -> dict[str, str]:
    """The fields the editor page would post for `body`, unchanged (what the template renders)."""
    sheet = qform.sheet(body, [])
    form: dict[str, str] = {"qkind": str(body["kind"])}
    for part in ("title", "intro", "outro"):
        for lang, text in (body.get(part) or {}).items():
            form[f"{part}|{lang}"] = text
    for b in sheet.items:
        p = f"i{b.n}"
        form[f"{p}|id"] = str(b.entry.get("id", ""))
        form[f"{p}|orig"] = str(b.entry.get("id", ""))
        form[f"{p}|type"] = str(b.entry.get("type", "single_choice"))
        if b.entry.get("required"):
            form[f"{p}|required"] = "1"
        for part in ("text", "hint", "unit", "min_label", "max_label"):
            for lang, text in b.texts(part).items():
                form[f"{p}|{part}|{lang}"] = text
        for bound in ("min", "max"):
            if b.entry.get(bound) is not None:
                form[f"{p}|{bound}"] = str(b.entry[bound])
        form[f"{p}|options"] = b.lines("options")
        form[f"{p}|when"] = b.lines("enable_when")
        form[f"{p}|behavior"] = str(b.entry.get("enable_behavior", "all"))
    for b in sheet.rules:
        p = f"r{b.n}"
        form[f"{p}|id"] = form[f"{p}|orig"] = str(b.entry.get("id", ""))
        form[f"{p}|severity"] = str(b.entry.get("severity", "normal"))
        form[f"{p}|when"] = b.lines("when")
        for lang, text in b.texts("text").items():
            form[f"{p}|text|{lang}"] = text
    return form


def test_every_problem_is_found_in_one_pass_and_placed_at_its_question() -> None:
    broken = copy.deepcopy(DEFINITION)
    broken["items"][0]["text"]["vi"] = ""  # pain: a missing translation
    broken["items"][1]["options"] = [{"code": "yes", "text": broken["items"][1]["options"][0]["text"]}]
    broken["rules"][0]["severity"] = "apocalyptic"
    problems = validate(broken)
    assert [p.where for p in problems] == ["pain", "fever", "rule pain_high"]
    assert "missing text in vi" in problems[0].detail
    assert "needs at least two options" in problems[1].detail
    assert "unknown severity 'apocalyptic'" in problems[2].detail
    assert all(p.blocking for p in problems)
    sheet = qform.sheet(broken, problems)
    assert [len(b.problems) for b in sheet.items] == [1, 1, 0, 0]  # the last block is the empty "add one"
    assert [len(b.problems) for b in sheet.rules] == [1, 0, 0] and sheet.general == []
    # the loader's own words, and parse_questionnaire refuses with the first of them
    assert [str(e) for e in definition_problems(broken)] == [p.detail for p in problems]
    assert validate(DEFINITION) == []


def test_a_reference_to_an_unknown_question_is_found_once_the_parts_are_sound() -> None:
    wrong = copy.deepcopy(DEFINITION)
    wrong["items"][2]["enable_when"] = [{"item": "fevre", "op": "=", "value": "yes"}]
    [problem] = validate(wrong)
    assert problem.where == "temperature/enable_when" and "unknown item 'fevre'" in problem.detail
    assert qform.sheet(wrong, [problem]).items[2].problems == [problem]


def test_what_a_channel_cannot_carry_is_a_problem_too() -> None:
    clash = copy.deepcopy(DEFINITION)
    same = {"zh-CN": "是", "vi": "Có", "en": "Yes"}
    clash["items"][1]["options"] = [{"code": "yes", "text": same}, {"code": "y", "text": same}]
    problems = validate(clash)
    assert problems and {p.code for p in problems} == {"channel"}
    assert {p.where for p in problems} == {"fever"} and "read the same" in problems[0].detail


def test_the_form_and_a_definition_round_trip() -> None:
    form = _form_of(DEFINITION)
    again = qform.body_from_form(DEFINITION, form)
    assert parse_questionnaire(again) == parse_questionnaire(DEFINITION)
    assert diff(DEFINITION, again) == []


def test_an_edit_adds_removes_and_keeps_what_the_form_does_not_show() -> None:
    body = copy.deepcopy(DEFINITION)
    body["items"][1]["options"][0]["words"] = {"en": ["i have a fever"]}  # not on the form: kept
    form = _form_of(body)
    form["i2|remove"] = "1"  # temperature goes, and with it the rule that tested it
    form["r1|remove"] = "1"
    n = len(body["items"])
    form.update(
        {
            f"i{n}|id": "mood",
            f"i{n}|type": "single_choice",
            f"i{n}|required": "1",
            **{f"i{n}|text|{lang}": f"Mood? ({lang})" for lang in ("zh-CN", "vi", "en")},
            f"i{n}|options": "good | 0 | 好 | Tốt | Good\nlow | 2 | 差 | Kém | Low",
            f"i{n}|when": "fever = no",
        }
    )
    edited = qform.body_from_form(body, form)
    q = parse_questionnaire(edited)
    assert [i.id for i in q.items] == ["pain", "fever", "mood"]
    assert q.item("fever").options[0].words == {"en": ("i have a fever",)}
    mood = q.item("mood")
    assert [(o.code, o.score, o.text["vi"]) for o in mood.options] == [("good", 0, "Tốt"), ("low", 2, "Kém")]
    assert mood.enable_when[0].item == "fever" and mood.enable_when[0].value == "no"
    assert [r.id for r in q.rules] == ["pain_high"]


def test_typed_mistakes_reach_the_model_as_typed_and_are_named() -> None:
    form = _form_of(DEFINITION)
    form["i0|max"] = "ten"
    form["i1|options"] = "yes | one | 有 | Có | Yes\nno | | 没有 | Không | No"
    form["r0|when"] = "pain is big"
    problems = validate(qform.body_from_form(DEFINITION, form))
    details = " / ".join(p.detail for p in problems)
    assert "pain/max: 'ten' is not a number" in details
    assert "fever/yes: option score must be an integer" in details
    assert "rule pain_high: a condition names exactly one of item or score" in details


def test_conditions_read_numbers_codes_scores_and_booleans() -> None:
    assert qform.parse_condition("pain >= 7") == {"item": "pain", "op": ">=", "value": 7}
    assert qform.parse_condition("t>38.5") == {"item": "t", "op": ">", "value": 38.5}
    assert qform.parse_condition("fever = yes") == {"item": "fever", "op": "=", "value": "yes"}
    assert qform.parse_condition('grade = "1"') == {"item": "grade", "op": "=", "value": "1"}
    assert qform.parse_condition("score:phq9 >= 10") == {"score": "phq9", "op": ">=", "value": 10}
    assert qform.parse_condition("note exists true") == {"item": "note", "op": "exists", "value": True}
    for line in ("pain >= 7", "fever = yes", "score:phq9 >= 10", "note exists true"):
        assert qform.condition_line(qform.parse_condition(line)) == line


def test_a_diff_names_questions_and_languages_and_rules_are_clinical() -> None:
    after = copy.deepcopy(DEFINITION)
    after["items"][0]["text"]["vi"] = "Đau hôm nay?"
    after["version"] = 7  # CareLoop's numbering, not an editor's change
    [change] = diff(DEFINITION, after)
    assert (change.where, change.lang, change.after) == ("items/pain/text", "vi", "Đau hôm nay?")
    assert not touches_clinical(DEFINITION, after)
    after["rules"][0]["severity"] = "urgent"
    assert touches_clinical(DEFINITION, after)
    scored = copy.deepcopy(DEFINITION)
    scored["items"][1]["options"][0]["score"] = 3
    assert touches_clinical(DEFINITION, scored)
    assert touches_clinical(None, DEFINITION)  # a new questionnaire with rules
