"""The import report: what came in from a published FHIR form, what was changed, dropped or warned
about and why, and which CareLoop clinical rules are offered for it.

Notes are codes with parameters, not sentences, so that the CLI prints them in English and the staff
page in the editor's language from the same table (`NOTE_TEXTS`, translated in backend/i18n).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class NoteKind(StrEnum):
    CHANGED = "changed"  # taken in, in a different form
    DROPPED = "dropped"  # not taken in
    WARNING = "warning"  # taken in as it is, but not as FHIR says it should be


class NoteCode(StrEnum):
    LANGUAGE_DEFAULTED = "language_defaulted"
    LANGUAGE_NARROWED = "language_narrowed"
    IDENTITY_TAKEN = "identity_taken"
    VERSION_NUMBERED = "version_numbered"
    TITLE_TAKEN = "title_taken"
    LANGUAGE_MISSING = "language_missing"
    SCORE_FROM_OLD_EXTENSION = "score_from_old_extension"
    SCORE_NOT_WHOLE = "score_not_whole"
    OPTIONS_FROM_VALUE_SET = "options_from_value_set"
    OPTION_FROM_VALUE = "option_from_value"
    TOTAL_RECOGNISED = "total_recognised"
    CALCULATION_DISPLAYED = "calculation_displayed"
    OPEN_CHOICE_CLOSED = "open_choice_closed"
    READ_ONLY_DISPLAYED = "read_only_displayed"
    TEXT_FROM_CODE = "text_from_code"
    REPEATS_DROPPED = "repeats_dropped"
    REQUIRED_DROPPED = "required_dropped"
    CONDITION_DROPPED = "condition_dropped"
    BEHAVIOUR_DEFAULTED = "behaviour_defaulted"
    NUMERIC_STRING = "numeric_string"
    VARIABLE_NAME = "variable_name"
    RULES_OFFERED = "rules_offered"
    RULES_ACCEPTED = "rules_accepted"
    INSTRUMENT_UNMATCHED = "instrument_unmatched"
    RULE_WITHOUT_ITEM = "rule_without_item"
    RULE_WITHOUT_OPTION = "rule_without_option"


# English texts; the staff page translates these same strings (they are msgids in backend/i18n).
NOTE_TEXTS: Mapping[NoteCode, str] = {
    NoteCode.LANGUAGE_DEFAULTED: "The form names no language; its texts were read as {lang}.",
    NoteCode.LANGUAGE_NARROWED: "The form's language {given} was read as {lang}.",
    NoteCode.IDENTITY_TAKEN: "The questionnaire id {id} was taken from the form's {source}.",
    NoteCode.VERSION_NUMBERED: (
        "The form's version {given} is not a whole number; imported as version {version}."
    ),
    NoteCode.TITLE_TAKEN: "The form has no title; its {source} was used.",
    NoteCode.LANGUAGE_MISSING: (
        "{count} texts have no {lang} translation: the {source} texts stand in, and the {lang} version is "
        "marked missing until translated."
    ),
    NoteCode.SCORE_FROM_OLD_EXTENSION: "Option scores read from the older iso21090-CO-value extension.",
    NoteCode.SCORE_NOT_WHOLE: (
        "Option {code} has score {score}, which is not a whole number; the option is imported without a "
        "score."
    ),
    NoteCode.OPTIONS_FROM_VALUE_SET: "The answers were taken from the contained value set {value_set}.",
    NoteCode.OPTION_FROM_VALUE: "Answers given as {value_type} were turned into coded options.",
    NoteCode.TOTAL_RECOGNISED: (
        "The calculated item became the CareLoop total {score} of {count} items; it is no longer asked."
    ),
    NoteCode.CALCULATION_DISPLAYED: (
        "The calculation is not a simple sum of item scores; the item is shown as text only and not "
        "calculated ({expression})."
    ),
    NoteCode.OPEN_CHOICE_CLOSED: (
        "Open choice imported as a choice: a typed answer other than the options is not accepted."
    ),
    NoteCode.TEXT_FROM_CODE: "The item has no text; the display of its code is shown instead.",
    NoteCode.READ_ONLY_DISPLAYED: (
        "The item is read-only (the form fills it in); it is shown as text only, never asked."
    ),
    NoteCode.REPEATS_DROPPED: "repeats is only supported on choice questions; the item is asked once.",
    NoteCode.REQUIRED_DROPPED: "A {type} item cannot be required; required was dropped.",
    NoteCode.CONDITION_DROPPED: (
        "The enableWhen on {question} was dropped: that item is no longer a question."
    ),
    NoteCode.BEHAVIOUR_DEFAULTED: "Several enableWhen without enableBehavior: all of them must hold.",
    NoteCode.NUMERIC_STRING: "A valueString holds the number {value}; read as the text {value}.",
    NoteCode.VARIABLE_NAME: (
        "The variable name {name} is not a valid FHIR id (letters, digits, - and .); read anyway."
    ),
    NoteCode.RULES_OFFERED: (
        "This is {instrument} (LOINC {loinc}); CareLoop's clinical rules for it are offered below for the"
        " approver to accept."
    ),
    NoteCode.INSTRUMENT_UNMATCHED: (
        "This names {instrument} (LOINC {loinc}), but not all of its scored items were found by their LOINC "
        "codes; no clinical rules are offered."
    ),
    NoteCode.RULES_ACCEPTED: "CareLoop's clinical rules for {instrument} were added as accepted.",
    NoteCode.RULE_WITHOUT_ITEM: (
        "CareLoop's rule {rule} is not offered: it tests {subject}, which this form lacks."
    ),
    NoteCode.RULE_WITHOUT_OPTION: (
        "CareLoop's rule {rule} is not offered: {item} has no single option scored like {option}."
    ),
}


@dataclass(frozen=True, slots=True)
class Note:
    kind: NoteKind
    code: NoteCode
    where: str  # the linkId, or "questionnaire"
    params: Mapping[str, str] = field(default_factory=dict)

    def text(self, template: str | None = None) -> str:
        return (template or NOTE_TEXTS[self.code]).format(**self.params)


@dataclass(frozen=True, slots=True)
class Offered:
    """One CareLoop clinical rule or severity band offered for an imported instrument."""

    id: str  # the rule id, or "<score>:<band>"
    severity: str
    text: str  # what staff read on the task, in the import's language
    condition: str  # the condition in the imported form's terms ("/44260-8 score > 0")


@dataclass(slots=True)
class ImportReport:
    source_id: str | None = None
    source_url: str | None = None
    source_version: str | None = None
    loinc: str | None = None
    questionnaire_id: str = ""
    version: int = 1
    title: str = ""
    language: str = ""
    missing_languages: tuple[str, ...] = ()
    items_in: int = 0  # items in the file, groups and displays included
    questions: int = 0  # questions a patient answers after import
    scores: tuple[str, ...] = ()
    instrument: str | None = None
    offered: tuple[Offered, ...] = ()
    rules_accepted: bool = False
    notes: list[Note] = field(default_factory=list)

    def add(self, kind: NoteKind, code: NoteCode, where: str = "questionnaire", /, **params: object) -> None:
        note = Note(kind, code, where, {k: str(v) for k, v in params.items()})
        if note not in self.notes:  # one note per item and cause, not one per option
            self.notes.append(note)

    def of(self, kind: NoteKind) -> list[Note]:
        return [n for n in self.notes if n.kind is kind]


def render_text(report: ImportReport) -> str:
    """The report as plain text for the terminal."""
    lines = [
        f"Imported {report.questionnaire_id} v{report.version}: {report.title}",
        f"  source: id={report.source_id or '-'} url={report.source_url or '-'} "
        f"version={report.source_version or '-'} LOINC={report.loinc or '-'}",
        f"  language: {report.language}; missing: {', '.join(report.missing_languages) or 'none'}",
        f"  items in the file: {report.items_in}; questions asked: {report.questions}; "
        f"totals: {', '.join(report.scores) or 'none'}",
    ]
    for kind in NoteKind:
        notes = report.of(kind)
        if notes:
            lines.append(f"{kind.value.capitalize()} ({len(notes)}):")
            lines += [f"  - {n.where}: {n.text()}" for n in notes]
    if report.offered:
        state = "accepted" if report.rules_accepted else "offered, not added (use --accept-rules)"
        lines.append(f"Clinical rules for {report.instrument} ({state}):")
        lines += [f"  - [{o.severity or '-'}] {o.id}: when {o.condition}: {o.text}" for o in report.offered]
    return "\n".join(lines)
