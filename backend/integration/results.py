"""Follow-up results written back to the hospital: queued with the completed response, delivered by a
periodic job with retries and backoff, each outcome recorded; staff retry a failed one.

A delivery row is written in the transaction that completes the response (one per configured
endpoint), so a result is never forgotten between completion and sending. The periodic job claims due
rows, builds the message from the stored response (nothing is cached on the row: it holds no patient
data), sends outside any transaction, and records the outcome: delivered; a refusal (AE/AR, HTTP 4xx)
failed at once with the receiver's reason; anything else tried again after 1, 2, 4, ... times
`results_retry_seconds` (at most 6 h) until `results_max_attempts`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.followup.catalog import definition_of
from backend.integration.facts import Identifier
from backend.integration.hl7_parse import Unparseable, codec_for
from backend.integration.oru import AnswerFact, FindingFact, ResultFacts, ScoreFact, build_oru
from backend.integration.results_fhir import build_bundle
from backend.integration.results_peers import SendFailed, post_fhir, send_mllp
from backend.models import (
    DeliveryStatus,
    DeliveryTarget,
    Encounter,
    EncounterKind,
    Finding,
    Patient,
    PatientIdentifier,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResultDelivery,
)
from backend.models.base import utcnow
from backend.models.integration import EncounterIdentifier
from backend.services import audit
from questionnaires.fhir import to_fhir_response
from questionnaires.fhir_source import LOINC
from questionnaires.model import Item, ItemType, Questionnaire, Texts
from questionnaires.values import from_json

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=6)
BATCH = 50


def targets(settings: Settings) -> list[DeliveryTarget]:
    found = []
    if settings.results_hl7_host:
        found.append(DeliveryTarget.HL7)
    if settings.results_fhir_base_url:
        found.append(DeliveryTarget.FHIR)
    return found


def do_queue_results(session: Session, response: QuestionnaireResponse, *, now: datetime) -> int:
    """A delivery per configured endpoint for a response just completed, in the caller's transaction."""
    wanted = targets(get_settings())
    for target in wanted:
        session.add(
            ResultDelivery(
                response_id=response.id,
                patient_id=response.patient_id,
                target=target,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(wanted)


def backoff(attempts: int, base_seconds: int) -> timedelta:
    """The wait after `attempts` failed tries: base, 2 x base, 4 x base, ... at most MAX_BACKOFF."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


# --- what is sent ---------------------------------------------------------------------------------


def _text(texts: Texts | None, lang: str) -> str:
    if not texts:
        return ""
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


def _answer(item: Item, value: Any, lang: str) -> AnswerFact:
    fact = _answer_value(item, value, lang)
    loinc = next((c for c in item.codes if c.system == LOINC), None)
    if loinc is None:
        return fact
    return replace(fact, standard=(loinc.code, loinc.display or ""))


def _answer_value(item: Item, value: Any, lang: str) -> AnswerFact:
    question = _text(item.text, lang)
    if item.type.has_options:
        codes = value if isinstance(value, list) else [value]
        names = {option.code: _text(option.text, lang) for option in item.options}
        return AnswerFact(item.id, question, "CWE", tuple((str(c), names.get(str(c), "")) for c in codes))
    if item.type.is_numeric:
        return AnswerFact(item.id, question, "NM", ((str(value), ""),), unit=_text(item.unit, lang))
    if item.type is ItemType.DATE:
        return AnswerFact(item.id, question, "DT", ((value.strftime("%Y%m%d"), ""),))
    if isinstance(value, dict):  # several labelled blanks
        labels = {blank.id: _text(blank.text, lang) for blank in item.blanks}
        joined = "; ".join(f"{labels.get(k) or k}: {v}" for k, v in value.items())
        return AnswerFact(item.id, question, "TX", ((joined, ""),))
    kind = "TX" if item.type is ItemType.LONG_TEXT else "ST"
    return AnswerFact(item.id, question, kind, ((str(value), ""),))


def _scores(q: Questionnaire, response: QuestionnaireResponse, lang: str) -> tuple[ScoreFact, ...]:
    found = []
    for score in q.scores:
        if score.id not in response.scores:
            continue
        band_code = response.bands.get(score.id, "")
        band = next((b for b in score.bands if b.code == band_code), None)
        found.append(
            ScoreFact(
                score.id,
                _text(score.text, lang),
                int(response.scores[score.id]),
                band_code,
                _text(band.text, lang) if band else "",
            )
        )
    return tuple(found)


def load_facts(session: Session, response_id: int) -> tuple[ResultFacts, dict[str, Any]]:
    """The facts of a completed response and its FHIR QuestionnaireResponse, from the database."""
    response = session.get_one(QuestionnaireResponse, response_id)
    version = session.get_one(QuestionnaireVersion, response.version_id)
    patient = session.get_one(Patient, response.patient_id)
    q = definition_of(version)
    lang = response.language
    answers = {key: from_json(q.item(key), raw) for key, raw in response.answers.items()}
    known = session.scalars(
        sa.select(PatientIdentifier)
        .where(PatientIdentifier.patient_id == patient.id)
        .order_by(PatientIdentifier.id)
    ).all()
    identifiers = tuple(Identifier(i.value, i.authority, i.type_code) for i in known)
    if not identifiers:  # a patient CareLoop registered itself: its own record number
        identifiers = (Identifier(patient.mrn, "CARELOOP", "MR"),)
    else:  # the hospital's record number first, as PID-3's first repetition is read by many systems
        shown = [i for i in identifiers if patient.mrn in (i.value, f"{i.authority}:{i.value}")]
        mrn = next(iter(shown), None) or next(
            (i for i in identifiers if i.type_code.upper() == "MR"), identifiers[0]
        )
        identifiers = (mrn, *(i for i in identifiers if i is not mrn))
    visit = None
    inpatient = False
    if response.encounter_id is not None:
        encounter = session.get(Encounter, response.encounter_id)
        inpatient = encounter is not None and encounter.kind in (
            EncounterKind.INPATIENT,
            EncounterKind.DISCHARGE,
        )
        link = session.scalars(
            sa.select(EncounterIdentifier).where(EncounterIdentifier.encounter_id == response.encounter_id)
        ).first()
        if link is not None:
            visit = Identifier(link.visit_number, link.authority)
        elif encounter is not None and encounter.external_id:
            visit = Identifier(encounter.external_id, identifiers[0].authority)
    rules = {rule.id: _text(rule.text, lang) for rule in q.rules}
    findings = session.scalars(
        sa.select(Finding).where(Finding.response_id == response.id).order_by(Finding.id)
    )
    completed = response.completed_at or response.updated_at
    facts = ResultFacts(
        response_id=response.id,
        questionnaire_id=q.id,
        questionnaire_version=q.version,
        title=_text(q.title, lang),
        language=lang,
        completed_at=completed,
        identifiers=identifiers,
        name=patient.name,
        birth_date=patient.birth_date,
        sex=patient.sex.value,
        visit=visit,
        inpatient=inpatient,
        answers=tuple(_answer(item, answers[item.id], lang) for item in q.answerable() if item.id in answers),
        scores=_scores(q, response, lang),
        findings=tuple(
            FindingFact(f.code, f.severity, rules.get(f.code, f.code), tuple(f.items)) for f in findings
        ),
    )
    qr = to_fhir_response(q, answers, lang=lang, subject_ref=f"Patient/{patient.id}", authored=completed)
    return facts, qr


# --- sending --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sweep:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(*, settings: Settings | None = None, now: datetime | None = None) -> Sweep:
    """Send the deliveries that are due (and those whose sender died mid-send); the periodic job."""
    settings = settings or get_settings()
    now = now or utcnow()
    stale = now - timedelta(seconds=settings.results_timeout_seconds * 2 + 60)
    with session_scope() as session:
        due = list(
            session.scalars(
                sa.select(ResultDelivery.id)
                .where(
                    sa.or_(
                        sa.and_(
                            ResultDelivery.status == DeliveryStatus.PENDING,
                            ResultDelivery.next_attempt_at <= now,
                        ),
                        sa.and_(
                            ResultDelivery.status == DeliveryStatus.SENDING, ResultDelivery.claimed_at < stale
                        ),
                    )
                )
                .order_by(ResultDelivery.next_attempt_at, ResultDelivery.id)
                .limit(BATCH)
            )
        )
    counts = {DeliveryStatus.DELIVERED: 0, DeliveryStatus.PENDING: 0, DeliveryStatus.FAILED: 0}
    for delivery_id in due:
        status = deliver_one(delivery_id, settings=settings, now=now, stale_before=stale)
        if status in counts:
            counts[status] += 1
    return Sweep(
        counts[DeliveryStatus.DELIVERED], counts[DeliveryStatus.PENDING], counts[DeliveryStatus.FAILED]
    )


def _claim(session: Session, delivery_id: int, now: datetime, stale_before: datetime) -> bool:
    """Take the row for this worker (another may be sweeping too); False when someone else has it."""
    result = session.execute(
        sa.update(ResultDelivery)
        .where(
            ResultDelivery.id == delivery_id,
            sa.or_(
                ResultDelivery.status == DeliveryStatus.PENDING,
                sa.and_(
                    ResultDelivery.status == DeliveryStatus.SENDING, ResultDelivery.claimed_at < stale_before
                ),
            ),
        )
        .values(status=DeliveryStatus.SENDING, claimed_at=now, attempts=ResultDelivery.attempts + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def deliver_one(
    delivery_id: int, *, settings: Settings, now: datetime, stale_before: datetime | None = None
) -> DeliveryStatus | None:
    """Claim, build, send (no transaction held while the peer answers), record. None when not claimed."""
    with session_scope() as session:
        if not _claim(session, delivery_id, now, stale_before or now):
            return None
    failure: SendFailed | None = None
    try:
        with session_scope() as session:
            delivery = session.get_one(ResultDelivery, delivery_id)
            target = delivery.target
            facts, qr = load_facts(session, delivery.response_id)
    except Exception as exc:  # a stored response its questionnaire no longer reads: a person must look
        log.exception("result delivery %s: the message could not be built", delivery_id)
        failure = SendFailed("build", f"the result could not be built: {type(exc).__name__}", permanent=True)
    if failure is None:
        try:
            if target is DeliveryTarget.HL7:
                result = _send_hl7(delivery_id, facts, settings, now)
            else:
                result = _send_fhir(facts, qr, settings)
        except SendFailed as exc:
            failure = exc
    if failure is not None:
        result = failure.result
    with session_scope() as session:
        return do_record_attempt(session, delivery_id, result, failure, settings=settings, now=now)


def _send_hl7(delivery_id: int, facts: ResultFacts, settings: Settings, now: datetime) -> str:
    if not settings.results_hl7_host:
        raise SendFailed("config", "HL7 write-back is no longer configured", permanent=True)
    control_id = f"CLR{delivery_id}"  # the same on every retry: the receiver can tell a resend
    text = build_oru(
        facts,
        control_id=control_id,
        charset=settings.results_hl7_charset,
        receiver=settings.results_hl7_receiver,
        now=now,
    )
    try:
        codec = codec_for(settings.results_hl7_charset)
    except Unparseable:
        raise SendFailed(
            "config", "CARELOOP_RESULTS_HL7_CHARSET names no known character set", permanent=True
        ) from None
    return send_mllp(
        settings.results_hl7_host,
        settings.results_hl7_port,
        text.encode(codec, errors="replace"),
        codec=codec,
        control_id=control_id,
        timeout=settings.results_timeout_seconds,
    )


def _send_fhir(facts: ResultFacts, qr: dict[str, Any], settings: Settings) -> str:
    if not settings.results_fhir_base_url:
        raise SendFailed("config", "FHIR write-back is no longer configured", permanent=True)
    token = settings.results_fhir_token.get_secret_value() if settings.results_fhir_token else None
    return post_fhir(
        settings.results_fhir_base_url,
        build_bundle(facts, qr),
        token=token,
        timeout=settings.results_timeout_seconds,
    )


def do_record_attempt(
    session: Session,
    delivery_id: int,
    result: str,
    failure: SendFailed | None,
    *,
    settings: Settings,
    now: datetime,
) -> DeliveryStatus:
    """The outcome of one try on the row, audited: delivered, retried later, or failed for a person."""
    delivery = session.get_one(ResultDelivery, delivery_id)
    delivery.last_result = result[:16]
    delivery.claimed_at = None
    if failure is None:
        delivery.status, delivery.delivered_at, delivery.last_error = DeliveryStatus.DELIVERED, now, ""
    elif failure.permanent or delivery.attempts >= settings.results_max_attempts:
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = (
            failure.reason
            if failure.permanent
            else f"gave up after {delivery.attempts} tries: {failure.reason}"
        )
    else:
        delivery.status = DeliveryStatus.PENDING
        delivery.last_error = failure.reason
        delivery.next_attempt_at = now + backoff(delivery.attempts, settings.results_retry_seconds)
    delivery.last_error = delivery.last_error[:500]
    audit.record(
        session,
        "results.delivery",
        patient_id=delivery.patient_id,
        subject=("result_delivery", delivery.id),
        target=delivery.target.value,
        result=delivery.last_result,
        status=delivery.status.value,
        attempt=delivery.attempts,
    )
    if delivery.status is not DeliveryStatus.DELIVERED:
        log.warning("result delivery %s (%s): %s", delivery.id, delivery.target.value, delivery.last_result)
    return delivery.status


def do_retry_delivery(session: Session, delivery_id: int, *, staff_id: int, now: datetime) -> ResultDelivery:
    """A failed delivery tried again at the next sweep, by a person's decision (the peer was fixed); audited.
    ValueError when it has not failed."""
    delivery = session.get_one(ResultDelivery, delivery_id)
    if not delivery.status.retryable:
        raise ValueError(f"a {delivery.status.value} delivery is not retried")
    delivery.status, delivery.next_attempt_at, delivery.attempts = DeliveryStatus.PENDING, now, 0
    audit.record(
        session,
        "results.retry",
        staff_id=staff_id,
        patient_id=delivery.patient_id,
        subject=("result_delivery", delivery.id),
        previous=delivery.last_error[:200],
    )
    return delivery
