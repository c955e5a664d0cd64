"""Sending a health-education article to a patient from their record (健康宣教).

The message carries the article's title and summary in the patient's language and a link to its mobile
page (`/e/<article>/<lang>`, public: education is not patient data). It goes through `do_staff_message`
as staff-started contact, so consent, exclusions and reachability are checked at once (a refusal comes
back with its reason) and again by the sender, and it lands in the patient's conversation, so the
record's timeline shows it. What is sent is the article's published revision in the studio; the audit row
and the outbox item name that revision, so the record shows which one the patient got. The same article is
sent at most once a day to a patient (a double click, or two nurses at once, must not send it twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import Settings, get_settings
from backend.content.catalogue import current_catalog
from backend.education.library import Article, articles
from backend.models import Conversation, Direction, Message, OutboxKind, Patient
from backend.models.base import utcnow
from backend.services.refusal import ActionRefused, NotSent, Reason
from backend.services.staff_message import do_staff_message
from bots.domain import Channel, pick_language
from bots.messages import Link, Outbound, Text

RESEND_AFTER = timedelta(days=1)


def article_url(settings: Settings, article_id: str, lang: str) -> str:
    return f"{settings.public_url}/e/{article_id}/{lang}"


def articles_for(session: Session, settings: Settings) -> list[Article]:
    return sorted(articles(session, settings.content_dir).values(), key=lambda a: a.id)


def _sent_lately(session: Session, patient_id: int, url: str, now: datetime) -> bool:
    """Whether a message to the patient in the last day already links this article (lock the patient's
    row first, so two senders at once see each other)."""
    session.execute(sa.select(Patient.id).where(Patient.id == patient_id).with_for_update())
    recent = session.scalars(
        sa.select(Message.parts)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.patient_id == patient_id,
            Message.direction == Direction.OUTBOUND,
            Message.created_at > now - RESEND_AFTER,
        )
    )
    return any(part.get("url") == url for parts in recent for part in parts or [])


def do_send_education(
    session: Session,
    *,
    patient: Patient,
    channel: Channel,
    article_id: str,
    staff_id: int,
    ip: str | None = None,
    now: datetime | None = None,
) -> tuple[Message, int | None]:
    """Send the article, or raise ActionRefused with the reason (after the refusal's audit row).
    Returns the message and the outbox id to kick after the commit."""
    now = now or utcnow()
    settings = get_settings()
    article = articles(session, settings.content_dir).get(article_id)
    if article is None:
        raise ActionRefused(Reason.NO_SUCH_ARTICLE)
    lang = pick_language(patient.language)
    url = article_url(settings, article.id, lang)
    if _sent_lately(session, patient.id, url, now):
        raise ActionRefused(Reason.EDUCATION_ALREADY_SENT)
    catalog = current_catalog(session)
    title = article.text("title", lang)
    text = catalog.text(lang, "education.message", title=title, summary=article.text("summary", lang))
    outbound = Outbound((Text(text), Link(url, catalog.text(lang, "education.read"))))
    sent = do_staff_message(
        session,
        patient=patient,
        channel=channel,
        outbound=outbound,
        kind=OutboxKind.OUTREACH,
        staff_id=staff_id,
        action="patient.education_sent",
        refused_action="patient.education_refused",
        template_vars={"text": f"{text} {url}", "title": title, "url": url, "revision": _pinned(article)},
        detail={"article": article.id, "revision": article.revision},
        ip=ip,
        now=now,
    )
    if sent.refused is not None or sent.message is None:
        raise NotSent(sent.refused or "suppressed")
    return sent.message, sent.outbox_id


def _pinned(article: Article) -> str:
    """The revision sent, as the outbox item keeps it ("files" for an article not yet in the studio)."""
    return "files" if article.revision is None else str(article.revision)
