"""Import of FHIR Questionnaires as public forms projects publish them (LOINC forms, SDC extensions).

Published forms differ from CareLoop's own export: no `language`, identity in `id`/`url`/`code`,
versions like "2.0.1", one language only, scores in `itemWeight`/`ordinalValue`/`iso21090-CO-value`,
totals as `calculatedExpression`, answers in contained value sets. `normalise` rewrites such a form into
the shape `fhir_import.definition` reads, writing down every change in the import report; the rest of
the path (fhir.resources' validation, the loader's rules) is the one CareLoop's own files take.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from questionnaires.fhir_calculated import CALCULATED, VARIABLE, recognise_sum
from questionnaires.fhir_common import (
    DEFINITION,
    ITEM_WEIGHT,
    ORDINAL_VALUE,
    SCORE_ITEM,
    TRANSLATION,
    UNIT,
    decimal_of,
    dump_json,
    extension,
    load_json,
    read_texts,
)
from questionnaires.fhir_report import ImportReport, NoteCode, NoteKind
from questionnaires.fhir_source import ImportRefused, identity, language, narrowed, title, version
from questionnaires.loader import DefinitionError
from questionnaires.model import LANGS

CO_VALUE = "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value"  # DSTU2/STU3 forms' option score
SCORE_URLS = (ORDINAL_VALUE, ITEM_WEIGHT, CO_VALUE)
NUMERIC_TYPES = {"integer", "decimal"}


@dataclass(slots=True)
class _Context:
    report: ImportReport
    lang: str
    contained: Mapping[str, Mapping[str, Any]]
    numeric: frozenset[str]
    scores: list[dict[str, Any]] = field(default_factory=list)
    not_questions: set[str] = field(default_factory=set)  # linkIds no longer answerable
    missing: dict[str, int] = field(default_factory=dict)  # language -> texts without it


def _fill(element: dict[str, Any], key: str, ctx: _Context) -> dict[str, str] | None:
    """Translations for the languages `key` lacks: the source text, counted as missing."""
    found = read_texts(element, key, ctx.lang)
    if found is None:
        return None
    source = found.get(ctx.lang) or next(iter(found.values()))
    element[key] = source
    extensions = (element.setdefault("_" + key, {})).setdefault("extension", [])
    for lang in LANGS:
        if lang not in found:
            ctx.missing[lang] = ctx.missing.get(lang, 0) + 1
            extensions.append(
                {
                    "url": TRANSLATION,
                    "extension": [
                        {"url": "lang", "valueCode": lang},
                        {"url": "content", "valueString": source},
                    ],
                }
            )
    return {lang: found.get(lang, source) for lang in LANGS}


def _variables(element: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for ext in element.get("extension") or []:
        expression = ext.get("valueExpression") or {}
        if ext.get("url") == VARIABLE and expression.get("name") and expression.get("expression"):
            out[str(expression["name"])] = str(expression["expression"])
    return out


def _without(element: dict[str, Any], urls: set[str]) -> None:
    kept = [e for e in element.get("extension") or [] if e.get("url") not in urls]
    if kept:
        element["extension"] = kept
    else:
        element.pop("extension", None)


def _option_score(option: dict[str, Any], where: str, ctx: _Context) -> None:
    """Moves the option's score, wherever the form put it, to ordinalValue on the answerOption."""
    holders = [option, option.get("valueCoding") or {}]
    found = [(e.get("url"), e.get("valueDecimal", e.get("valueInteger"))) for h in holders for e in
             h.get("extension") or [] if e.get("url") in SCORE_URLS]  # fmt: skip
    for holder in holders:
        if holder:
            _without(holder, set(SCORE_URLS))
    values = {str(decimal_of(v)) for _, v in found if v is not None}
    if not values:
        return
    if any(url == CO_VALUE for url, _ in found):
        ctx.report.add(NoteKind.CHANGED, NoteCode.SCORE_FROM_OLD_EXTENSION, where)
    code = (option.get("valueCoding") or {}).get("code")
    if len(values) > 1:
        raise DefinitionError(f"{where}/{code}: the option's scores disagree ({', '.join(sorted(values))})")
    score = Decimal(values.pop())
    if score != score.to_integral_value():
        ctx.report.add(NoteKind.DROPPED, NoteCode.SCORE_NOT_WHOLE, where, code=code, score=score)
        return
    option.setdefault("extension", []).append({"url": ORDINAL_VALUE, "valueDecimal": int(score)})


