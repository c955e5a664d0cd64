"""FHIR R4B import and export of questionnaires and responses, checked against fhir.resources' models.

FHIR version: R4B (4.3.0), from `fhir.resources.R4B`. fhir.resources >= 7 makes R5 its default package
and has no plain R4 package; R4B is the closest, and its Questionnaire and QuestionnaireResponse are
R4's. fhir.resources is imported inside the functions so that importing the engine stays cheap.

One Questionnaire resource carries all three languages: texts in `lang` (also the resource's
`language`), the other two as the standard translation extension on each `_text`, `_title` and
`_display`. Scores, bands, rules, kind, intro and outro have no FHIR element and travel as JSON in a
CareLoop extension, so `from_fhir_questionnaire(to_fhir_questionnaire(q, lang)) == q`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from questionnaires.fhir_common import FHIR_VERSION, IDENTIFIER_SYSTEM, TRANSLATION, check_lang, put_texts
from questionnaires.fhir_export import (
    canonical,
    codings,
    definition_extension,
    fhir_item,
    response_items,
    score_item,
)
from questionnaires.fhir_import import definition
from questionnaires.fhir_instruments import INSTRUMENTS, accept, offer
from questionnaires.fhir_published import normalise
from questionnaires.fhir_report import ImportReport, NoteCode, NoteKind
from questionnaires.fhir_source import ImportRefused, checkable, questionnaire_of, read_json, repair_minor
from questionnaires.loader import DefinitionError, parse_questionnaire
from questionnaires.logic import prune
from questionnaires.model import AnswerValue, Kind, Questionnaire
from questionnaires.values import BadStoredValue

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "FHIR_VERSION",
    "ImportRefused",
    "Imported",
    "ResponseStatus",
    "from_fhir_questionnaire",
    "import_published",
    "to_fhir_questionnaire",
    "to_fhir_response",
]

MAX_REPORTED = 5


class ResponseStatus(StrEnum):
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    AMENDED = "amended"
    ENTERED_IN_ERROR = "entered-in-error"
    STOPPED = "stopped"


def _where(data: Any, loc: Sequence[int | str]) -> tuple[str, str]:
    """(the item an error is in, named by linkId where it has one; the field path inside it)."""
    label, node, index = "questionnaire", data, 0
    rest: list[str] = []
    while index < len(loc):
        key = loc[index]
        step = loc[index + 1] if index + 1 < len(loc) else None
        items = node.get("item") if isinstance(node, Mapping) and key == "item" else None
        if isinstance(step, int) and isinstance(items, list) and step < len(items):
            node = items[step]
            link = node.get("linkId") if isinstance(node, Mapping) else None
            if isinstance(link, str) and link:
                label = link
            else:
                text = node.get("text") if isinstance(node, Mapping) else None
                about = f" (text {text[:40]!r})" if isinstance(text, str) else ""
                label = f"item {step + 1} under {label}{about}"
            rest, index = [], index + 2
            continue
        name = str(key)
        if name != "root":  # pydantic's wrapper of primitive extensions, not a FHIR element
            rest.append("_" + name[: -len("__ext")] if name.endswith("__ext") else name)
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        index += 1
    return label, ".".join(rest)


def readable(data: Any, exc: ValidationError) -> str:
    """fhir.resources' (pydantic's) errors as "pain: enableWhen.0: <what is wrong>", a few at most."""
    lines = []
    for error in exc.errors():
        label, field = _where(data, error["loc"])
        lines.append(f"{label}: {field + ': ' if field else ''}{error['msg']}")
    more = f" (and {len(lines) - MAX_REPORTED} more)" if len(lines) > MAX_REPORTED else ""
    return "; ".join(lines[:MAX_REPORTED]) + more


def _model_class(resource_type: str) -> Any:
    if resource_type == "Questionnaire":
        from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire

        return FhirQuestionnaire
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    return QuestionnaireResponse


def _validated(data: Mapping[str, Any], error: type[ValueError]) -> dict[str, Any]:
    """The resource after a pass through its fhir.resources model, as plain JSON types."""
    from pydantic import ValidationError

    try:
        model = _model_class(str(data["resourceType"])).model_validate(data)
    except ValidationError as exc:
        raise error(readable(data, exc)) from None
    result: dict[str, Any] = json.loads(model.model_dump_json())
    return result


def _link_ids(items: list[dict[str, Any]]) -> Iterator[str]:
    for item in items:
        yield item["linkId"]
        yield from _link_ids(item.get("item") or [])


def _drop_translations(node: Any, languages: set[str]) -> None:
    if isinstance(node, list):
        for value in node:
            _drop_translations(value, languages)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key.startswith("_") and isinstance(value, dict) and isinstance(value.get("extension"), list):
            value["extension"] = [e for e in value["extension"] if _translation_lang(e) not in languages]
        _drop_translations(value, languages)


def _translation_lang(ext: Mapping[str, Any]) -> str | None:
    if ext.get("url") != TRANSLATION:
        return None
    return next((str(p.get("valueCode")) for p in ext.get("extension") or [] if p.get("url") == "lang"), None)


def to_fhir_questionnaire(q: Questionnaire, lang: str) -> dict[str, Any]:
    """A FHIR R4B Questionnaire with texts in `lang` and translations into the other two languages.

    Only the languages the questionnaire is written in are exported: a stand-in text is not a
    translation (and `lang`, when not written, gives way to the first written language)."""
    check_lang(lang)
    lang = q.language_for(lang)
    data: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "language": lang,
        "url": canonical(q),
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": q.id}],
        "version": str(q.version),
        "status": "active",
        "subjectType": ["Practitioner"] if q.kind is Kind.STAFF else ["Patient"],
    }
    if q.codes:
        data["code"] = codings(q.codes)
    put_texts(data, "title", q.title, lang)
    if (ext := definition_extension(q)) is not None:
        data["extension"] = [ext]
    data["item"] = [fhir_item(q, item, lang) for item in q.items]
    data["item"] += [score_item(q, score, lang) for score in q.scores]
    if q.missing_languages:
        _drop_translations(data, set(q.missing_languages))
    seen: set[str] = set()
    for link in _link_ids(data["item"]):
        if link in seen:  # a hint, scale label or blank named like another item
            raise DefinitionError(f"{link}: the linkId would be used twice in FHIR; rename the item or blank")
        seen.add(link)
    return _validated(data, ValueError)


def from_fhir_questionnaire(data: Mapping[str, Any]) -> Questionnaire:
    """The model of a FHIR R4B Questionnaire; DefinitionError names the item (linkId) and the problem."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "Questionnaire":
        got = data.get("resourceType") if isinstance(data, Mapping) else type(data).__name__
        raise DefinitionError(f"questionnaire: expected a FHIR Questionnaire, got {got!r}")
    return parse_questionnaire(definition(_validated(data, DefinitionError)))


