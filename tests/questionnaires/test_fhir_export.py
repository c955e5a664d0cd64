"""FHIR R4B export: every item type and branch survives the round trip in every language, as valid
R4B JSON; the built-in library does too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from questionnaires.fhir import (
    from_fhir_questionnaire,
    to_fhir_questionnaire,
)
from questionnaires.fhir_common import (
    DEFINITION,
    DISPLAY_LABELS,
    ITEM_TYPE,
    ITEM_WEIGHT,
    MAX_VALUE,
    MIN_VALUE,
    ORDINAL_VALUE,
    UNIT,
)
from questionnaires.loader import DefinitionError, parse_questionnaire
from questionnaires.model import LANGS
from tests.questionnaires.definitions import texts
from tests.questionnaires.fhir_helpers import (
    LIBRARY,
    ROOT,
    controls,
    everything,
    ext,
    fhir_item,
    fhir_model,
    q,
    translations,
)

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
    data = everything()
    data["items"].append({"id": "results.hba1c", "type": "short_text", "text": texts("Clash")})
    with pytest.raises(DefinitionError, match=r"results\.hba1c: the linkId would be used twice"):
        to_fhir_questionnaire(parse_questionnaire(data), "en")


def test_importing_the_module_does_not_import_fhir_resources() -> None:
    code = "import sys, questionnaires.fhir; assert 'fhir.resources' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


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
