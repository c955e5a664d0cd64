"""The model as FHIR R4B JSON: a Questionnaire carrying all three languages, and a QuestionnaireResponse."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from questionnaires.fhir_calculated import CALCULATED, sum_expression
from questionnaires.fhir_common import (
    CANONICAL_BASE,
    DEFINITION,
    DIMENSION,
    DISPLAY_LABELS,
    ENABLE_OPERATOR,
    FHIR_TYPES,
    ITEM_TYPE,
    ITEM_WEIGHT,
    LABEL_CONTROLS,
    LABEL_SUFFIX,
    MARKED_TYPES,
    MAX_VALUE,
    MIN_VALUE,
    OPTION_CODE,
    OPTION_WORDS,
    ORDINAL_VALUE,
    SCORE_ITEM,
    SLIDER_STEP,
    STATISTICS,
    UNIT,
    dump_json,
    item_control,
    number,
    put_texts,
)
from questionnaires.model import (
    AnswerValue,
    Coding,
    Condition,
    Item,
    ItemType,
    Kind,
    Operator,
    Option,
    Questionnaire,
    Score,
    Texts,
)
from questionnaires.values import BadStoredValue

INTEGER_TYPES = {ItemType.STAR_RATING, ItemType.SCALE, ItemType.INTEGER}
LABEL_CONTROL = {label: control for control, label in LABEL_CONTROLS.items()}


def canonical(q: Questionnaire) -> str:
    return CANONICAL_BASE + q.id


def _condition_json(cond: Condition) -> dict[str, Any]:
    out: dict[str, Any] = {"op": cond.operator.value, "value": cond.value}
    out["item" if cond.item is not None else "score"] = cond.item if cond.item is not None else cond.score
    return out


def definition_extension(q: Questionnaire) -> dict[str, Any] | None:
    """What FHIR has no place for, in the loader's own format so that the import re-reads it as authored."""
    data: dict[str, Any] = {}
    if q.kind is not Kind.FOLLOW_UP:
        data["kind"] = q.kind.value
    if q.missing_languages:
        data["languages"] = list(q.languages)
    for key, texts in (("intro", q.intro), ("outro", q.outro)):
        if texts is not None:
            data[key] = dict(texts)
    if q.scores:
        data["scores"] = [
            {
                "id": s.id,
                "items": list(s.items),
                "text": dict(s.text),
                "bands": [
                    {"code": b.code, "min": b.minimum, "max": b.maximum, "text": dict(b.text)}
                    | ({"severity": b.severity.value} if b.severity is not None else {})
                    for b in s.bands
                ],
            }
            for s in q.scores
        ]
    if q.rules:
        data["rules"] = [
            {
                "id": r.id,
                "when": [_condition_json(c) for c in r.when],
                "severity": r.severity.value,
                "text": dict(r.text),
            }
            for r in q.rules
        ]
    return {"url": DEFINITION, "valueString": dump_json(data)} if data else None


def _bound(item: Item, url: str, value: Decimal) -> dict[str, Any]:
    # An integer item's bounds are integers; a fractional bound on one stays a decimal rather than
    # being rounded into a different range.
    integral = value == value.to_integral_value()
    if item.type in INTEGER_TYPES and integral:
        return {"url": url, "valueInteger": int(value)}
    return {"url": url, "valueDecimal": number(value)}


def _answer_value(target: Item, cond: Condition, lang: str) -> dict[str, Any]:
    value = cond.value
    if cond.operator is Operator.EXISTS:
        return {"answerBoolean": bool(value)}
    if target.type.has_options:
        option = target.option(str(value))
        coding: dict[str, Any] = {"code": str(value)}
        if option is not None and option.coding is not None:
            coding = {"system": option.coding.system, "code": option.coding.code}
        if option is not None:
            coding["display"] = option.text[lang]
        return {"answerCoding": coding}
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        whole = Decimal(value) == Decimal(value).to_integral_value()
        if target.type in INTEGER_TYPES and whole:
            return {"answerInteger": int(value)}
        return {"answerDecimal": number(value)}
    if target.type is ItemType.DATE:
        return {"answerDate": value.isoformat() if isinstance(value, date) else str(value)}
    return {"answerString": str(value)}


