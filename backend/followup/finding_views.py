"""A completed response as a nurse triages it: each finding in words, with the questions and answers that
raised it, then every answer, in the reader's language. Pure: the caller loads the rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from questionnaires.model import AnswerValue, Item, Questionnaire, Severity, Texts

SAFETY_CODE = "safety:"  # a finding raised by the safety rules on a free-text answer, not by a rule


@dataclass(frozen=True, slots=True)
class AnswerLine:
    item_id: str
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class FindingLine:
    code: str
    severity: Severity
    # what the rule says staff should read; None for a finding with no text of its own (a safety hit,
    # which the page names through its catalogue)
    text: str | None
    answers: tuple[AnswerLine, ...]


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """What a Finding row holds that the view needs."""

    code: str
    severity: str
    items: Sequence[str]


def in_language(texts: Texts | None, lang: str) -> str:
    """The text in `lang`, else English, else any language it has."""
    if not texts:
        return ""
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


def answer_text(item: Item, value: AnswerValue | None, lang: str) -> str:
    """An answer as the patient gave it: option labels, numbers with their unit, dates as dates."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, str) and item.options:
        option = item.option(value)
        return in_language(option.text, lang) if option else value
    if isinstance(value, (list, tuple)):
        return "; ".join(answer_text(item, part, lang) for part in value)
    if isinstance(value, (int, Decimal)):
        unit = in_language(item.unit, lang)
        return f"{value} {unit}".strip()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        blanks = {blank.id: in_language(blank.text, lang) for blank in item.blanks}
        return "; ".join(f"{blanks.get(key, key)}: {part}" for key, part in value.items())
    return str(value)


def finding_texts(q: Questionnaire, lang: str) -> dict[str, str]:
    """What each finding code of `q` says to staff: a rule's text, or a score band's ("<score>:<band>")."""
    texts = {rule.id: in_language(rule.text, lang) for rule in q.rules}
    for score in q.scores:
        for band in score.bands:
            texts[f"{score.id}:{band.code}"] = (
                f"{in_language(score.text, lang)}: {in_language(band.text, lang)}"
            )
    return texts


def describe(
    q: Questionnaire,
    answers: Mapping[str, AnswerValue],
    stored: Sequence[StoredFinding],
    lang: str,
) -> tuple[list[FindingLine], list[AnswerLine]]:
    """The findings (most severe first) and every answer, in question order."""
    items = {item.id: item for item in q.walk()}
    texts = finding_texts(q, lang)

    def line(item_id: str) -> AnswerLine | None:
        item = items.get(item_id)
        if item is None:
            return None
        return AnswerLine(
            item_id, in_language(item.text, lang), answer_text(item, answers.get(item_id), lang)
        )

    order = list(Severity)
    findings = [
        FindingLine(
            code=row.code,
            severity=Severity(row.severity),
            text=None if row.code.startswith(SAFETY_CODE) else texts.get(row.code) or row.code,
            answers=tuple(a for a in (line(i) for i in row.items) if a is not None),
        )
        for row in stored
    ]
    findings.sort(key=lambda f: -order.index(f.severity))  # Severity runs least urgent first
    every = [a for a in (line(item.id) for item in q.answerable() if item.id in answers) if a is not None]
    return findings, every


@dataclass(frozen=True, slots=True)
class ResponseView:
    questionnaire: str  # its title in the reader's language
    findings: list[FindingLine]
    answers: list[AnswerLine]
