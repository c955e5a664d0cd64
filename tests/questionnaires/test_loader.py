"""The loader accepts well-formed definitions and refuses malformed ones with an error that names the
item (or score, or rule) and says what is wrong."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import yaml

from questionnaires.loader import DefinitionError, parse_questionnaire
from questionnaires.model import Condition, ItemType, Kind, Operator, Severity
from tests.questionnaires.definitions import (
    band,
    definition,
    finding,
    group,
    question,
    score,
    texts,
    when,
    yes_no,
)


def valid() -> dict[str, Any]:
    return definition(
        "check",
        2,
        "follow_up",
        "Check",
        [
            question("pain", "scale", "Pain?", min=0, max=10, required=True),
            question("fever", "single_choice", "Fever?", options=yes_no()),
            question(
                "temperature",
                "decimal",
                "Temperature?",
                min=35,
                max=42,
                unit="°C",
                enable_when=[when("fever", "=", "yes")],
            ),
            question(
                "symptoms",
                "multiple_choice",
                "Symptoms?",
                options=[
                    {"code": "none", "text": texts("None"), "score": 0},
                    {"code": "cough", "text": texts("Cough"), "score": 1, "words": {"zh-CN": ["咳"]}},
                ],
            ),
            group(
                "details",
                "Details",
                [
                    question("note", "display", "A few more questions"),
                    question("since", "date", "Since when?"),
                    question(
                        "sizes",
                        "multi_blank",
                        "Sizes",
                        blanks=[{"id": "a", "text": texts("A")}, {"id": "b", "text": texts("B")}],
                    ),
                ],
                enable_when=[when("symptoms", "contains", "cough")],
            ),
            question("stars", "star_rating", "Stars", max=5, dimension="overall"),
            question("comment", "long_text", "Anything else?"),
        ],
        scores=[
            score(
                "total",
                ["pain", "symptoms"],
                "Total",
                [band("low", 0, 6, "Low"), band("high", 7, 11, "High", "high")],
            )
        ],
        rules=[
            finding("pain_high", when("pain", ">=", 7), "high", "Pain 7+"),
            finding(
                "hot", [when("temperature", ">", 38.5), when("total", ">=", 3, of="score")], "urgent", "Hot"
            ),
        ],
        intro="Hello",
    )


def test_a_valid_definition_parses_into_the_model() -> None:
    q = parse_questionnaire(valid())
    assert (q.id, q.version, q.kind) == ("check", 2, Kind.FOLLOW_UP)
    assert [item.id for item in q.walk()] == [
        "pain",
        "fever",
        "temperature",
        "symptoms",
        "details",
        "note",
        "since",
        "sizes",
        "stars",
        "comment",
    ]
    assert q.item("temperature").minimum == Decimal(35) and q.item("temperature").unit == texts("°C")
    assert q.item("temperature").enable_when == (Condition(Operator.EQ, "yes", item="fever"),)
    assert q.item("symptoms").options[1].words == {"zh-CN": ("咳",)}
    assert q.item("symptoms").options[1].score == 1
    assert [b.id for b in q.item("sizes").blanks] == ["a", "b"]
    assert q.item("note").statistics is False and q.item("pain").statistics is True
    assert q.item("stars").dimension == "overall"
    assert q.scores[0].bands[1].severity is Severity.HIGH
    assert q.rules[0].when == (Condition(Operator.GE, 7, item="pain"),)
    # floats from YAML become exact decimals, never binary floats
    assert q.rules[1].when[0].value == Decimal("38.5")
    assert q.rules[1].when[1] == Condition(Operator.GE, 3, score="total")
    assert q.intro == texts("Hello") and q.outro is None


def test_the_same_definition_from_yaml() -> None:
    assert parse_questionnaire(
        yaml.safe_load(yaml.safe_dump(valid(), allow_unicode=True))
    ) == parse_questionnaire(valid())


def test_defaults_and_options() -> None:
    data = valid()
    del data["kind"]
    data["items"][1]["statistics"] = False
    data["items"][2]["enable_behavior"] = "any"
    q = parse_questionnaire(data)
    assert q.kind is Kind.FOLLOW_UP
    assert q.item("fever").statistics is False
    assert q.item("temperature").enable_any is True and q.item("fever").enable_any is False
    assert q.item("details").type is ItemType.GROUP


def test_exists_conditions_and_band_order_are_kept() -> None:
    data = valid()
    data["items"][2]["enable_when"] = [{"item": "fever", "op": "exists", "value": False}]
    data["scores"][0]["bands"].reverse()
    q = parse_questionnaire(data)
    assert q.item("temperature").enable_when == (Condition(Operator.EXISTS, False, item="fever"),)
    assert [b.code for b in q.scores[0].bands] == ["high", "low"]


Edit = Callable[[dict[str, Any]], object]


def item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    def find(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        for raw in items:
            if raw.get("id") == item_id:
                return raw
            found = find(raw.get("items", []))
            if found is not None:
                return found
        return None

    found = find(data["items"])
    assert found is not None
    return found


def add_item(data: dict[str, Any], raw: dict[str, Any]) -> None:
    data["items"].append(raw)


def rule(when: Any, **extra: Any) -> dict[str, Any]:
    return {"id": "r", "when": when, "severity": "high", "text": texts("R"), **extra}


CASES: list[tuple[str, Edit, str]] = [
    # texts
    ("missing language", lambda d: item(d, "pain")["text"].pop("vi"), "pain: missing text in vi"),
    ("blank language", lambda d: item(d, "pain")["text"].update(en="  "), "pain: missing text in en"),
    (
        "text not a mapping",
        lambda d: item(d, "pain").update(text="Pain?"),
        "pain: expected texts for zh-CN, vi, en",
    ),
    (
        "option text missing",
        lambda d: item(d, "fever")["options"][0]["text"].pop("zh-CN"),
        "fever/yes: missing text in zh-CN",
    ),
    (
        "hint missing language",
        lambda d: item(d, "pain").update(hint={"en": "0-10"}),
        "pain/hint: missing text in zh-CN, vi",
    ),
    (
        "unit missing language",
        lambda d: item(d, "temperature")["unit"].pop("vi"),
        "temperature/unit: missing text in vi",
    ),
    (
        "scale label missing",
        lambda d: item(d, "pain").update(max_label={"en": "worst"}),
        "pain/max_label: missing",
    ),
    (
        "blank text missing",
        lambda d: item(d, "sizes")["blanks"][1]["text"].pop("en"),
        "sizes/b: missing text in en",
    ),
    ("title missing", lambda d: d["title"].pop("vi"), "check/title: missing text in vi"),
    ("outro missing", lambda d: d.update(outro={"en": "Bye"}), "check/outro: missing text"),
    # items
    ("unknown type", lambda d: item(d, "pain").update(type="slider"), "pain: unknown item type 'slider'"),
    ("no type", lambda d: item(d, "pain").pop("type"), "pain: unknown item type None"),
    ("item without id", lambda d: item(d, "pain").pop("id"), "item without an id"),
    (
        "duplicate id",
        lambda d: add_item(d, {"id": "fever", "type": "short_text", "text": texts("Again")}),
        "fever: duplicate item id",
    ),
    (
        "duplicate id inside a group",
        lambda d: item(d, "details")["items"].append({"id": "pain", "type": "integer", "text": texts("P")}),
        "pain: duplicate item id",
    ),
    (
        "options on a scale",
        lambda d: item(d, "pain").update(options=yes_no()),
        "pain: a scale item has no options",
    ),
    (
        "options on a text",
        lambda d: item(d, "comment").update(options=yes_no()),
        "comment: a long_text item has no",
    ),
    (
        "too few options",
        lambda d: item(d, "fever")["options"].pop(),
        "fever: a single_choice item needs at least two",
    ),
    (
        "no options",
        lambda d: item(d, "fever").pop("options"),
        "fever: a single_choice item needs at least two",
    ),
    (
        "duplicate option codes",
        lambda d: item(d, "fever")["options"][1].update(code="yes"),
        "fever: duplicate option codes",
    ),
    (
        "option without code",
        lambda d: item(d, "fever")["options"][1].pop("code"),
        "fever: an option needs a code",
    ),
    (
        "unquoted yes code",
        lambda d: item(d, "fever")["options"][0].update(code=True),
        "fever: option code True must be quoted",
    ),
    (
        "option score not an integer",
        lambda d: item(d, "symptoms")["options"][1].update(score="1"),
        "symptoms/cough: option score must be an integer",
    ),
    (
        "words not a mapping",
        lambda d: item(d, "symptoms")["options"][1].update(words=["咳"]),
        "symptoms/cough: words must map a language to a list",
    ),
    ("scale without min", lambda d: item(d, "pain").pop("min"), "pain: a scale needs min and max"),
    ("scale without max", lambda d: item(d, "pain").pop("max"), "pain: a scale needs min and max"),
    ("stars without max", lambda d: item(d, "stars").pop("max"), "stars: a star_rating needs min and max"),
    (
        "min above max",
        lambda d: item(d, "temperature").update(min=42, max=35),
        "temperature: min 42 is above max 35",
    ),
    (
        "min not a number",
        lambda d: item(d, "temperature").update(min="cold"),
        "temperature/min: 'cold' is not a number",
    ),
    (
        "max not finite",
        lambda d: item(d, "temperature").update(max="inf"),
        "temperature/max: 'inf' is not a number",
    ),
    ("min NaN", lambda d: item(d, "temperature").update(min="NaN"), "temperature/min: 'NaN' is not a number"),
    (
        "multi_blank without blanks",
        lambda d: item(d, "sizes").pop("blanks"),
        "sizes: a multi_blank item needs blanks",
    ),
    ("blank without id", lambda d: item(d, "sizes")["blanks"][0].pop("id"), "sizes: a blank needs an id"),
    (
        "duplicate blank ids",
        lambda d: item(d, "sizes")["blanks"][1].update(id="a"),
        "sizes: duplicate blank ids",
    ),
    ("empty group", lambda d: item(d, "details").update(items=[]), "details: an empty group"),
    (
        "required display",
        lambda d: item(d, "note").update(required=True),
        "note: a display item cannot be required",
    ),
    (
        "required group",
        lambda d: item(d, "details").update(required=True),
        "details: a group item cannot be required",
    ),
    (
        "bad enable_behavior",
        lambda d: item(d, "temperature").update(enable_behavior="or"),
        "temperature: enable_behavior is all or any, not 'or'",
    ),
    # branching
    (
        "enable_when on a later item",
        lambda d: item(d, "fever").update(
            enable_when=[
                {"item": "pain", "op": ">", "value": 1},
                {"item": "temperature", "op": ">", "value": 1},
            ]
        ),
        "fever/enable_when: depends on 'temperature', which is not asked before it",
    ),
    (
        "enable_when on itself",
        lambda d: item(d, "fever").update(enable_when=[{"item": "fever", "op": "=", "value": "yes"}]),
        "fever/enable_when: depends on 'fever', which is not asked before it",
    ),
    (
        "group enabled by its own child",
        lambda d: item(d, "details").update(enable_when=[{"item": "since", "op": "exists", "value": True}]),
        "details/enable_when: depends on 'since', which is not asked before it",
    ),
    (
        "enable_when on an unknown item",
        lambda d: item(d, "temperature")["enable_when"][0].update(item="chills"),
        "temperature/enable_when: refers to unknown item 'chills'",
    ),
    (
        "enable_when on an unknown option",
        lambda d: item(d, "temperature")["enable_when"][0].update(value="maybe"),
        "temperature/enable_when: 'fever' has no option 'maybe'",
    ),
    (
        "enable_when contains an unknown option",
        lambda d: item(d, "details")["enable_when"][0].update(value="sneeze"),
        "details/enable_when: 'symptoms' has no option 'sneeze'",
    ),
    (
        "enable_when on a display",
        lambda d: item(d, "comment").update(enable_when=[{"item": "note", "op": "exists", "value": True}]),
        "comment/enable_when: 'note' has no answer to test",
    ),
    (
        "enable_when on a score",
        lambda d: item(d, "comment").update(enable_when=[{"score": "total", "op": ">", "value": 1}]),
        "comment/enable_when: branch on answers, not scores",
    ),
    (
        "condition with item and score",
        lambda d: item(d, "temperature")["enable_when"][0].update(score="total"),
        "temperature/enable_when: a condition names exactly one of item or score",
    ),
    (
        "condition with neither",
        lambda d: item(d, "temperature")["enable_when"][0].pop("item"),
        "temperature/enable_when: a condition names exactly one of item or score",
    ),
    (
        "unknown operator",
        lambda d: item(d, "temperature")["enable_when"][0].update(op="~"),
        "temperature/enable_when: unknown operator '~'",
    ),
    (
        "condition not a mapping",
        lambda d: item(d, "temperature").update(enable_when=["fever = yes"]),
        "temperature/enable_when: a condition is a mapping",
    ),
    (
        "exists without a value",
        lambda d: item(d, "temperature").update(enable_when=[{"item": "fever", "op": "exists"}]),
        "temperature/enable_when: only exists takes true or false",
    ),
    (
        "unquoted yes value",
        lambda d: item(d, "temperature")["enable_when"][0].update(value=True),
        "temperature/enable_when: only exists takes true or false (quote yes/no codes), got True",
    ),
    (
        "contains on a single choice",
        lambda d: item(d, "temperature")["enable_when"][0].update(op="contains"),
        "temperature/enable_when: contains needs multiple_choice, 'fever' is not",
    ),
    (
        "ordering a choice",
        lambda d: item(d, "temperature")["enable_when"][0].update(op=">"),
        "temperature/enable_when: > needs a number, 'fever' is not",
    ),
    (
        "number compared with text",
        lambda d: d["rules"][0]["when"].update(value="severe"),
        "rule pain_high: compares a number with 'severe'",
    ),
    (
        "score compared with text",
        lambda d: d["rules"][1]["when"][1].update(value="high"),
        "rule hot: compares a number with 'high'",
    ),
    # scores
    (
        "score over a text item",
        lambda d: d["scores"][0]["items"].append("comment"),
        "score total: 'comment' has nothing to add up",
    ),
    (
        "score over options without scores",
        lambda d: d["scores"][0]["items"].append("fever"),
        "score total: 'fever' has nothing to add up",
    ),
    (
        "score over an unknown item",
        lambda d: d["scores"][0]["items"].append("mood"),
        "score total: unknown item 'mood'",
    ),
    ("score over nothing", lambda d: d["scores"][0].update(items=[]), "score total: adds up no items"),
    ("score without id", lambda d: d["scores"][0].pop("id"), "score without an id"),
    ("score text missing", lambda d: d["scores"][0]["text"].pop("vi"), "score total: missing text in vi"),
    (
        "duplicate score ids",
        lambda d: d["scores"].append(copy.deepcopy(d["scores"][0])),
        "check: duplicate score ids",
    ),
    (
        "band min above max",
        lambda d: d["scores"][0]["bands"][0].update(min=7, max=6),
        "score total/low: min 7 is above max 6",
    ),
    (
        "overlapping bands",
        lambda d: d["scores"][0]["bands"][0].update(max=7),
        "score total: bands low and high overlap",
    ),
    (
        "band unknown severity",
        lambda d: d["scores"][0]["bands"][1].update(severity="critical"),
        "score total/high: needs integer min and max and a known severity",
    ),
    (
        "band without max",
        lambda d: d["scores"][0]["bands"][1].pop("max"),
        "score total/high: needs integer min and max",
    ),
    (
        "band without code",
        lambda d: d["scores"][0]["bands"][1].pop("code"),
        "score total: a band needs a code",
    ),
    (
        "band text missing",
        lambda d: d["scores"][0]["bands"][1]["text"].pop("en"),
        "score total/high: missing text in en",
    ),
    # rules
    (
        "rule unknown severity",
        lambda d: d["rules"][0].update(severity="critical"),
        "rule pain_high: unknown severity 'critical'",
    ),
    (
        "rule without severity",
        lambda d: d["rules"][0].pop("severity"),
        "rule pain_high: unknown severity None",
    ),
    ("rule without id", lambda d: d["rules"][0].pop("id"), "rule without an id"),
    ("rule without conditions", lambda d: d["rules"][0].update(when=[]), "rule pain_high: has no conditions"),
    ("rule without when", lambda d: d["rules"][0].pop("when"), "rule pain_high: a condition is a mapping"),
    (
        "rule text missing",
        lambda d: d["rules"][0]["text"].pop("zh-CN"),
        "rule pain_high: missing text in zh-CN",
    ),
    ("duplicate rule ids", lambda d: d["rules"][1].update(id="pain_high"), "check: duplicate rule ids"),
    (
        "rule on an unknown item",
        lambda d: d["rules"].append(rule({"item": "mood", "op": "=", "value": 1})),
        "rule r: refers to unknown item 'mood'",
    ),
    (
        "rule on an unknown score",
        lambda d: d["rules"].append(rule({"score": "mood", "op": ">", "value": 1})),
        "rule r: refers to unknown score 'mood'",
    ),
    (
        "rule on an unknown option",
        lambda d: d["rules"].append(rule({"item": "fever", "op": "!=", "value": "maybe"})),
        "rule r: 'fever' has no option 'maybe'",
    ),
    (
        "rule on a group",
        lambda d: d["rules"].append(rule({"item": "details", "op": "exists", "value": True})),
        "rule r: 'details' has no answer to test",
    ),
    # the questionnaire
    ("no items", lambda d: d.update(items=[]), "check: has no items"),
    ("no version", lambda d: d.pop("version"), "check: needs an integer version and a known kind"),
    ("version not a number", lambda d: d.update(version="two"), "check: needs an integer version"),
    ("unknown kind", lambda d: d.update(kind="survey"), "check: needs an integer version and a known kind"),
    ("no id", lambda d: d.pop("id"), "questionnaire has no id"),
]


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_definitions_are_refused_with_a_located_message(edit: Edit, message: str) -> None:
    data = valid()
    edit(data)
    with pytest.raises(DefinitionError) as refused:
        parse_questionnaire(data)
    assert message in str(refused.value)


def test_the_cases_start_from_a_valid_definition() -> None:
    assert len({c[0] for c in CASES}) == len(CASES)
    parse_questionnaire(valid())


@pytest.mark.parametrize("data", [None, [], "id: x"])
def test_a_file_must_be_a_mapping(data: Any) -> None:
    with pytest.raises(DefinitionError, match="must be a mapping"):
        parse_questionnaire(data)


def test_unquoted_yaml_booleans_are_caught() -> None:
    source = """
id: q
version: 1
title: {zh-CN: 问卷, vi: Phiếu, en: Form}
items:
  - id: fever
    type: single_choice
    text: {zh-CN: 发烧吗, vi: Sốt không, en: Fever}
    options:
      - {code: yes, text: {zh-CN: 有, vi: Có, en: "Yes"}}
      - {code: no, text: {zh-CN: 没有, vi: Không, en: "No"}}
"""
    with pytest.raises(DefinitionError, match="fever: option code True must be quoted"):
        parse_questionnaire(yaml.safe_load(source))
    assert parse_questionnaire(
        yaml.safe_load(source.replace("code: yes", 'code: "yes"').replace("code: no", 'code: "no"'))
    )


def test_definition_error_is_a_value_error() -> None:
    assert issubclass(DefinitionError, ValueError)
