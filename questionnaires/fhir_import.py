"""A FHIR R4B Questionnaire (already checked against the FHIR model) back into an authored definition.

The result is the mapping the YAML loader reads, so `parse_questionnaire` applies every rule authored
files obey (three languages, option codes, ranges, branch references) to imported ones too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from questionnaires.fhir_common import (
    DEFINITION,
    DIMENSION,
    DISPLAY_LABELS,
    ENABLE_OPERATOR,
    FHIR_TYPES,
    IDENTIFIER_SYSTEM,
    ITEM_TYPE,
    ITEM_WEIGHT,
    LABEL_CONTROLS,
    MARKED_TYPES,
    MAX_VALUE,
    MIN_VALUE,
    OPTION_CODE,
    OPTION_WORDS,
    ORDINAL_VALUE,
    SCORE_ITEM,
    STATISTICS,
    UNIT,
    decimal_of,
    extension,
    item_controls,
    load_json,
    read_texts,
)
from questionnaires.loader import DefinitionError
from questionnaires.model import LANGS, ItemType, Operator

FHIR_ITEM_TYPES = {
    "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time", "string", "text",
    "url", "choice", "open-choice", "attachment", "reference", "quantity",
}  # fmt: skip
OPERATORS = {"=", "!=", ">", ">=", "<", "<=", "exists"}
SUPPORTED_ANSWERS = (
    "answerBoolean",
    "answerCoding",
    "answerInteger",
    "answerDecimal",
    "answerDate",
    "answerString",
)


def _json_extension(where: str, element: Mapping[str, Any], url: str) -> Any:
    found = extension(element, url)
    if found is None:
        return None
    try:
        return load_json(str(found.get("valueString")))
    except ValueError as exc:
        raise DefinitionError(f"{where}: extension {url} does not hold valid JSON") from exc


def _item_type(link: str, raw: Mapping[str, Any]) -> ItemType:
    fhir_type = raw.get("type")
    if fhir_type not in FHIR_ITEM_TYPES:
        raise DefinitionError(f"{link}: unknown item type {fhir_type!r}")
    marked = extension(raw, ITEM_TYPE)
    if marked is not None:
        try:
            item_type = ItemType(str(marked.get("valueCode")))
        except ValueError as exc:
            raise DefinitionError(f"{link}: unknown CareLoop item type {marked.get('valueCode')!r}") from exc
        if item_type not in MARKED_TYPES or FHIR_TYPES[item_type] != fhir_type:
            raise DefinitionError(
                f"{link}: CareLoop type {item_type.value} does not fit FHIR type {fhir_type}"
            )
        return item_type
    simple = {
        "decimal": ItemType.DECIMAL,
        "date": ItemType.DATE,
        "string": ItemType.SHORT_TEXT,
        "text": ItemType.LONG_TEXT,
        "display": ItemType.DISPLAY,
        "group": ItemType.GROUP,
    }
    if fhir_type not in simple and fhir_type not in {"choice", "integer"}:
        raise DefinitionError(
            f"{link}: item type {fhir_type} is not supported (CareLoop reads "
            f"{', '.join(sorted(set(FHIR_TYPES.values())))})"
        )
    if raw.get("repeats") and fhir_type != "choice":
        raise DefinitionError(f"{link}: repeats is only supported on choice items")
    controls = item_controls(raw)
    if fhir_type == "choice":
        if raw.get("repeats"):
            return ItemType.MULTIPLE_CHOICE
        return ItemType.DROPDOWN if "drop-down" in controls else ItemType.SINGLE_CHOICE
    if fhir_type == "integer":
        return ItemType.SCALE if "slider" in controls else ItemType.INTEGER
    return simple[fhir_type]


def _condition(link: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    where = f"{link}/enableWhen {raw.get('question')!r}"
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise DefinitionError(f"{where}: unknown operator {operator!r}")
    marked = extension(raw, ENABLE_OPERATOR)
    if marked is not None:
        if marked.get("valueCode") != Operator.CONTAINS.value or operator != "=":
            raise DefinitionError(
                f"{where}: operator extension {marked.get('valueCode')!r} does not fit {operator}"
            )
        operator = Operator.CONTAINS.value
    kind = next((key for key in raw if key.startswith("answer") and not key.startswith("answer_")), None)
    if kind not in SUPPORTED_ANSWERS:
        raise DefinitionError(f"{where}: {kind} is not supported (use {', '.join(SUPPORTED_ANSWERS)})")
    value: Any = raw[kind]
    if kind == "answerCoding":
        if not value.get("code"):
            raise DefinitionError(f"{where}: answerCoding has no code")
        value = str(value["code"])
    elif kind == "answerDecimal":
        value = decimal_of(value)
    elif kind == "answerDate":
        try:
            value = value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError as exc:
            raise DefinitionError(f"{where}: {value!r} is not a full date") from exc
    return {"item": raw.get("question"), "op": operator, "value": value}


def _option(link: str, raw: Mapping[str, Any], lang: str) -> dict[str, Any]:
    coding = raw.get("valueCoding")
    if not isinstance(coding, Mapping) or not coding.get("code"):
        raise DefinitionError(f"{link}: each answerOption needs a valueCoding with a code")
    marked = extension(raw, OPTION_CODE)
    code = str(marked.get("valueCode") if marked is not None else coding["code"])
    out: dict[str, Any] = {"code": code, "text": read_texts(coding, "display", lang)}
    if coding.get("system"):
        out["coding"] = codes([coding])[0]
    found = [extension(raw, url) or {} for url in (ITEM_WEIGHT, ORDINAL_VALUE)]
    weights = {str(decimal_of(e["valueDecimal"])) for e in found if e.get("valueDecimal") is not None}
    if len(weights) > 1:
        raise DefinitionError(f"{link}/{code}: ordinalValue and itemWeight disagree")
    if weights:
        score = decimal_of(weights.pop())
        if score != score.to_integral_value():
            raise DefinitionError(f"{link}/{code}: option score {score} is not a whole number")
        out["score"] = int(score)
    words = _json_extension(f"{link}/{code}", raw, OPTION_WORDS)
    if words is not None:
        out["words"] = words
    return out


def codes(codings: Any) -> list[dict[str, Any]]:
    """Standard codings as the loader reads them (system, code, display in the resource's language)."""
    out = []
    for coding in codings or []:
        if isinstance(coding, Mapping) and coding.get("system") and coding.get("code"):
            entry = {"system": str(coding["system"]), "code": str(coding["code"])}
            if coding.get("display"):
                entry["display"] = str(coding["display"])
            out.append(entry)
    return out


def _bound(element: Mapping[str, Any], url: str) -> Any:
    found = extension(element, url) or {}
    raw = found.get("valueInteger", found.get("valueDecimal"))
    return None if raw is None else decimal_of(raw)


def _children(link: str, item_type: ItemType, raw: Mapping[str, Any], lang: str, out: dict[str, Any]) -> None:
    children = []
    for child in raw.get("item") or []:
        controls = item_controls(child) & set(LABEL_CONTROLS)
        if child.get("type") == "display" and controls:
            out[LABEL_CONTROLS[controls.pop()]] = read_texts(child, "text", lang)
        else:
            children.append(child)
    if item_type is not ItemType.MULTI_BLANK:
        out["items"] = [item_definition(child, lang) for child in children if not _score_item(child)]
        return
    blanks = []
    for child in children:
        child_link = str(child.get("linkId"))
        if child.get("type") != "string" or not child_link.startswith(link + "."):
            raise DefinitionError(
                f"{link}: a multi-blank holds string items named {link}.<blank>, not {child_link}"
            )
        blanks.append({"id": child_link[len(link) + 1 :], "text": read_texts(child, "text", lang)})
    out["blanks"] = blanks


def _score_item(raw: Mapping[str, Any]) -> bool:
    """A total as exported for other systems; the score itself is in the definition extension."""
    return extension(raw, SCORE_ITEM) is not None


def item_definition(raw: Mapping[str, Any], lang: str) -> dict[str, Any]:
    link = str(raw["linkId"])
    item_type = _item_type(link, raw)
    if raw.get("answerValueSet"):
        raise DefinitionError(f"{link}: answerValueSet is not supported; list the answers as answerOption")
    conditions = raw.get("enableWhen") or []
    behavior = raw.get("enableBehavior")
    if len(conditions) > 1 and behavior is None:
        raise DefinitionError(f"{link}: several enableWhen need an enableBehavior (all or any)")
    out: dict[str, Any] = {
        "id": link,
        "type": item_type.value,
        "text": read_texts(raw, "text", lang),
        "required": bool(raw.get("required", False)),
        "options": [_option(link, o, lang) for o in raw.get("answerOption") or []],
        "min": _bound(raw, MIN_VALUE),
        "max": _bound(raw, MAX_VALUE),
        "enable_when": [_condition(link, c) for c in conditions],
        "enable_behavior": behavior or "all",
    }
    unit = extension(raw, UNIT)
    if unit is not None:
        out["unit"] = read_texts(unit.get("valueCoding") or {}, "display", lang)
    statistics = extension(raw, STATISTICS)
    if statistics is not None:
        out["statistics"] = bool(statistics.get("valueBoolean"))
    dimension = extension(raw, DIMENSION)
    if dimension is not None:
        out["dimension"] = dimension.get("valueString")
    if raw.get("code"):
        out["code"] = codes(raw.get("code"))
    labels = _json_extension(link, raw, DISPLAY_LABELS)
    if isinstance(labels, Mapping):
        out |= {key: labels.get(key) for key in ("hint", "min_label", "max_label") if key in labels}
    _children(link, item_type, raw, lang, out)
    return out


def _questionnaire_id(data: Mapping[str, Any]) -> str:
    for identifier in data.get("identifier") or []:
        if identifier.get("system") == IDENTIFIER_SYSTEM and identifier.get("value"):
            return str(identifier["value"])
    url = str(data.get("url") or "")
    return url.rstrip("/").rsplit("/", 1)[-1].split("|")[0] if url else ""


def _walk(items: list[dict[str, Any]]) -> Any:
    for item in items:
        yield item
        yield from _walk(item.get("items") or [])


def _own_codes(out: dict[str, Any]) -> None:
    """Conditions name an option by its standard code where it has one; CareLoop's rules use its own."""
    own = {
        item["id"]: {o["coding"]["code"]: o["code"] for o in item["options"] if o.get("coding")}
        for item in _walk(out["items"])
    }
    for item in _walk(out["items"]):
        for cond in item["enable_when"]:
            cond["value"] = own.get(cond["item"], {}).get(cond["value"], cond["value"])


def definition(data: Mapping[str, Any]) -> dict[str, Any]:
    """The authored-definition mapping for a validated FHIR Questionnaire."""
    lang = data.get("language")
    if lang not in LANGS:
        raise DefinitionError(f"questionnaire: language must be one of {', '.join(LANGS)}, not {lang!r}")
    qid = _questionnaire_id(data)
    if not qid:
        raise DefinitionError("questionnaire: no CareLoop identifier and no url to take the id from")
    extra = _json_extension(qid, data, DEFINITION) or {}
    if not isinstance(extra, Mapping):
        raise DefinitionError(f"{qid}: the CareLoop definition extension must hold a JSON object")
    version = str(data.get("version") or "")
    out = {
        "id": qid,
        "version": int(version) if version.isdigit() else version,
        "kind": extra.get("kind", "follow_up"),
        "title": read_texts(data, "title", lang),
        "intro": extra.get("intro"),
        "outro": extra.get("outro"),
        "items": [item_definition(raw, lang) for raw in data.get("item") or [] if not _score_item(raw)],
        "scores": extra.get("scores") or [],
        "rules": extra.get("rules") or [],
    } | ({"code": codes(data["code"])} if data.get("code") else {})
    if extra.get("languages"):
        out["languages"] = list(extra["languages"])
    _own_codes(out)
    return out
