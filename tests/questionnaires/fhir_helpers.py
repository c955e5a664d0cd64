"""What the FHIR tests share: finding items, extensions and translations in an exported resource."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from questionnaires.fhir_common import (
    ITEM_CONTROL,
    TRANSLATION,
)
from questionnaires.loader import parse_questionnaire
from questionnaires.model import Questionnaire
from tests.questionnaires.definitions import (
    Definition,
    band,
    definition,
    finding,
    group,
    options,
    question,
    score,
    texts,
    when,
)

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "content" / "questionnaires").glob("*.yaml"))
AUTHORED = datetime(2025, 3, 5, 9, 30, tzinfo=UTC)


def everything() -> Definition:
    """Every item type, every operator, every CareLoop extension."""
    return definition(
        "everything",
        3,
        "satisfaction",
        "Everything",
        [
            question(
                "fever",
                "single_choice",
                "Fever?",
                required=True,
                hint="Since you went home",
                options=[
                    {
                        "code": "yes",
                        "text": texts("Yes"),
                        "score": 1,
                        "words": {"zh-CN": ["发烧了"], "en": ["hot"]},
                    },
                    {"code": "no", "text": texts("No"), "score": 0},
                ],
            ),
            question("wound", "multiple_choice", "Wound?", options=options("red", "wet", "ok")),
            question("ward", "dropdown", "Ward?", options=options("a", "b", "c")),
            question("stars", "star_rating", "Stars", max=5, dimension="overall"),
            question("pain", "scale", "Pain?", min=0, max=10, min_label="No pain", max_label="Worst pain"),
            question("systolic", "integer", "BP", min=60, max=280, unit="mmHg"),
            question(
                "temperature",
                "decimal",
                "Temperature?",
                min=35,
                max=42.5,
                unit="°C",
                enable_when=[when("fever", "=", "yes")],
            ),
            question("since", "date", "Since?", statistics=False),
            question("name", "short_text", "Name?"),
            question("story", "long_text", "Tell us"),
            question(
                "results",
                "multi_blank",
                "Results",
                required=True,
                blanks=[{"id": "hba1c", "text": texts("HbA1c")}, {"id": "weight", "text": texts("Weight")}],
            ),
            group(
                "more",
                "More",
                [
                    question("note", "display", "A few more", hint="Nearly done"),
                    question("again", "single_choice", "Again?", options=options("x", "y")),
                    group("inner", "Inner", [question("deep", "integer", "Deep")]),
                ],
                enable_when=[
                    when("wound", "contains", "red"),
                    when("ward", "!=", "a"),
                    when("stars", "<", 3),
                    when("pain", ">=", 7),
                    when("temperature", ">", 38.5),
                    when("systolic", "<=", 90),
                    when("since", "=", date(2025, 3, 1)),
                    when("name", "=", "Lan"),
                    when("story", "exists", True),
                    when("results", "exists", False),
                ],
                enable_behavior="any",
            ),
            question("wound_any", "short_text", "Which?", enable_when=[when("wound", "=", "wet")]),
        ],
        scores=[
            score(
                "total",
                ["fever", "pain"],
                "Total",
                [band("low", 0, 5, "Low"), band("high", 6, 11, "High", "high")],
            )
        ],
        rules=[
            finding("hot", when("temperature", ">=", 39.5), "urgent", "Hot"),
            finding(
                "bad",
                [when("total", ">", 8, of="score"), when("since", "=", date(2025, 1, 2))],
                "high",
                "Bad",
            ),
        ],
        intro="Hello",
        outro="Thanks",
    )


def q() -> Questionnaire:
    return parse_questionnaire(everything())


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