def _designations(concept: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A concept's designations in CareLoop's languages, as translation extensions."""
    out = []
    for designation in concept.get("designation") or []:
        lang = narrowed(str(designation.get("language") or ""))
        if lang is not None and designation.get("value"):
            out.append(
                {
                    "url": TRANSLATION,
                    "extension": [
                        {"url": "lang", "valueCode": lang},
                        {"url": "content", "valueString": str(designation["value"])},
                    ],
                }
            )
    return out


def _value_set_options(item: dict[str, Any], ctx: _Context) -> None:
    link, reference = item["linkId"], str(item.pop("answerValueSet"))
    value_set = ctx.contained.get(reference.lstrip("#")) if reference.startswith("#") else None
    if value_set is None:
        raise ImportRefused(
            f"{link}: answerValueSet {reference} is not contained in the file; CareLoop does not fetch "
            "value sets (include it under contained, or list the answers as answerOption)"
        )
    concepts: list[dict[str, Any]] = []
    for include in (value_set.get("compose") or {}).get("include") or []:
        concepts += [c | {"system": include.get("system")} for c in include.get("concept") or []]
    if not concepts:
        concepts = list((value_set.get("expansion") or {}).get("contains") or [])
    options = []
    for concept in concepts:
        coding = {k: concept[k] for k in ("system", "code", "display", "_display") if concept.get(k)}
        translations = _designations(concept)
        if translations:  # a value set's translations are designations, a Coding's are extensions
            coding.setdefault("_display", {}).setdefault("extension", []).extend(translations)
        scores = [e for e in concept.get("extension") or [] if e.get("url") in SCORE_URLS]
        options.append({"valueCoding": coding} | ({"extension": scores} if scores else {}))
    item["answerOption"] = options
    ctx.report.add(NoteKind.CHANGED, NoteCode.OPTIONS_FROM_VALUE_SET, link, value_set=reference)


def _options(item: dict[str, Any], ctx: _Context) -> None:
    link = item["linkId"]
    if item.get("answerValueSet"):
        _value_set_options(item, ctx)
    kinds = set()
    for option in item.get("answerOption") or []:
        for kind in ("valueString", "valueInteger"):
            if kind in option:
                value = str(option.pop(kind))
                option["valueCoding"] = {"code": value, "display": value}
                kinds.add(kind)
        _option_score(option, link, ctx)
        coding = option.get("valueCoding")
        if isinstance(coding, dict) and coding.get("code") and not coding.get("display"):
            coding["display"] = str(coding["code"])
        if isinstance(coding, dict) and coding.get("display"):
            _fill(coding, "display", ctx)
    for kind in sorted(kinds):
        ctx.report.add(NoteKind.CHANGED, NoteCode.OPTION_FROM_VALUE, link, value_type=kind)


def _calculated(item: dict[str, Any], scope: Mapping[str, str], ctx: _Context) -> dict[str, Any] | None:
    """A total becomes a CareLoop score (the item goes); any other calculation becomes display text."""
    link = item["linkId"]
    expression = str(((extension(item, CALCULATED) or {}).get("valueExpression") or {}).get("expression"))
    ctx.not_questions.add(link)
    total = recognise_sum(expression, scope, sorted(ctx.numeric))
    text = _fill(item, "text", ctx) if item.get("text") else None
    if total is not None:
        ctx.scores.append(
            {"id": link, "items": list(total.items), "text": text or dict.fromkeys(LANGS, link)}
        )
        ctx.report.add(NoteKind.CHANGED, NoteCode.TOTAL_RECOGNISED, link, score=link, count=len(total.items))
        return None
    ctx.report.add(NoteKind.WARNING, NoteCode.CALCULATION_DISPLAYED, link, expression=expression[:120])
    return _as_display(item, ctx, filled=True)


def _as_display(item: dict[str, Any], ctx: _Context, *, filled: bool = False) -> dict[str, Any] | None:
    """The item as text only (nothing to answer), or None when it has no text to show."""
    if not item.get("text"):
        return None
    if not filled:
        _fill(item, "text", ctx)
    keep = ("linkId", "text", "_text", "code")
    return {k: item[k] for k in keep if k in item} | {"type": "display"}


def _item(raw: dict[str, Any], scope: Mapping[str, str], ctx: _Context) -> dict[str, Any] | None:
    item = dict(raw)
    link = str(item.get("linkId") or "")
    scope = {**scope, **_variables(item)}
    if extension(item, SCORE_ITEM) is not None:  # CareLoop's own exported total: the strict reader skips it
        return item
    if extension(item, CALCULATED) is not None:
        return _calculated(item, scope, ctx)
    if item.get("readOnly") and item.get("type") not in {"group", "display"}:
        # Filled by the form itself (an expression CareLoop does not know): never put to the patient.
        ctx.not_questions.add(link)
        ctx.report.add(NoteKind.WARNING, NoteCode.READ_ONLY_DISPLAYED, link)
        return _as_display(item, ctx)
    _without(item, {VARIABLE})
    if item.get("type") == "open-choice":
        item["type"] = "choice"
        ctx.report.add(NoteKind.CHANGED, NoteCode.OPEN_CHOICE_CLOSED, link)
    if item.get("repeats") and item.get("type") != "choice":
        item.pop("repeats")
        ctx.report.add(NoteKind.CHANGED, NoteCode.REPEATS_DROPPED, link)
    if item.get("required") and item.get("type") in {"display", "group"}:
        item.pop("required")
        ctx.report.add(NoteKind.CHANGED, NoteCode.REQUIRED_DROPPED, link, type=item.get("type"))
    if item.get("type") in {"display", "group"}:
        ctx.not_questions.add(link)
    named = next((c.get("display") for c in item.get("code") or [] if c.get("display")), None)
    if not item.get("text") and named:  # LOINC panels name their groups by code alone
        item["text"] = str(named)
        ctx.report.add(NoteKind.CHANGED, NoteCode.TEXT_FROM_CODE, link)
    if item.get("text"):
        _fill(item, "text", ctx)
    unit = extension(item, UNIT)
    if unit is not None and isinstance(unit.get("valueCoding"), dict) and unit["valueCoding"].get("display"):
        _fill(unit["valueCoding"], "display", ctx)
    _options(item, ctx)
    if item.get("item"):
        children = [c for c in (_item(child, scope, ctx) for child in item["item"]) if c is not None]
        if children:
            item["item"] = children
        else:
            item.pop("item")
            if item.get("type") == "group":
                return None
    return item


def _all_items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _all_items(item.get("item") or [])


def _conditions(items: list[dict[str, Any]], ctx: _Context) -> None:
    """Conditions on items that are no longer questions go; answers to coded items become codings."""
    by_link = {item["linkId"]: item for item in _all_items(items)}
    for item in by_link.values():
        conditions = []
        for cond in item.get("enableWhen") or []:
            target = by_link.get(cond.get("question"))
            if cond.get("question") in ctx.not_questions or target is None:
                ctx.report.add(
                    NoteKind.DROPPED,
                    NoteCode.CONDITION_DROPPED,
                    item["linkId"],
                    question=cond.get("question"),
                )
                continue
            if target.get("answerOption") and cond.get("operator") != "exists":
                for kind in ("answerString", "answerInteger"):
                    if kind in cond:
                        cond["answerCoding"] = {"code": str(cond.pop(kind))}
            conditions.append(cond)
        if conditions:
            item["enableWhen"] = conditions
            if len(conditions) > 1 and not item.get("enableBehavior"):
                item["enableBehavior"] = "all"
                ctx.report.add(NoteKind.WARNING, NoteCode.BEHAVIOUR_DEFAULTED, item["linkId"])
        else:
            item.pop("enableWhen", None)
            item.pop("enableBehavior", None)


def normalise(data: dict[str, Any], *, default_language: str, report: ImportReport) -> str:
    """Rewrites a published form in place into what `fhir_import.definition` reads; returns its language.
    `data` has passed `repair_minor` and fhir.resources' check of `checkable(data)`."""
    lang = language(data, default_language, report)
    data["language"] = lang
    identity(data, report)
    version(data, report)
    title(data, report)
    contained = {
        str(r.get("id")): r for r in data.get("contained") or [] if r.get("resourceType") == "ValueSet"
    }
    numeric = frozenset(
        str(i.get("linkId")) for i in _all_items(data.get("item") or []) if i.get("type") in NUMERIC_TYPES
    )
    ctx = _Context(report, lang, contained, numeric)
    data.pop("contained", None)  # read above; CareLoop keeps no resources of its own inside
    scope = _variables(data)
    _without(data, {VARIABLE})
    _fill(data, "title", ctx)
    data["item"] = [i for i in (_item(raw, scope, ctx) for raw in data.get("item") or []) if i is not None]
    _conditions(data["item"], ctx)
    if ctx.scores or ctx.missing:
        found = extension(data, DEFINITION)
        extra = load_json(str(found.get("valueString"))) if found is not None else {}
        if ctx.scores:
            extra["scores"] = list(extra.get("scores") or []) + ctx.scores
        if ctx.missing:
            extra["languages"] = [code for code in LANGS if code not in ctx.missing]
        _without(data, {DEFINITION})
        data.setdefault("extension", []).append({"url": DEFINITION, "valueString": dump_json(extra)})
    for missing, count in ctx.missing.items():
        report.add(NoteKind.CHANGED, NoteCode.LANGUAGE_MISSING, lang=missing, count=count, source=lang)
    report.missing_languages = tuple(lang for lang in LANGS if lang in ctx.missing)
    report.language = lang
    return lang
