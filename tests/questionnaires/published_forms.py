"""Published FHIR Questionnaires as public forms projects distribute them, written for the tests from
the shapes of the NLM LHC-Forms LOINC renditions and the SDC examples: one language, no `language`,
LOINC codes, ordinalValue/itemWeight or the older iso21090-CO-value scores, rule-editor totals."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
HL7 = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
ORDINAL = HL7 + "ordinalValue"
WEIGHT = HL7 + "itemWeight"
CO_VALUE = HL7 + "iso21090-CO-value"
FREQUENCY = [
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
]
PHQ9_ITEMS = [
    ("44250-9", "Little interest or pleasure in doing things"),
    ("44255-8", "Feeling down, depressed, or hopeless"),
    ("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
    ("44254-1", "Feeling tired or having little energy"),
    ("44251-7", "Poor appetite or overeating"),
    (
        "44258-2",
        "Feeling bad about yourself-or that you are a failure or have let yourself or your family down",
    ),
    ("44252-5", "Trouble concentrating on things, such as reading the newspaper or watching television"),
    ("44253-3", "Moving or speaking so slowly that other people could have noticed. Or the opposite"),
    ("44260-8", "Thoughts that you would be better off dead, or of hurting yourself in some way"),
]
GAD7_ITEMS = [
    ("69725-0", "Feeling nervous, anxious or on edge"),
    ("68509-9", "Not being able to stop or control worrying"),
    ("69733-4", "Worrying too much about different things"),
    ("69734-2", "Trouble relaxing"),
    ("69735-9", "Being so restless that it is hard to sit still"),
    ("69689-8", "Becoming easily annoyed or irritable"),
    ("69736-7", "Feeling afraid as if something awful might happen"),
]
DROP_DOWN = {
    "url": HL7 + "questionnaire-itemControl",
    "valueCodeableConcept": {
        "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "drop-down"}],
        "text": "Drop down",
    },
}


def loinc(code: str, display: str) -> list[dict[str, Any]]:
    return [{"system": LOINC, "code": code, "display": display}]


def lhc_option(code: str, display: str, score: int, url: str = ORDINAL) -> dict[str, Any]:
    return {
        "valueCoding": {"system": LOINC, "code": code, "display": display},
        "extension": [
            {"url": HL7 + "questionnaire-optionPrefix", "valueString": str(score)},
            {"url": url, "valueDecimal": score},
        ],
    }


def rule_editor_total(link: str, text: str, parts: list[str], code: str) -> dict[str, Any]:
    """The NLM rule editor's total: a variable per item and the guarded sum (names as it writes them)."""
    names = [chr(ord("a") + n) for n in range(len(parts))]
    variables = [
        {
            "url": HL7 + "variable",
            "valueExpression": {
                "name": name,
                "language": "text/fhirpath",
                "expression": f"%questionnaire.item.where(linkId = '{part}').answerOption"
                f".where(valueCoding.code=%resource.item.where(linkId = '{part}').answer.valueCoding.code)"
                f".extension.where(url='{ORDINAL}').valueDecimal",
            },
        }
        for name, part in zip(names, parts, strict=True)
    ]
    variables.append(
        {
            "url": HL7 + "variable",
            "valueExpression": {
                "name": "any_questions_answered",
                "language": "text/fhirpath",
                "expression": " or ".join(f"%{n}.exists()" for n in names),
            },
        }
    )
    guarded = " + ".join(f"iif(%{n}.exists(), %{n}, 0)" for n in names)
    return {
        "type": "decimal",
        "code": loinc(code, text),
        "linkId": link,
        "text": text,
        "readOnly": True,
        "extension": [
            *variables,
            {
                "url": SDC + "sdc-questionnaire-calculatedExpression",
                "valueExpression": {
                    "description": "Total score calculation",
                    "language": "text/fhirpath",
                    "expression": f"iif(%any_questions_answered, {guarded}, {{}})",
                },
            },
        ],
        "item": [
            {
                "linkId": link + "-help",
                "type": "display",
                "text": "Add up the scores of all the answers.",
                "extension": [
                    {
                        "url": HL7 + "questionnaire-itemControl",
                        "valueCodeableConcept": {"coding": [{"code": "help"}]},
                    }
                ],
            }
        ],
    }


