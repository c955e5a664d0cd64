"""FHIR R4B import: resources written elsewhere import with defaults; malformed ones are refused with
the item named."""

from __future__ import annotations

from typing import Any

import pytest

from questionnaires.fhir import (
    from_fhir_questionnaire,
    to_fhir_questionnaire,
)
from questionnaires.fhir_common import (
    DEFINITION,
    ITEM_CONTROL,
    ITEM_WEIGHT,
    ORDINAL_VALUE,
    TRANSLATION,
)
from questionnaires.loader import DefinitionError
from questionnaires.model import ItemType
from tests.questionnaires.definitions import texts
from tests.questionnaires.fhir_helpers import (
    ext,
    fhir_item,
    q,
)

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
