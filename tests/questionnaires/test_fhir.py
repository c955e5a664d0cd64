"""FHIR R4B export and import: every item type and branch survives the round trip in every language,
malformed resources are refused with the item named, and responses export each kind of answer."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from questionnaires.fhir import (
    ResponseStatus,
    from_fhir_questionnaire,
    to_fhir_questionnaire,
    to_fhir_response,
)
from questionnaires.fhir_common import (
    DEFINITION,
    DISPLAY_LABELS,
    ITEM_CONTROL,
    ITEM_TYPE,
    ITEM_WEIGHT,
    MAX_VALUE,
    MIN_VALUE,
    ORDINAL_VALUE,
    TRANSLATION,
    UNIT,
)
from questionnaires.loader import DefinitionError, parse_questionnaire
from questionnaires.model import LANGS, AnswerValue, ItemType, Questionnaire
from questionnaires.values import BadStoredValue

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "content" / "questionnaires").glob("*.yaml"))
AUTHORED = datetime(2025, 3, 5, 9, 30, tzinfo=UTC)


def texts(en: str) -> dict[str, str]:
    return {"zh-CN": f"{en}（中文）", "vi": f"{en} (tiếng Việt)", "en": en}


def options(*codes: str, scores: bool = False) -> list[dict[str, Any]]:
    return [
        {"code": code, "text": texts(code.title())} | ({"score": n} if scores else {})
        for n, code in enumerate(codes)
    ]


def definition() -> dict[str, Any]:
    """Every item type, every operator, every CareLoop extension."""
    return {
        "id": "everything",
        "version": 3,
        "kind": "satisfaction",
        "title": texts("Everything"),
        "intro": texts("Hello"),
        "outro": texts("Thanks"),
        "items": [
            {
                "id": "fever",
                "type": "single_choice",
                "required": True,
                "text": texts("Fever?"),
                "hint": texts("Since you went home"),
                "options": [
                    {
                        "code": "yes",
                        "text": texts("Yes"),
                        "score": 1,
                        "words": {"zh-CN": ["发烧了"], "en": ["hot"]},
                    },
                    {"code": "no", "text": texts("No"), "score": 0},
                ],
            },
            {
                "id": "wound",
                "type": "multiple_choice",
                "text": texts("Wound?"),
                "options": options("red", "wet", "ok"),
            },
            {"id": "ward", "type": "dropdown", "text": texts("Ward?"), "options": options("a", "b", "c")},
            {"id": "stars", "type": "star_rating", "max": 5, "dimension": "overall", "text": texts("Stars")},
            {
                "id": "pain",
                "type": "scale",
                "min": 0,
                "max": 10,
                "text": texts("Pain?"),
                "min_label": texts("No pain"),
                "max_label": texts("Worst pain"),
            },
            {
                "id": "systolic",
                "type": "integer",
                "min": 60,
                "max": 280,
                "unit": texts("mmHg"),
                "text": texts("BP"),
            },
            {
                "id": "temperature",
                "type": "decimal",
                "min": 35,
                "max": 42.5,
                "unit": texts("°C"),
                "text": texts("Temperature?"),
                "enable_when": [{"item": "fever", "op": "=", "value": "yes"}],
            },
            {"id": "since", "type": "date", "text": texts("Since?"), "statistics": False},
            {"id": "name", "type": "short_text", "text": texts("Name?")},
            {"id": "story", "type": "long_text", "text": texts("Tell us")},
            {
                "id": "results",
                "type": "multi_blank",
                "required": True,
                "text": texts("Results"),
                "blanks": [
                    {"id": "hba1c", "text": texts("HbA1c")},
                    {"id": "weight", "text": texts("Weight")},
                ],
            },
            {
                "id": "more",
                "type": "group",
                "text": texts("More"),
                "enable_when": [
                    {"item": "wound", "op": "contains", "value": "red"},
                    {"item": "ward", "op": "!=", "value": "a"},
                    {"item": "stars", "op": "<", "value": 3},
                    {"item": "pain", "op": ">=", "value": 7},
                    {"item": "temperature", "op": ">", "value": 38.5},
                    {"item": "systolic", "op": "<=", "value": 90},
                    {"item": "since", "op": "=", "value": date(2025, 3, 1)},
                    {"item": "name", "op": "=", "value": "Lan"},
                    {"item": "story", "op": "exists", "value": True},
                    {"item": "results", "op": "exists", "value": False},
                ],
                "enable_behavior": "any",
                "items": [
                    {
                        "id": "note",
                        "type": "display",
                        "text": texts("A few more"),
                        "hint": texts("Nearly done"),
                    },
                    {
                        "id": "again",
                        "type": "single_choice",
                        "text": texts("Again?"),
                        "options": options("x", "y"),
                    },
                    {
                        "id": "inner",
                        "type": "group",
                        "text": texts("Inner"),
                        "items": [{"id": "deep", "type": "integer", "text": texts("Deep")}],
                    },
                ],
            },
            {
                "id": "wound_any",
                "type": "short_text",
                "text": texts("Which?"),
                "enable_when": [{"item": "wound", "op": "=", "value": "wet"}],
            },
        ],
        "scores": [
            {
                "id": "total",
                "items": ["fever", "pain"],
                "text": texts("Total"),
                "bands": [
                    {"code": "low", "min": 0, "max": 5, "text": texts("Low")},
                    {"code": "high", "min": 6, "max": 11, "severity": "high", "text": texts("High")},
                ],
            }
        ],
        "rules": [
            {
                "id": "hot",
                "when": {"item": "temperature", "op": ">=", "value": 39.5},
                "severity": "urgent",
                "text": texts("Hot"),
            },
            {
                "id": "bad",
                "when": [
                    {"score": "total", "op": ">", "value": 8},
                    {"item": "since", "op": "=", "value": date(2025, 1, 2)},
                ],
                "severity": "high",
                "text": texts("Bad"),
            },
        ],
    }


def q() -> Questionnaire:
    return parse_questionnaire(definition())


def fhir_item(resource: dict[str, Any], link_id: str) -> dict[str, Any]:
    def find(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        for item in items:
            if item["linkId"] == link_id:
                return item
            if (found := find(item.get("item") or [])) is not None:
                return found
        return None

    found = find(resource["item"])
    assert found is not None, link_id
    return found


def ext(element: dict[str, Any], url: str) -> dict[str, Any]:
    return next(e for e in element.get("extension", []) if e["url"] == url)


def controls(element: dict[str, Any]) -> list[str]:
    found = [e for e in element.get("extension", []) if e["url"] == ITEM_CONTROL]
    return [c["code"] for e in found for c in e["valueCodeableConcept"]["coding"]]


def translations(element: dict[str, Any], key: str) -> dict[str, str]:
    out = {}
    for e in element["_" + key]["extension"]:
        assert e["url"] == TRANSLATION
        parts = {sub["url"]: sub for sub in e["extension"]}
        out[parts["lang"]["valueCode"]] = parts["content"]["valueString"]
    return out


def fhir_model(resource: dict[str, Any]) -> Any:
    from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    if resource["resourceType"] == "Questionnaire":
        return FhirQuestionnaire.model_validate(resource)
    return QuestionnaireResponse.model_validate(resource)


# --- export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_the_round_trip_gives_back_the_same_questionnaire(lang: str) -> None:
    original = q()
    resource = to_fhir_questionnaire(original, lang)
    assert from_fhir_questionnaire(json.loads(json.dumps(resource))) == original


@pytest.mark.parametrize("lang", LANGS)
def test_the_export_is_valid_r4b_json_carrying_all_three_languages(lang: str) -> None:
    resource = to_fhir_questionnaire(q(), lang)
    fhir_model(resource)
    assert resource["language"] == lang
    assert resource["title"] == texts("Everything")[lang]
    others = {other: texts("Everything")[other] for other in LANGS if other != lang}
    assert translations(resource, "title") == others
    fever = fhir_item(resource, "fever")
    assert fever["text"] == texts("Fever?")[lang]
    assert translations(fever, "text") == {o: texts("Fever?")[o] for o in LANGS if o != lang}
    display = fever["answerOption"][0]["valueCoding"]
    assert display["display"] == texts("Yes")[lang]
    assert translations(display, "display") == {o: texts("Yes")[o] for o in LANGS if o != lang}


def test_the_resource_names_itself() -> None:
    resource = to_fhir_questionnaire(q(), "en")
    assert resource["url"] == "https://careloop.org/fhir/Questionnaire/everything"
    assert resource["identifier"][0]["value"] == "everything"
    assert (resource["version"], resource["status"]) == ("3", "active")


@pytest.mark.parametrize(
    ("link_id", "fhir_type", "item_controls", "marked"),
    [
        ("fever", "choice", [], None),
        ("wound", "choice", [], None),
        ("ward", "choice", ["drop-down"], None),
        ("stars", "integer", [], "star_rating"),
        ("pain", "integer", ["slider"], None),
        ("systolic", "integer", [], None),
        ("temperature", "decimal", [], None),
        ("since", "date", [], None),
        ("name", "string", [], None),
        ("story", "text", [], None),
        ("results", "group", [], "multi_blank"),
        ("note", "display", [], None),
        ("more", "group", [], None),
    ],
)
def test_item_types_map_onto_fhir(
    link_id: str, fhir_type: str, item_controls: list[str], marked: str | None
) -> None:
    item = fhir_item(to_fhir_questionnaire(q(), "en"), link_id)
    assert item["type"] == fhir_type
    assert controls(item) == item_controls
    types = [e["valueCode"] for e in item.get("extension", []) if e["url"] == ITEM_TYPE]
    assert types == ([marked] if marked else [])


def test_choice_details() -> None:
    resource = to_fhir_questionnaire(q(), "en")
    fever, wound = fhir_item(resource, "fever"), fhir_item(resource, "wound")
    assert fever["required"] is True and "repeats" not in fever
    assert wound["repeats"] is True
    yes = fever["answerOption"][0]
    assert yes["valueCoding"]["code"] == "yes"
    assert ext(yes, ORDINAL_VALUE)["valueDecimal"] == 1 and ext(yes, ITEM_WEIGHT)["valueDecimal"] == 1
    assert "extension" not in wound["answerOption"][0]
    hint = fhir_item(resource, "fever:hint")
    assert (hint["type"], controls(hint), hint["text"]) == ("display", ["help"], "Since you went home")


def test_numeric_details() -> None:
    resource = to_fhir_questionnaire(q(), "en")
    pain, systolic, temperature = (fhir_item(resource, i) for i in ("pain", "systolic", "temperature"))
    assert ext(pain, MIN_VALUE) == {"url": MIN_VALUE, "valueInteger": 0}
    assert ext(pain, MAX_VALUE) == {"url": MAX_VALUE, "valueInteger": 10}
    assert [c["text"] for c in pain["item"]] == ["No pain", "Worst pain"]
    assert [controls(c) for c in pain["item"]] == [["lower"], ["upper"]]
    assert ext(systolic, UNIT)["valueCoding"]["display"] == "mmHg"
    assert ext(temperature, MIN_VALUE)["valueDecimal"] == 35
    assert ext(temperature, MAX_VALUE)["valueDecimal"] == 42.5
    assert ext(temperature, UNIT)["valueCoding"]["display"] == "°C"


def test_a_display_item_keeps_its_hint_without_children() -> None:
    note = fhir_item(to_fhir_questionnaire(q(), "en"), "note")
    assert "item" not in note  # FHIR: display items cannot have nested items
    assert json.loads(ext(note, DISPLAY_LABELS)["valueString"]) == {"hint": texts("Nearly done")}


def test_multi_blank_is_a_group_of_strings() -> None:
    results = fhir_item(to_fhir_questionnaire(q(), "vi"), "results")
    assert results["required"] is True
    assert [(c["linkId"], c["type"], c["text"]) for c in results["item"]] == [
        ("results.hba1c", "string", texts("HbA1c")["vi"]),
        ("results.weight", "string", texts("Weight")["vi"]),
    ]


def test_enable_when_operators_and_answer_types() -> None:
    resource = to_fhir_questionnaire(q(), "en")
    more = fhir_item(resource, "more")
    assert more["enableBehavior"] == "any"
    conditions = [
        (c["question"], c["operator"], next((k, v) for k, v in c.items() if k.startswith("answer")))
        for c in more["enableWhen"]
    ]
    assert conditions == [
        ("wound", "=", ("answerCoding", {"code": "red", "display": "Red"})),
        ("ward", "!=", ("answerCoding", {"code": "a", "display": "A"})),
        ("stars", "<", ("answerInteger", 3)),
        ("pain", ">=", ("answerInteger", 7)),
        ("temperature", ">", ("answerDecimal", 38.5)),
        ("systolic", "<=", ("answerInteger", 90)),
        ("since", "=", ("answerDate", "2025-03-01")),
        ("name", "=", ("answerString", "Lan")),
        ("story", "exists", ("answerBoolean", True)),
        ("results", "exists", ("answerBoolean", False)),
    ]
    # contains has no FHIR operator: "=" on a repeating answer means the same, and a mark keeps it.
    assert more["enableWhen"][0]["extension"][0]["valueCode"] == "contains"
    plain = fhir_item(resource, "wound_any")["enableWhen"][0]
    assert (plain["operator"], "extension" in plain) == ("=", False)
    assert fhir_item(resource, "temperature")["enableBehavior"] == "all"


def test_scores_rules_and_kind_travel_in_the_careloop_extension() -> None:
    resource = to_fhir_questionnaire(q(), "en")
    carried = json.loads(ext(resource, DEFINITION)["valueString"])
    assert carried["kind"] == "satisfaction"
    assert [s["id"] for s in carried["scores"]] == ["total"]
    assert [b["severity"] for b in carried["scores"][0]["bands"] if "severity" in b] == ["high"]
    assert [r["id"] for r in carried["rules"]] == ["hot", "bad"]
    assert ext(fhir_item(resource, "stars"), "https://careloop.org/fhir/StructureDefinition/item-dimension")


def test_a_plain_questionnaire_has_no_careloop_definition() -> None:
    plain = parse_questionnaire(
        {
            "id": "p",
            "version": 1,
            "title": texts("P"),
            "items": [{"id": "a", "type": "date", "text": texts("A")}],
        }
    )
    resource = to_fhir_questionnaire(plain, "zh-CN")
    assert "extension" not in resource
    assert from_fhir_questionnaire(resource) == plain


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="fr"):
        to_fhir_questionnaire(q(), "fr")


def test_a_blank_named_like_a_hint_cannot_collide() -> None:
    data = definition()
    data["items"].append({"id": "results.hba1c", "type": "short_text", "text": texts("Clash")})
    with pytest.raises(DefinitionError, match=r"results\.hba1c: the linkId would be used twice"):
        to_fhir_questionnaire(parse_questionnaire(data), "en")


def test_importing_the_module_does_not_import_fhir_resources() -> None:
    code = "import sys, questionnaires.fhir; assert 'fhir.resources' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- import of resources not written by us ---------------------------------------------------------


def external() -> dict[str, Any]:
    """A FHIR Questionnaire written elsewhere: no CareLoop extensions, R4 ordinalValue scores."""

    def tr(element: dict[str, Any], key: str, en: str) -> None:
        element[key] = en
        element["_" + key] = {
            "extension": [
                {
                    "url": TRANSLATION,
                    "extension": [{"url": "lang", "valueCode": code}, {"url": "content", "valueString": v}],
                }
                for code, v in texts(en).items()
                if code != "en"
            ]
        }

    item: dict[str, Any] = {"linkId": "mood", "type": "choice", "required": True}
    tr(item, "text", "Mood?")
    item["answerOption"] = []
    for n, code in enumerate(["good", "bad"]):
        coding: dict[str, Any] = {"system": "http://example.org/mood", "code": code}
        tr(coding, "display", code.title())
        item["answerOption"].append(
            {"valueCoding": coding, "extension": [{"url": ORDINAL_VALUE, "valueDecimal": n}]}
        )
    followed: dict[str, Any] = {
        "linkId": "why",
        "type": "text",
        "enableWhen": [{"question": "mood", "operator": "=", "answerCoding": {"code": "bad"}}],
    }
    tr(followed, "text", "Why?")
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "language": "en",
        "url": "http://example.org/Questionnaire/mood-check|2",
        "version": "2",
        "status": "draft",
        "item": [item, followed],
    }
    tr(resource, "title", "Mood check")
    return resource


def test_a_questionnaire_from_elsewhere_imports_with_defaults() -> None:
    imported = from_fhir_questionnaire(external())
    assert (imported.id, imported.version, imported.kind.value) == ("mood-check", 2, "follow_up")
    mood = imported.item("mood")
    assert (mood.type, mood.required, [o.score for o in mood.options]) == (
        ItemType.SINGLE_CHOICE,
        True,
        [0, 1],
    )
    assert mood.option("bad") is not None and mood.option("bad").text == texts("Bad")  # type: ignore[union-attr]
    assert imported.item("why").type is ItemType.LONG_TEXT
    assert imported.item("why").enable_when[0].value == "bad"
    assert imported.scores == () and imported.rules == ()


# --- malformed resources: the error names the item --------------------------------------------------


def broken(change: Any) -> str:
    resource = to_fhir_questionnaire(q(), "en")
    change(resource)
    with pytest.raises(DefinitionError) as caught:
        from_fhir_questionnaire(resource)
    return str(caught.value)


def test_a_missing_link_id_names_where_the_item_is() -> None:
    message = broken(lambda r: fhir_item(r, "inner")["item"][0].pop("linkId"))
    assert message.startswith("item 1 under inner (text 'Deep'): linkId:")
    assert "required" in message


def test_a_missing_top_level_link_id() -> None:
    assert broken(lambda r: r["item"][1].pop("linkId")).startswith(
        "item 2 under questionnaire (text 'Wound?')"
    )


@pytest.mark.parametrize(
    ("fhir_type", "expected"),
    [("bogus", "wound: unknown item type 'bogus'"), ("boolean", "wound: item type boolean is not supported")],
)
def test_a_bad_item_type_names_the_item(fhir_type: str, expected: str) -> None:
    assert broken(lambda r: fhir_item(r, "wound").update(type=fhir_type)).startswith(expected)


def test_an_unknown_enable_when_target_names_the_item() -> None:
    def change(r: dict[str, Any]) -> None:
        fhir_item(r, "temperature")["enableWhen"][0]["question"] = "nowhere"

    assert broken(change) == "temperature/enable_when: refers to unknown item 'nowhere'"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"question": "fever", "operator": "~", "answerCoding": {"code": "yes"}}, "unknown operator '~'"),
        ({"question": "fever", "operator": "="}, "temperature: enableWhen.0:"),
        (
            {"question": "fever", "operator": "=", "answerQuantity": {"value": 1}},
            "answerQuantity is not supported",
        ),
        ({"question": "fever", "operator": "=", "answerCoding": {"code": "maybe"}}, "has no option 'maybe'"),
        ({"question": "fever", "operator": "=", "answerBoolean": True}, "only exists takes true or false"),
        (
            {"question": "fever", "operator": "=", "answerCoding": {"display": "Yes"}},
            "answerCoding has no code",
        ),
        ({"question": "since", "operator": "=", "answerDate": "2025-03"}, "'2025-03' is not a full date"),
    ],
)
def test_bad_enable_when_names_the_item(condition: dict[str, Any], expected: str) -> None:
    def change(r: dict[str, Any]) -> None:
        fhir_item(r, "temperature")["enableWhen"] = [condition]

    message = broken(change)
    assert message.startswith("temperature") and expected in message


def test_several_conditions_need_a_behaviour() -> None:
    assert broken(lambda r: fhir_item(r, "more").pop("enableBehavior")) == (
        "more: several enableWhen need an enableBehavior (all or any)"
    )


def slider() -> dict[str, Any]:
    return {"url": ITEM_CONTROL, "valueCodeableConcept": {"coding": [{"code": "slider"}]}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: fhir_item(r, "fever").update(text=5), "fever: text: Input should be a valid string"),
        (lambda r: fhir_item(r, "fever").pop("_text"), "fever: missing text in zh-CN, vi"),
        (
            lambda r: fhir_item(r, "fever").update(answerOption=[{"valueString": "yes"}]),
            "fever: each answerOption",
        ),
        (lambda r: fhir_item(r, "fever").update(answerValueSet="http://x/vs"), "fever: answerValueSet"),
        (lambda r: fhir_item(r, "since").update(repeats=True), "since: repeats is only supported on choice"),
        (lambda r: fhir_item(r, "wound").update(linkId="fever"), "fever: duplicate item id"),
        (lambda r: fhir_item(r, "results")["item"][0].update(linkId="hba1c"), "results: a multi-blank holds"),
        (
            lambda r: fhir_item(r, "stars").update(type="decimal"),
            "stars: CareLoop type star_rating does not fit",
        ),
        (lambda r: fhir_item(r, "pain").update(extension=[slider()]), "pain: a scale needs min and max"),
        (lambda r: ext(r, DEFINITION).update(valueString="{"), "everything: extension"),
        (lambda r: r.pop("language"), "questionnaire: language must be one of"),
        (lambda r: r.update(version="3.1"), "everything: needs an integer version"),
        (lambda r: (r.pop("url"), r.pop("identifier")), "questionnaire: no CareLoop identifier"),
    ],
)
def test_malformed_resources_are_refused_with_a_readable_message(change: Any, expected: str) -> None:
    assert expected in broken(change)


def test_weights_that_disagree_are_refused() -> None:
    def change(r: dict[str, Any]) -> None:
        ext(fhir_item(r, "fever")["answerOption"][0], ITEM_WEIGHT)["valueDecimal"] = 5

    assert broken(change) == "fever/yes: ordinalValue and itemWeight disagree"


@pytest.mark.parametrize("data", [{"resourceType": "Patient"}, [], "Questionnaire"])
def test_only_a_questionnaire_is_read(data: Any) -> None:
    with pytest.raises(DefinitionError, match="expected a FHIR Questionnaire"):
        from_fhir_questionnaire(data)


def test_many_errors_are_summarised() -> None:
    def change(r: dict[str, Any]) -> None:
        for item in r["item"]:
            item["text"] = 1

    message = broken(change)
    assert message.count("Input should be a valid string") == 5 and message.endswith("more)")


# --- responses -------------------------------------------------------------------------------------

ANSWERS: dict[str, AnswerValue] = {
    "fever": "yes",
    "wound": ["red", "wet"],
    "ward": "b",
    "stars": 4,
    "pain": 8,
    "systolic": 120,
    "temperature": Decimal("38.7"),
    "since": date(2025, 3, 1),
    "name": "Lan",
    "story": "Better now",
    "results": {"hba1c": "7.1", "weight": ""},
    "again": "y",
    "deep": 3,
}


def response(answers: dict[str, AnswerValue] | None = None, **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"lang": "en", "subject_ref": "Patient/42", "authored": AUTHORED} | kwargs
    return to_fhir_response(q(), ANSWERS if answers is None else answers, **arguments)


def answers_of(resource: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def visit(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "answer" in item:
                found[item["linkId"]] = item["answer"]
            visit(item.get("item") or [])

    visit(resource["item"])
    return found


def test_a_response_carries_every_kind_of_answer() -> None:
    resource = response()
    fhir_model(resource)
    assert resource["questionnaire"] == "https://careloop.org/fhir/Questionnaire/everything|3"
    assert (resource["status"], resource["subject"], resource["language"]) == (
        "completed",
        {"reference": "Patient/42"},
        "en",
    )
    assert datetime.fromisoformat(resource["authored"]) == AUTHORED
    assert answers_of(resource) == {
        "fever": [{"valueCoding": {"code": "yes", "display": "Yes"}}],
        "wound": [
            {"valueCoding": {"code": "red", "display": "Red"}},
            {"valueCoding": {"code": "wet", "display": "Wet"}},
        ],
        "ward": [{"valueCoding": {"code": "b", "display": "B"}}],
        "stars": [{"valueInteger": 4}],
        "pain": [{"valueInteger": 8}],
        "systolic": [{"valueInteger": 120}],
        "temperature": [{"valueDecimal": 38.7}],
        "since": [{"valueDate": "2025-03-01"}],
        "name": [{"valueString": "Lan"}],
        "story": [{"valueString": "Better now"}],
        "results.hba1c": [{"valueString": "7.1"}],
        "again": [{"valueCoding": {"code": "y", "display": "Y"}}],
        "deep": [{"valueInteger": 3}],
    }


def test_groups_and_blanks_nest() -> None:
    resource = response()
    top = [item["linkId"] for item in resource["item"]]
    assert "note" not in top and "again" not in top and "more" in top
    more = next(item for item in resource["item"] if item["linkId"] == "more")
    assert [item["linkId"] for item in more["item"]] == ["again", "inner"]
    assert more["item"][1]["item"][0]["linkId"] == "deep"
    results = next(item for item in resource["item"] if item["linkId"] == "results")
    assert "answer" not in results and [b["linkId"] for b in results["item"]] == ["results.hba1c"]


@pytest.mark.parametrize("lang", LANGS)
def test_response_texts_are_in_the_language(lang: str) -> None:
    resource = response({"fever": "no"}, lang=lang)
    assert resource["item"] == [
        {
            "linkId": "fever",
            "text": texts("Fever?")[lang],
            "answer": [{"valueCoding": {"code": "no", "display": texts("No")[lang]}}],
        }
    ]


def test_answers_a_changed_answer_disabled_are_left_out() -> None:
    resource = response({"fever": "no", "temperature": Decimal("39")}, status=ResponseStatus.IN_PROGRESS)
    assert resource["status"] == "in-progress"
    assert list(answers_of(resource)) == ["fever"]


def test_an_empty_response_is_valid() -> None:
    resource = response({}, status="in-progress", authored=AUTHORED.astimezone(timezone(timedelta(hours=8))))
    assert "item" not in resource
    assert datetime.fromisoformat(resource["authored"]) == AUTHORED


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"fever": "maybe"}, "fever: no option 'maybe'"),
        ({"wound": "red"}, "wound: 'red' is not a multiple_choice answer"),
        ({"wound": []}, "wound: [] is not a multiple_choice answer"),
        ({"pain": Decimal("7.5")}, "pain: Decimal('7.5') is not a scale answer"),
        ({"pain": True}, "pain: True is not a scale answer"),
        ({"temperature": "hot", "fever": "yes"}, "temperature: 'hot' is not a decimal answer"),
        ({"since": "2025-03-01"}, "since: '2025-03-01' is not a date answer"),
        ({"name": 5}, "name: 5 is not a short_text answer"),
        ({"results": {"hba1c": "7", "height": "170"}}, "results: {"),
        ({"note": "read"}, "note: everything has no such question"),
        ({"nowhere": 1}, "nowhere: everything has no such question"),
    ],
)
def test_answers_that_do_not_fit_are_refused(answers: dict[str, AnswerValue], expected: str) -> None:
    with pytest.raises(BadStoredValue) as caught:
        response(answers)
    assert str(caught.value).startswith(expected)


def test_a_response_needs_an_aware_time_and_a_known_status() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        response(authored=datetime(2025, 3, 5, 9, 30))
    with pytest.raises(ValueError, match="done"):
        response(status="done")


# --- the built-in library ---------------------------------------------------------------------------


@pytest.mark.skipif(not LIBRARY, reason="no questionnaires under content/questionnaires yet")
def test_every_library_questionnaire_survives_the_round_trip() -> None:
    checked = []
    for n, path in enumerate(LIBRARY):
        original = parse_questionnaire(yaml.safe_load(path.read_text(encoding="utf-8")))
        lang = LANGS[n % len(LANGS)]  # each file in one language and the library in all three: it is slow
        resource = to_fhir_questionnaire(original, lang)
        assert from_fhir_questionnaire(json.loads(json.dumps(resource))) == original, (path.name, lang)
        checked.append(path.name)
    assert checked and len(checked) == len(LIBRARY)