def _enable_when(q: Questionnaire, item: Item, lang: str) -> list[dict[str, Any]]:
    out = []
    for cond in item.enable_when:
        target = q.item(str(cond.item))
        # FHIR's "=" on a repeating answer already means "any answer equals"; contains is marked so that
        # the import gives back the operator the author wrote.
        fhir_op = "=" if cond.operator is Operator.CONTAINS else cond.operator.value
        entry: dict[str, Any] = {"question": target.id, "operator": fhir_op}
        entry |= _answer_value(target, cond, lang)
        if cond.operator is Operator.CONTAINS:
            entry["extension"] = [{"url": ENABLE_OPERATOR, "valueCode": Operator.CONTAINS.value}]
        out.append(entry)
    return out


def codings(codes: tuple[Coding, ...]) -> list[dict[str, Any]]:
    return [
        {"system": c.system, "code": c.code} | ({"display": c.display} if c.display else {}) for c in codes
    ]


def _option(option: Option, lang: str) -> dict[str, Any]:
    # Other systems read the standard answer code (LOINC LA...); CareLoop's own code, which its rules
    # name, travels beside it when the two differ.
    standard = option.coding
    coding: dict[str, Any] = {"code": option.code}
    if standard is not None:
        coding = {"system": standard.system, "code": standard.code}
    put_texts(coding, "display", option.text, lang)
    out: dict[str, Any] = {"valueCoding": coding}
    ext: list[dict[str, Any]] = []
    if standard is not None and standard.code != option.code:
        ext.append({"url": OPTION_CODE, "valueCode": option.code})
    if option.score is not None:
        ext += [
            {"url": ORDINAL_VALUE, "valueDecimal": option.score},
            {"url": ITEM_WEIGHT, "valueDecimal": option.score},
        ]
    if option.words:
        ext.append(
            {"url": OPTION_WORDS, "valueString": dump_json({k: list(v) for k, v in option.words.items()})}
        )
    if ext:
        out["extension"] = ext
    return out


def _display(link_id: str, texts: Texts, lang: str, control: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": link_id}
    put_texts(out, "text", texts, lang)
    out["type"] = "display"
    if control is not None:
        out["extension"] = [item_control(control)]
    return out


def _extensions(item: Item, lang: str) -> list[dict[str, Any]]:
    ext: list[dict[str, Any]] = []
    if item.type is ItemType.DROPDOWN:
        ext.append(item_control("drop-down"))
    if item.type is ItemType.SCALE:
        ext += [item_control("slider"), {"url": SLIDER_STEP, "valueInteger": 1}]
    if item.type in MARKED_TYPES:
        ext.append({"url": ITEM_TYPE, "valueCode": item.type.value})
    if item.minimum is not None:
        ext.append(_bound(item, MIN_VALUE, item.minimum))
    if item.maximum is not None:
        ext.append(_bound(item, MAX_VALUE, item.maximum))
    if item.unit is not None:
        coding: dict[str, Any] = {}
        put_texts(coding, "display", item.unit, lang)
        ext.append({"url": UNIT, "valueCoding": coding})
    if item.statistics != item.type.answerable:
        ext.append({"url": STATISTICS, "valueBoolean": item.statistics})
    if item.dimension is not None:
        ext.append({"url": DIMENSION, "valueString": item.dimension})
    if item.type is ItemType.DISPLAY:
        labels = {key: dict(texts) for key, texts in _labels(item) if texts is not None}
        if labels:
            ext.append({"url": DISPLAY_LABELS, "valueString": dump_json(labels)})
    return ext


def _labels(item: Item) -> tuple[tuple[str, Texts | None], ...]:
    return (("hint", item.hint), ("min_label", item.min_label), ("max_label", item.max_label))


def fhir_item(q: Questionnaire, item: Item, lang: str) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.id}
    if item.codes:
        out["code"] = codings(item.codes)
    put_texts(out, "text", item.text, lang)
    out["type"] = FHIR_TYPES[item.type]
    if ext := _extensions(item, lang):
        out["extension"] = ext
    if item.enable_when:
        out["enableWhen"] = _enable_when(q, item, lang)
        out["enableBehavior"] = "any" if item.enable_any else "all"
    if item.required:
        out["required"] = True
    if item.type is ItemType.MULTIPLE_CHOICE:
        out["repeats"] = True
    if item.options:
        out["answerOption"] = [_option(o, lang) for o in item.options]
    children: list[dict[str, Any]] = []
    if item.type is not ItemType.DISPLAY:  # a display item's labels are in an extension
        for key, texts in _labels(item):
            if texts is not None:
                children.append(_display(item.id + LABEL_SUFFIX[key], texts, lang, LABEL_CONTROL[key]))
    for blank in item.blanks:
        child: dict[str, Any] = {"linkId": f"{item.id}.{blank.id}"}
        put_texts(child, "text", blank.text, lang)
        child["type"] = "string"
        children.append(child)
    children += [fhir_item(q, child, lang) for child in item.items]
    if children:
        out["item"] = children
    return out


