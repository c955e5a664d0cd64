"""Sending a patient the link to a started questionnaire response, on one channel (plans and staff alike)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.followup.catalog import definition_of
from backend.messaging.links import LinkKind, link_ref
from backend.models import (
    Direction,
    Message,
    MessageStatus,
    OutboxKind,
    QuestionnaireResponse,
    QuestionnaireVersion,
)
from backend.outbox.enqueue import EXTERNAL, do_enqueue
from backend.services.conversations import get_or_create_conversation
from bots.domain import Channel
from bots.messages import Link, Outbound, Text


def do_send_form_invite(
    session: Session,
    *,
    response: QuestionnaireResponse,
    channel: Channel,
    address: str,
    lang: str,
    now: datetime,
    staff_id: int | None = None,
) -> int | None:
    """Queue the invitation; returns the outbox id to kick after the commit (None on the web chat, where
    the message row is the delivery)."""
    settings = get_settings()
    version_row = session.get(QuestionnaireVersion, response.version_id)
    assert version_row is not None
    title = definition_of(version_row).title[lang]
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    # a reference, minted into the link when sent or shown: the stored message holds no token
    url = link_ref(LinkKind.FORM, response.id, days=settings.form_link_days)
    outbound = Outbound(
        (
            Text(catalog.text(lang, "followup.invite", title=title)),
            Link(url, catalog.text(lang, "followup.open_form")),
        )
    )
    conversation = get_or_create_conversation(
        session, patient_id=response.patient_id, channel=channel, address=address
    )
    if channel in EXTERNAL:
        item = do_enqueue(
            session,
            conversation=conversation,
            outbound=outbound,
            kind=OutboxKind.OUTREACH,
            template_key="followup_invite",
            template_vars={"title": title, "url": url, "text": outbound.text},
            staff_id=staff_id,
            now=now,
        )
        return item.id
    session.add(
        Message(
            conversation_id=conversation.id,
            channel=channel,
            direction=Direction.OUTBOUND,
            # The web chat page is its own delivery; other channels wait in the outbox for their sender.
            status=MessageStatus.SENT if channel is Channel.WEBCHAT else MessageStatus.QUEUED,
            text=outbound.text,
            parts=outbound.to_json(),
            sent_by_staff_id=staff_id,
            created_at=now,
        )
    )
    conversation.last_message_at = now
    return None
