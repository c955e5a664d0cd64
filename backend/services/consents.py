"""Granting and revoking consent per purpose and channel, and reading what is in force now."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import ConsentEvent, Conversation
from backend.services import audit
from bots.domain import Channel, ConsentPurpose


def _do_set(
    session: Session,
    *,
    patient_id: int,
    purpose: ConsentPurpose,
    channel: Channel,
    granted: bool,
    source: str,
    staff_id: int | None,
    evidence: dict[str, Any] | None,
) -> ConsentEvent:
    event = ConsentEvent(
        patient_id=patient_id,
        purpose=purpose,
        channel=channel,
        granted=granted,
        source=source,
        recorded_by_staff_id=staff_id,
        evidence=evidence or {},
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        "consent.grant" if granted else "consent.revoke",
        staff_id=staff_id,
        patient_id=patient_id,
        subject=("consent_event", event.id),
        purpose=purpose.value,
        channel=channel.value,
        source=source,
    )
    return event


def do_grant_consent(
    session: Session,
    *,
    patient_id: int,
    purpose: ConsentPurpose,
    channel: Channel,
    source: str,
    staff_id: int | None = None,
    evidence: dict[str, Any] | None = None,
) -> ConsentEvent:
    return _do_set(
        session,
        patient_id=patient_id,
        purpose=purpose,
        channel=channel,
        granted=True,
        source=source,
        staff_id=staff_id,
        evidence=evidence,
    )


def do_revoke_consent(
    session: Session,
    *,
    patient_id: int,
    purpose: ConsentPurpose,
    channel: Channel,
    source: str,
    staff_id: int | None = None,
    evidence: dict[str, Any] | None = None,
) -> ConsentEvent:
    return _do_set(
        session,
        patient_id=patient_id,
        purpose=purpose,
        channel=channel,
        granted=False,
        source=source,
        staff_id=staff_id,
        evidence=evidence,
    )


def current_consents(session: Session, patient_id: int) -> dict[tuple[ConsentPurpose, Channel], ConsentEvent]:
    """The latest event per (purpose, channel); absent means never asked."""
    rows = session.scalars(
        sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient_id).order_by(ConsentEvent.id)
    )
    return {(row.purpose, row.channel): row for row in rows}


def consent_allows(purpose: ConsentPurpose, latest: bool | None) -> bool:
    """The consent rule, given the latest grant (True), revocation (False) or none (None) for one
    purpose and channel: care messages are opt-out (allowed unless revoked on that channel);
    marketing and research are opt-in (only after an explicit grant)."""
    return latest is not False if purpose is ConsentPurpose.CARE else latest is True


def has_consent(session: Session, patient_id: int, purpose: ConsentPurpose, channel: Channel) -> bool:
    """Whether a message for `purpose` may go to the patient on `channel` now (see consent_allows)."""
    latest = session.scalars(
        sa.select(ConsentEvent.granted)
        .where(
            ConsentEvent.patient_id == patient_id,
            ConsentEvent.purpose == purpose,
            ConsentEvent.channel == channel,
        )
        .order_by(ConsentEvent.id.desc())
        .limit(1)
    ).first()
    return consent_allows(purpose, latest)


def do_record_pending_consents(session: Session, conversation: Conversation) -> None:
    """Consent answers a WeChat follower gave before the conversation was linked, recorded on its patient
    in the order given: a follower who declined care messages before registering is not messaged after."""
    assert conversation.patient_id is not None
    for answer in conversation.pending_consents or []:
        record = do_grant_consent if answer["granted"] else do_revoke_consent
        record(
            session,
            patient_id=conversation.patient_id,
            purpose=ConsentPurpose(answer["purpose"]),
            channel=conversation.channel,
            source=str(answer["source"]),
            evidence={**answer["evidence"], "given_before_linking": True},
        )
    conversation.pending_consents = None


UNFOLLOW_SOURCE = "wechat:unfollow"  # the revocations WeChat's unsubscribe event records


def do_restore_after_unfollow(
    session: Session, patient_id: int, channel: Channel, evidence: dict[str, Any]
) -> None:
    """Following again restores what unfollowing revoked, and only that: where the latest event of a
    purpose is the unfollow's revocation, what held before it holds again (a grant, or for care messages,
    which are opt-out, no answer yet). A purpose refused or never granted before stays refused."""
    history: dict[ConsentPurpose, list[ConsentEvent]] = defaultdict(list)
    for event in session.scalars(
        sa.select(ConsentEvent)
        .where(ConsentEvent.patient_id == patient_id, ConsentEvent.channel == channel)
        .order_by(ConsentEvent.id)
    ):
        history[event.purpose].append(event)
    for purpose, events in history.items():
        last, before = events[-1], (events[-2] if len(events) > 1 else None)
        if last.granted or last.source != UNFOLLOW_SOURCE:
            continue
        if consent_allows(purpose, before.granted if before is not None else None):
            do_grant_consent(
                session,
                patient_id=patient_id,
                purpose=purpose,
                channel=channel,
                source=f"{channel.value}:follow",
                evidence=evidence,
            )