def lhc_phq9() -> dict[str, Any]:
    """PHQ-9 as LHC-Forms distributes it: English only, no language, no version, ordinalValue on some
    options and itemWeight on others, a drop-down control, a rule-editor total with a help text."""
    questions = []
    for n, (code, text) in enumerate(PHQ9_ITEMS):
        url = ORDINAL if n % 2 == 0 else WEIGHT
        questions.append(
            {
                "type": "choice",
                "code": loinc(code, text),
                "extension": [DROP_DOWN],
                "required": False,
                "linkId": f"/{code}",
                "text": text,
                "answerOption": [lhc_option(c, d, s, url) for s, (c, d) in enumerate(FREQUENCY)],
            }
        )
    links = [f"/{code}" for code, _ in PHQ9_ITEMS]
    questions.append(
        rule_editor_total("/44261-6", "Patient health questionnaire 9 item total score", links, "44261-6")
    )
    questions.append(
        {
            "type": "choice",
            "code": loinc("69722-7", "How difficult have these problems made it for you"),
            "linkId": "/69722-7",
            "text": "How difficult have these problems made it for you to do your work?",
            "answerOption": [
                {"valueCoding": {"system": LOINC, "code": code, "display": display}}
                for code, display in [
                    ("LA6572-7", "Not difficult at all"),
                    ("LA6573-5", "Somewhat difficult"),
                    ("LA6575-0", "Very difficult"),
                    ("LA6574-3", "Extremely difficult"),
                ]
            ],
        }
    )
    return {
        "resourceType": "Questionnaire",
        "id": "44249-1-x",
        "meta": {"profile": ["http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire|2.7"]},
        "status": "draft",
        "title": "PHQ-9 quick depression assessment panel",
        "name": "PHQ-9 quick depression assessment panel",
        "code": loinc("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]"),
        "subjectType": ["Patient", "Person"],
        "item": [
            {
                "type": "group",
                "code": loinc("44249-1", "PHQ-9 quick depression assessment panel"),
                "linkId": "/44249-1",
                "text": "Over the last 2 weeks, how often have you been bothered by any of the following?",
                "item": questions,
            }
        ],
    }


def old_gad7() -> dict[str, Any]:
    """GAD-7 in an older LOINC rendition: scores in iso21090-CO-value on the coding, language en-US,
    a dotted string version, a plain `%a + %b` total over variables."""
    items: list[dict[str, Any]] = []
    for code, text in GAD7_ITEMS:
        options = []
        for score, (answer, display) in enumerate(FREQUENCY):
            options.append(
                {
                    "valueCoding": {
                        "system": LOINC,
                        "code": answer,
                        "display": display,
                        "extension": [{"url": CO_VALUE, "valueDecimal": score}],
                    }
                }
            )
        items.append({"linkId": code, "code": loinc(code, text), "text": text, "type": "choice",
                      "required": True, "answerOption": options})  # fmt: skip
    variables = [
        {
            "url": HL7 + "variable",
            "valueExpression": {
                "name": f"q{n}",
                "language": "text/fhirpath",
                "expression": f"%resource.item.where(linkId='{code}').answer.value.ordinal()",
            },
        }
        for n, (code, _) in enumerate(GAD7_ITEMS)
    ]
    items.append(
        {
            "linkId": "70274-6",
            "code": loinc("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score"),
            "text": "GAD-7 total score",
            "type": "integer",
            "readOnly": True,
            "extension": [
                {
                    "url": SDC + "sdc-questionnaire-calculatedExpression",
                    "valueExpression": {
                        "language": "text/fhirpath",
                        "expression": " + ".join(f"%q{n}" for n in range(len(GAD7_ITEMS))),
                    },
                }
            ],
        }
    )
    return {
        "resourceType": "Questionnaire",
        "language": "en-US",
        "url": "http://example.org/fhir/Questionnaire/gad-7",
        "version": "1.0",
        "status": "active",
        "title": "Generalized anxiety disorder 7 item (GAD-7)",
        "code": loinc("69737-5", "Generalized anxiety disorder 7 item (GAD-7)"),
        "extension": variables,
        "item": items,
    }


