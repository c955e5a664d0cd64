"""The outside of a published FHIR form: the file (size, JSON, a Questionnaire or a Bundle of one), minor
spec violations, and the resource's header (language, identity, version, title), each change reported."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from questionnaires.fhir_calculated import VARIABLE
from questionnaires.fhir_common import IDENTIFIER_SYSTEM
from questionnaires.fhir_report import ImportReport, NoteCode, NoteKind
from questionnaires.model import LANGS

LOINC = "http://loinc.org"
_ID_NAME = re.compile(r"^[A-Za-z0-9\-.]+$")  # FHIR's id type, which Expression.name is


class ImportRefused(ValueError):
    """The file cannot be imported at all; the message says why."""


def read_json(raw: bytes | str, *, max_bytes: int) -> Any:
    """The parsed file; ImportRefused when too large or not JSON."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise ImportRefused(f"the file is {size} bytes; the largest accepted is {max_bytes} bytes")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportRefused(f"the file is not JSON ({exc})") from None


def questionnaire_of(data: Any) -> dict[str, Any]:
    """The Questionnaire in the file (also the only one in a Bundle); ImportRefused otherwise."""
    if isinstance(data, Mapping) and data.get("resourceType") == "Bundle":
        found = [
            e.get("resource")
            for e in data.get("entry") or []
            if isinstance(e, Mapping) and (e.get("resource") or {}).get("resourceType") == "Questionnaire"
        ]
        if len(found) == 1:
            data = found[0]
        else:
            raise ImportRefused(f"the Bundle holds {len(found)} Questionnaires; import them one at a time")
    if not isinstance(data, Mapping) or data.get("resourceType") != "Questionnaire":
        got = data.get("resourceType") if isinstance(data, Mapping) else type(data).__name__
        raise ImportRefused(f"expected a FHIR Questionnaire, got {got!r}")
    return copy.deepcopy(dict(data))


def _elements(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _elements(value)
    elif isinstance(node, list):
        for value in node:
            yield from _elements(value)


def repair_minor(data: dict[str, Any], report: ImportReport) -> None:
    """Spec violations common in published forms, read anyway and reported."""
    for element in _elements(data):
        value = element.get("valueString")
        if isinstance(value, int | float) and not isinstance(value, bool):
            element["valueString"] = str(value)
            report.add(NoteKind.WARNING, NoteCode.NUMERIC_STRING, value=value)
        expression = element.get("valueExpression")
        if element.get("url") == VARIABLE and isinstance(expression, Mapping):
            name = str(expression.get("name") or "")
            if not _ID_NAME.match(name):
                report.add(NoteKind.WARNING, NoteCode.VARIABLE_NAME, name=name)


def narrowed(given: str) -> str | None:
    """CareLoop's language for a language tag ("en-US" -> en, "zh" -> zh-CN), or None."""
    folded = given.casefold()
    exact = {code.casefold(): code for code in LANGS}
    if folded in exact:
        return exact[folded]
    primary = folded.split("-")[0]
    return next((code for code in LANGS if code.casefold().split("-")[0] == primary), None)


def language(data: dict[str, Any], default: str, report: ImportReport) -> str:
    given = data.get("language")
    if not given:
        report.add(NoteKind.CHANGED, NoteCode.LANGUAGE_DEFAULTED, lang=default)
        return default
    lang = narrowed(str(given))
    if lang is None:
        raise ImportRefused(
            f"the form is in {given!r}; CareLoop serves {', '.join(LANGS)} (give the language to import as)"
        )
    if lang != given:
        report.add(NoteKind.CHANGED, NoteCode.LANGUAGE_NARROWED, given=given, lang=lang)
    return lang


def loinc_code(data: Mapping[str, Any]) -> str | None:
    for coding in data.get("code") or []:
        if isinstance(coding, Mapping) and coding.get("system") == LOINC and coding.get("code"):
            return str(coding["code"])
    return None


def _slug(raw: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", raw.casefold()).strip("_")[:64]


def identity(data: dict[str, Any], report: ImportReport) -> None:
    report.source_id, report.source_url = data.get("id"), data.get("url")
    report.loinc = loinc_code(data)
    for identifier in data.get("identifier") or []:
        if identifier.get("system") == IDENTIFIER_SYSTEM and identifier.get("value"):
            return
    url = str(data.get("url") or "").split("|")[0].rstrip("/").rsplit("/", 1)[-1]
    for source, raw in (("id", data.get("id")), ("url", url), ("LOINC code", report.loinc)):
        qid = _slug(str(raw or ""))
        if qid:
            qid = f"loinc_{qid}" if source == "LOINC code" else qid
            data.setdefault("identifier", []).append({"system": IDENTIFIER_SYSTEM, "value": qid})
            report.add(NoteKind.CHANGED, NoteCode.IDENTITY_TAKEN, id=qid, source=source)
            return
    raise ImportRefused("the form has no id, url or LOINC code to name the questionnaire by")


def version(data: dict[str, Any], report: ImportReport) -> None:
    given = data.get("version")
    report.source_version = None if given is None else str(given)
    if given is not None and str(given).isdigit() and int(given) > 0:
        return
    data["version"] = "1"
    report.add(NoteKind.CHANGED, NoteCode.VERSION_NUMBERED, given=given or "(none)", version=1)


def title(data: dict[str, Any], report: ImportReport) -> None:
    if data.get("title"):
        return
    code: Mapping[str, Any] = next(iter(data.get("code") or []), {})
    for source, raw in (("name", data.get("name")), ("code", code.get("display"))):
        if raw:
            data["title"] = str(raw)
            report.add(NoteKind.CHANGED, NoteCode.TITLE_TAKEN, source=source)
            return
    data["title"] = report.questionnaire_id or str(data.get("id") or "")
    report.add(NoteKind.CHANGED, NoteCode.TITLE_TAKEN, source="id")


def checkable(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy fhir.resources can check the structure of: variable names as FHIR ids. CareLoop reads the
    names as written (a warning says so), but a form must be well-formed before it is rewritten."""
    copied = copy.deepcopy(dict(data))
    for element in _elements(copied):
        expression = element.get("valueExpression")
        if element.get("url") == VARIABLE and isinstance(expression, dict) and expression.get("name"):
            expression["name"] = re.sub(r"[^A-Za-z0-9\-.]", "-", str(expression["name"]))
    return copied