def score_item(q: Questionnaire, score: Score, lang: str) -> dict[str, Any]:
    """A total in SDC's standard form, a read-only calculated item, for systems that do not read
    CareLoop's definition extension (CareLoop's import skips it and reads the score from there)."""
    taken = {item.id for item in q.walk()}
    out: dict[str, Any] = {"linkId": score.id if score.id not in taken else f"{score.id}:score"}
    put_texts(out, "text", score.text, lang)
    out["type"] = "integer"
    out["readOnly"] = True
    variables, total = sum_expression([(i, q.item(i).type.has_options) for i in score.items])
    out["extension"] = [
        {"url": SCORE_ITEM, "valueString": score.id},
        *variables,
        {
            "url": CALCULATED,
            "valueExpression": {
                "description": "Total score",
                "language": "text/fhirpath",
                "expression": total,
            },
        },
    ]
    return out


# --- responses ------------------------------------------------------------------------------------


def _bad(item: Item, value: object) -> BadStoredValue:
    return BadStoredValue(f"{item.id}: {value!r} is not a {item.type.value} answer")


def _coding(item: Item, code: object, lang: str) -> dict[str, Any]:
    option = item.option(str(code)) if isinstance(code, str) else None
    if option is None:
        raise BadStoredValue(f"{item.id}: no option {code!r}")
    return {"valueCoding": {"code": option.code, "display": option.text[lang]}}


def answer_values(item: Item, value: AnswerValue, lang: str) -> list[dict[str, Any]]:
    """FHIR answers for one item's answer (several for multiple choice); the value must fit the type."""
    if item.type is ItemType.MULTIPLE_CHOICE:
        if not isinstance(value, list) or not value:
            raise _bad(item, value)
        return [_coding(item, code, lang) for code in value]
    if item.type.has_options:
        return [_coding(item, value, lang)]
    if item.type in INTEGER_TYPES:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(item, value)
        return [{"valueInteger": value}]
    if item.type is ItemType.DECIMAL:
        if not isinstance(value, int | Decimal) or isinstance(value, bool):
            raise _bad(item, value)
        return [{"valueDecimal": number(Decimal(value))}]
    if item.type is ItemType.DATE:
        if not isinstance(value, date):
            raise _bad(item, value)
        return [{"valueDate": value.isoformat()}]
    if item.type in {ItemType.SHORT_TEXT, ItemType.LONG_TEXT}:
        if not isinstance(value, str):
            raise _bad(item, value)
        return [{"valueString": value}]
    raise _bad(item, value)


def response_items(
    items: tuple[Item, ...], answers: Mapping[str, AnswerValue], lang: str
) -> list[dict[str, Any]]:
    """Answered items in questionnaire order; groups nest, multi-blank items hold one item per blank."""
    out: list[dict[str, Any]] = []
    for item in items:
        entry: dict[str, Any] = {"linkId": item.id, "text": item.text[lang]}
        children = response_items(item.items, answers, lang)
        value = answers.get(item.id)
        if item.type is ItemType.MULTI_BLANK and value is not None:
            if not isinstance(value, Mapping) or set(value) - {b.id for b in item.blanks}:
                raise _bad(item, value)
            children = [
                {
                    "linkId": f"{item.id}.{b.id}",
                    "text": b.text[lang],
                    "answer": [{"valueString": str(value[b.id])}],
                }
                for b in item.blanks
                if str(value.get(b.id) or "").strip()
            ] + children
        elif item.type.answerable and value is not None:
            entry["answer"] = answer_values(item, value, lang)
        if "answer" in entry:
            if children:  # a question's own sub-items sit under its answer in a response
                entry["answer"][0]["item"] = children
            out.append(entry)
        elif children:
            entry["item"] = children
            out.append(entry)
    return out