def branching_form() -> dict[str, Any]:
    """A hand-made follow-up form: contained answerValueSet with scores, enableWhen/enableBehavior,
    nested groups, valueString and valueInteger answers, a numeric valueString, a BMI calculation (not
    a sum), open-choice; Vietnamese only."""
    return {
        "resourceType": "Questionnaire",
        "id": "wound-check",
        "language": "vi",
        "status": "active",
        "version": "3",
        "contained": [
            {
                "resourceType": "ValueSet",
                "id": "yn",
                "status": "active",
                "compose": {
                    "include": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0136",
                            "concept": [
                                {
                                    "code": "Y",
                                    "display": "Có",
                                    "extension": [{"url": ORDINAL, "valueDecimal": 1}],
                                    "designation": [
                                        {"language": "zh", "value": "有"},
                                        {"language": "fr", "value": "Oui"},
                                        {"language": "en-GB", "value": "Yes"},
                                    ],
                                },
                                {
                                    "code": "N",
                                    "display": "Không",
                                    "extension": [{"url": ORDINAL, "valueDecimal": 0}],
                                },
                            ],
                        }
                    ]
                },
            }
        ],
        "title": "Kiểm tra vết mổ",
        "item": [
            {
                "linkId": "wound",
                "type": "group",
                "text": "Vết mổ",
                "required": True,
                "item": [
                    {
                        "linkId": "red",
                        "type": "choice",
                        "text": "Vết mổ có đỏ không?",
                        "answerValueSet": "#yn",
                    },
                    {
                        "linkId": "since",
                        "type": "choice",
                        "text": "Từ bao nhiêu ngày?",
                        "answerOption": [{"valueInteger": 1}, {"valueInteger": 2}, {"valueInteger": 3}],
                        "enableWhen": [{"question": "red", "operator": "=", "answerCoding": {"code": "Y"}}],
                    },
                    {
                        "linkId": "how",
                        "type": "open-choice",
                        "text": "Trông như thế nào?",
                        "answerOption": [{"valueString": "Sưng"}, {"valueString": "Chảy dịch"}],
                        "enableWhen": [
                            {"question": "red", "operator": "=", "answerCoding": {"code": "Y"}},
                            {"question": "since", "operator": "=", "answerInteger": 3},
                        ],
                        "enableBehavior": "any",
                    },
                ],
            },
            {"linkId": "weight", "type": "decimal", "text": "Cân nặng (kg)"},
            {"linkId": "height", "type": "decimal", "text": "Chiều cao (m)"},
            {
                "linkId": "bmi",
                "type": "decimal",
                "text": "Chỉ số BMI",
                "readOnly": True,
                "extension": [
                    {
                        "url": SDC + "sdc-questionnaire-calculatedExpression",
                        "valueExpression": {
                            "language": "text/fhirpath",
                            "expression": "%resource.item.where(linkId='weight').answer.value / "
                            "(%resource.item.where(linkId='height').answer.value).power(2)",
                        },
                    }
                ],
            },
            {
                "linkId": "note",
                "type": "string",
                "text": "Ghi chú",
                "extension": [{"url": HL7 + "entryFormat", "valueString": 5}],
                "enableWhen": [{"question": "bmi", "operator": "exists", "answerBoolean": True}],
            },
        ],
    }


def lhc_phq2() -> dict[str, Any]:
    """PHQ-2 as LHC-Forms distributes it: the first two PHQ-9 items and a rule-editor total."""
    questions: list[dict[str, Any]] = [
        {
            "type": "choice",
            "code": loinc(code, text),
            "linkId": f"/{code}",
            "text": text,
            "answerOption": [lhc_option(c, d, s) for s, (c, d) in enumerate(FREQUENCY)],
        }
        for code, text in PHQ9_ITEMS[:2]
    ]
    links = [q["linkId"] for q in questions]
    questions.append(rule_editor_total("/55758-7", "PHQ-2 total score", links, "55758-7"))
    return {
        "resourceType": "Questionnaire",
        "id": "55757-9",
        "status": "draft",
        "title": "Patient Health Questionnaire 2 item (PHQ-2) [Reported]",
        "code": loinc("55757-9", "Patient Health Questionnaire 2 item (PHQ-2) [Reported]"),
        "item": questions,
    }