def _count(items: Any) -> int:
    listed = items if isinstance(items, list) else []
    return sum(1 + _count(i.get("item")) for i in listed if isinstance(i, Mapping))


@dataclass(frozen=True, slots=True)
class Imported:
    definition: dict[str, Any]  # what the loader and the publish path read
    questionnaire: Questionnaire
    report: ImportReport


def import_published(
    raw: bytes | str,
    *,
    default_language: str,
    max_bytes: int,
    references: Mapping[str, Questionnaire] | None = None,
    accept_rules: bool = False,
) -> Imported:
    """A published FHIR Questionnaire file as a CareLoop definition and the report of what happened.

    ImportRefused for a file that is too large, not JSON or not a Questionnaire; DefinitionError (naming
    the item) for one CareLoop cannot ask. `references` are CareLoop's authored instruments by id, whose
    clinical rules are offered for a recognised LOINC form and added only with `accept_rules`."""
    check_lang(default_language)
    data = questionnaire_of(read_json(raw, max_bytes=max_bytes))
    report = ImportReport(items_in=_count(data.get("item")))
    repair_minor(data, report)
    _validated(checkable(data), DefinitionError)  # well-formed FHIR before anything is rewritten
    normalise(data, default_language=default_language, report=report)
    result = definition(_validated(data, DefinitionError))
    instrument = INSTRUMENTS.get(report.loinc or "")
    reference = (references or {}).get(instrument.reference) if instrument is not None else None
    chosen = offer(result, reference, instrument, report) if instrument and reference else None
    if instrument is not None and reference is not None and chosen is None:
        report.add(
            NoteKind.WARNING,
            NoteCode.INSTRUMENT_UNMATCHED,
            instrument=instrument.name,
            loinc=instrument.loinc,
        )
    if instrument is not None and chosen is not None:
        report.instrument, report.offered = instrument.name, chosen.offered
        report.add(
            NoteKind.WARNING, NoteCode.RULES_OFFERED, instrument=instrument.name, loinc=instrument.loinc
        )
        if accept_rules:
            accept(result, chosen)
            report.rules_accepted = True
            report.add(NoteKind.CHANGED, NoteCode.RULES_ACCEPTED, instrument=instrument.name)
    q = parse_questionnaire(result)
    report.questionnaire_id, report.version, report.title = q.id, q.version, q.title[report.language]
    report.questions = len(q.answerable())
    report.scores = tuple(s.id for s in q.scores)
    return Imported(result, q, report)


def to_fhir_response(
    q: Questionnaire,
    answers: Mapping[str, AnswerValue],
    *,
    lang: str,
    subject_ref: str,
    authored: datetime,
    status: ResponseStatus | str = ResponseStatus.COMPLETED,
) -> dict[str, Any]:
    """A FHIR R4B QuestionnaireResponse of the answers in effect (answers that a later change of an
    earlier answer disabled are left out, as the engine does). BadStoredValue when an answer does not
    fit its item."""
    check_lang(lang)
    if authored.tzinfo is None or authored.utcoffset() is None:
        raise ValueError("authored must be timezone-aware")
    known = {item.id for item in q.answerable()}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise BadStoredValue(f"{unknown[0]}: {q.id} has no such question")
    data: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "language": lang,
        "questionnaire": f"{canonical(q)}|{q.version}",
        "status": ResponseStatus(status).value,
        "subject": {"reference": subject_ref},
        "authored": authored.isoformat(),
    }
    items = response_items(q.items, prune(q, answers), lang)
    if items:
        data["item"] = items
    return _validated(data, ValueError)
