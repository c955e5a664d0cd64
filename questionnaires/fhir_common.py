"""Shared pieces of the FHIR mapping: extension URLs, the type table, three-language texts on one element."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from questionnaires.model import LANGS, ItemType, Texts

# FHIR R4B (4.3.0): fhir.resources >= 7 ships R5 as its default package and R4B as a sub-package, with
# no plain R4. Questionnaire and QuestionnaireResponse did not change between R4 and R4B.
FHIR_VERSION = "4.3.0"

HL7 = "http://hl7.org/fhir/StructureDefinition/"
TRANSLATION = HL7 + "translation"
ITEM_CONTROL = HL7 + "questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
MIN_VALUE = HL7 + "minValue"
MAX_VALUE = HL7 + "maxValue"
UNIT = HL7 + "questionnaire-unit"
SLIDER_STEP = HL7 + "questionnaire-sliderStepValue"
ORDINAL_VALUE = HL7 + "ordinalValue"  # R4 core
ITEM_WEIGHT = HL7 + "itemWeight"  # SDC 3's successor of ordinalValue; both are written, either is read

# What FHIR has no element for is carried in CareLoop's namespace (JSON in a valueString where structured).
CARELOOP = "https://careloop.org/fhir/StructureDefinition/"
DEFINITION = CARELOOP + "questionnaire-definition"  # kind, intro, outro, scores (with bands), rules
ITEM_TYPE = CARELOOP + "item-type"  # star_rating and multi_blank, which FHIR types cannot tell apart
STATISTICS = CARELOOP + "item-statistics"  # only when it differs from the default
DIMENSION = CARELOOP + "item-dimension"
OPTION_WORDS = CARELOOP + "option-words"  # spoken/typed synonyms per language
ENABLE_OPERATOR = CARELOOP + "enable-when-operator"  # "contains", written to FHIR as "="
DISPLAY_LABELS = CARELOOP + "display-labels"  # a display item's hint: display items cannot have children
SCORE_ITEM = CARELOOP + "score-item"  # marks the calculated item a score is exported as (the score's id)
OPTION_CODE = CARELOOP + "option-code"  # CareLoop's code of an option exported with its LOINC coding

CANONICAL_BASE = "https://careloop.org/fhir/Questionnaire/"
IDENTIFIER_SYSTEM = "https://careloop.org/fhir/questionnaire-id"

FHIR_TYPES: Mapping[ItemType, str] = {
    ItemType.SINGLE_CHOICE: "choice",
    ItemType.MULTIPLE_CHOICE: "choice",
    ItemType.DROPDOWN: "choice",
    ItemType.STAR_RATING: "integer",
    ItemType.SCALE: "integer",
    ItemType.INTEGER: "integer",
    ItemType.DECIMAL: "decimal",
    ItemType.DATE: "date",
    ItemType.SHORT_TEXT: "string",
    ItemType.LONG_TEXT: "text",
    ItemType.MULTI_BLANK: "group",
    ItemType.DISPLAY: "display",
    ItemType.GROUP: "group",
}
MARKED_TYPES = {ItemType.STAR_RATING, ItemType.MULTI_BLANK}  # carried in the item-type extension
# Display children of a question that hold its hint and the labels of a scale's ends.
LABEL_CONTROLS: Mapping[str, str] = {"help": "hint", "lower": "min_label", "upper": "max_label"}
LABEL_SUFFIX: Mapping[str, str] = {"hint": ":hint", "min_label": ":lower", "max_label": ":upper"}


def check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGS)}")


def put_texts(target: dict[str, Any], key: str, texts: Texts, lang: str) -> None:
    """`key` in `lang`, the other languages as translation extensions on `_key`."""
    target[key] = texts[lang]
    target["_" + key] = {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": other},
                    {"url": "content", "valueString": texts[other]},
                ],
            }
            for other in LANGS
            if other != lang
        ]
    }


def read_texts(element: Mapping[str, Any], key: str, lang: str) -> dict[str, str] | None:
    """The three-language texts of `key` (None when absent); languages matched case-insensitively."""
    value = element.get(key)
    found: dict[str, str] = {}
    if isinstance(value, str):
        found[lang] = value
    by_fold = {code.casefold(): code for code in LANGS}
    for ext in (element.get("_" + key) or {}).get("extension") or []:
        if ext.get("url") != TRANSLATION:
            continue
        parts = {sub.get("url"): sub for sub in ext.get("extension") or []}
        code = by_fold.get(str((parts.get("lang") or {}).get("valueCode", "")).casefold())
        content = (parts.get("content") or {}).get("valueString")
        if code is not None and isinstance(content, str):
            found.setdefault(code, content)
    return found or None


def extension(element: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    return next((e for e in element.get("extension") or [] if e.get("url") == url), None)


def item_controls(element: Mapping[str, Any]) -> set[str]:
    found = extension(element, ITEM_CONTROL)
    codings = ((found or {}).get("valueCodeableConcept") or {}).get("coding") or []
    return {str(c.get("code")) for c in codings if c.get("code")}


def item_control(code: str) -> dict[str, Any]:
    return {
        "url": ITEM_CONTROL,
        "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": code}]},
    }


def number(value: Decimal | int) -> int | float:
    """A JSON number: FHIR JSON has no decimal type, and fhir.resources stores decimals as floats."""
    if isinstance(value, int):
        return value
    return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)


def decimal_of(raw: Any) -> Decimal:
    return Decimal(str(raw))  # via str: a float 38.5 becomes Decimal("38.5"), not its binary expansion


def dump_json(data: Any) -> str:
    """JSON for CareLoop extensions: decimals as numbers (read back exactly), dates tagged."""

    def encode(value: Any) -> Any:
        if isinstance(value, Decimal):
            return number(value)
        if isinstance(value, date):
            return {"$date": value.isoformat()}
        if isinstance(value, Mapping):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [encode(v) for v in value]
        return value

    return json.dumps(encode(data), ensure_ascii=False, sort_keys=True)


def load_json(raw: str) -> Any:
    def hook(obj: dict[str, Any]) -> Any:
        return date.fromisoformat(obj["$date"]) if set(obj) == {"$date"} else obj

    return json.loads(raw, parse_float=Decimal, object_hook=hook)
