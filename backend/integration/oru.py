"""A completed follow-up response as an HL7 v2.5.1 ORU^R01 (unsolicited observation result). Pure.

One OBR for the questionnaire, then one OBX per answer, per score (and its band) and per finding, in
that order. The patient is named by the identifiers the hospital sent (PID-3 with their assigning
authorities and types, as received), the visit by its PV1-19, so the receiving system files the result
against its own records without a lookup on names. Text is escaped for the standard separators, which
MSH-2 declares; the bytes are written in the character set MSH-18 names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from backend.integration.ack import escape
from backend.integration.facts import Identifier

CODE_SYSTEM = "CARELOOP"  # OBR-4 / OBX-3 coding system: local codes (questionnaire and item ids)
SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}


@dataclass(frozen=True, slots=True)
class AnswerFact:
    """One answer: OBX-2 value type (NM, ST, TX, DT, CWE), the question's id and text, the values."""

    item_id: str
    question: str
    value_type: str
    values: tuple[tuple[str, str], ...]  # (code or value, display text); several for multiple choice
    unit: str = ""
    standard: tuple[str, str] = ("", "")  # the question's LOINC code and name, when the item has one


@dataclass(frozen=True, slots=True)
class ScoreFact:
    score_id: str
    text: str
    value: int
    band: str = ""  # band code
    band_text: str = ""


@dataclass(frozen=True, slots=True)
class FindingFact:
    code: str
    severity: str  # questionnaires.model.Severity value
    text: str
    items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResultFacts:
    """What is written back for one completed response (loaded by `results.py`, rendered here)."""

    response_id: int
    questionnaire_id: str
    questionnaire_version: int
    title: str
    language: str
    completed_at: datetime
    identifiers: tuple[Identifier, ...]  # as the hospital sent them; CareLoop's MRN when it sent none
    name: str
    birth_date: date | None
    sex: str
    visit: Identifier | None
    inpatient: bool
    answers: tuple[AnswerFact, ...] = ()
    scores: tuple[ScoreFact, ...] = ()
    findings: tuple[FindingFact, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def _cx(identifier: Identifier) -> str:
    return f"{escape(identifier.value)}^^^{escape(identifier.authority)}^{escape(identifier.type_code)}"


def _obx(
    index: int,
    value_type: str,
    code: str,
    text: str,
    value: str,
    *,
    unit: str = "",
    flag: str = "",
    at: str,
    standard: tuple[str, str] = ("", ""),
) -> str:
    identifier = f"{escape(code)}^{escape(text)}^{CODE_SYSTEM}"
    if standard[0]:  # CWE-4..6, the alternate identifier: what other systems read
        identifier += f"^{escape(standard[0])}^{escape(standard[1])}^LN"
    # OBX-1 set id, -2 value type, -3 identifier, -5 value, -6 units, -8 abnormal flag, -11 status, -14 time
    fields = [str(index), value_type, identifier, "", value, escape(unit), "", flag, "", "", "F", "", "", at]
    return "|".join(["OBX", *fields])


# A finding's severity as an OBX-8 abnormal flag (HL7 table 0078): "AA" critically abnormal
FLAG = {"emergency": "AA", "urgent": "AA", "high": "A", "normal": "A", "low": "A"}


def build_oru(
    facts: ResultFacts,
    *,
    control_id: str,
    charset: str,
    receiver: tuple[str, str],
    sender: tuple[str, str] = ("CARELOOP", "CARELOOP"),
    now: datetime,
) -> str:
    """The message, segments ended by `\\r`; `charset` is written in MSH-18 as configured."""
    at = _ts(facts.completed_at)
    msh = "|".join(
        ["MSH", "^~\\&", escape(sender[0]), escape(sender[1]), escape(receiver[0]), escape(receiver[1]),
         _ts(now), "", "ORU^R01^ORU_R01", escape(control_id), "P", "2.5.1", "", "", "", "", "",
         escape(charset)]
    )  # fmt: skip
    pid = "|".join(
        ["PID", "1", "", "~".join(_cx(i) for i in facts.identifiers), "", escape(facts.name), "",
         facts.birth_date.strftime("%Y%m%d") if facts.birth_date else "", SEX.get(facts.sex, "U")]
    )  # fmt: skip
    segments = [msh, pid]
    if facts.visit is not None:
        pv1 = ["PV1", "1", "I" if facts.inpatient else "O"] + [""] * 16
        pv1.append(f"{escape(facts.visit.value)}^^^{escape(facts.visit.authority)}")
        segments.append("|".join(pv1))
    filler = f"R{facts.response_id}^{CODE_SYSTEM}"
    obr = ["OBR", "1", "", filler, f"{escape(facts.questionnaire_id)}^{escape(facts.title)}^{CODE_SYSTEM}",
           "", "", at] + [""] * 14 + [at, "", "OTH", "F"]  # fmt: skip
    segments.append("|".join(obr))
    index = 0
    for answer in facts.answers:
        index += 1
        if answer.value_type == "CWE":
            value = "~".join(f"{escape(code)}^{escape(text)}^{CODE_SYSTEM}" for code, text in answer.values)
        else:
            value = "~".join(escape(v) for v, _ in answer.values)
        segments.append(_obx(index, answer.value_type, answer.item_id, answer.question, value,
                             unit=answer.unit, at=at, standard=answer.standard))  # fmt: skip
    for score in facts.scores:
        index += 1
        segments.append(_obx(index, "NM", f"score.{score.score_id}", score.text, str(score.value), at=at))
        if score.band:
            index += 1
            band = f"{escape(score.band)}^{escape(score.band_text)}^{CODE_SYSTEM}"
            segments.append(_obx(index, "CWE", f"band.{score.score_id}", score.text, band, at=at))
    for finding in facts.findings:
        index += 1
        value = f"{escape(finding.code)}^{escape(finding.text)}^{CODE_SYSTEM}"
        segments.append(
            _obx(
                index, "CWE", "finding", finding.severity, value, flag=FLAG.get(finding.severity, "A"), at=at
            )
        )
    return "\r".join(segments) + "\r"
