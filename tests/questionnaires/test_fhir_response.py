"""FHIR R4B QuestionnaireResponse export: each kind of answer, nested groups and blanks, the patient's
language, and answers that do not fit refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from questionnaires.fhir import (
    ResponseStatus,
    to_fhir_response,
)
from questionnaires.model import LANGS, AnswerValue
from questionnaires.values import BadStoredValue
from tests.questionnaires.definitions import texts
from tests.questionnaires.fhir_helpers import (
    AUTHORED,
    fhir_model,
    q,
)

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
