"""Emergencies in any inbound message, whoever holds the conversation: guidance now, a task, a person told.

The turn job runs this on every inbound message before anything else (bot-held, staff-held, ended, an
unlinked follower's, a voice note's recognised text), so a red flag never waits for a turn of the bot:
- the patient gets the emergency guidance, in her message's language when that is clear, through the
  outbox as emergency guidance (only an unreachable address stops it; see outbox/gates.py), or on the
  web chat page;
- the conversation's open hand-off becomes an emergency (priority and due time recomputed), or an
  emergency task is opened; the staff member holding the conversation is told (a mention: her inbox
  counts update live);
- a conversation the bot held goes to staff, its survey in progress kept for later.
One `SafetyAlert` row per message makes it idempotent: a re-delivered or retried message acts once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import (
    Conversation,
    ConversationOwner,
    Direction,
    Message,
    MessageStatus,
    OutboxKind,
    SafetyAlert,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.outbox.enqueue import EXTERNAL, do_enqueue
from backend.services import audit, mentions
from backend.services.tasks import do_raise_priority, do_raise_task
from bots.catalog import Catalog
from bots.domain import Channel
from bots.effects import HandoffReason
from bots.messages import Outbound, Text
from nlu.language_id import message_language
from nlu.safety import Emergency, SafetyHit, SafetyKind, advice_for, assess

EMERGENCY_TITLE = f"handoff:{HandoffReason.EMERGENCY.value}"
FALLBACK_GUIDANCE = "common.emergency"  # an emergency without a category


def screen(text: str, choice: str | None) -> SafetyHit | None:
    """The most urgent safety reading of a patient's own words (an emergency, a person, STOP): the rules,
    then the second net (`nlu.safety.assess`), which only adds an emergency the rules missed and never
    lowers or removes one. A button press is never one. The turn hands this reading to the engine,
    which would otherwise run the rules again."""
    if choice is not None or not text.strip():
        return None
    return assess(text, use_classifier=get_settings().safety_classifier).top


def warm() -> None:
    """Load the second net now (about 2 s from its disk cache) rather than in the first patient's turn;
    processes that fork a child per job call this first so every child starts with it loaded."""
    if get_settings().safety_classifier:
        from nlu.safety_net import default_net

        default_net()


def emergency_in(text: str, choice: str | None) -> SafetyHit | None:
    """The emergency a patient's own words describe; a button press is never one."""
    hit = screen(text, choice)
    return hit if hit is not None and hit.kind is SafetyKind.EMERGENCY else None


def category_of(value: str) -> Emergency | None:
    """The emergency category a stored code names (None for one the rules no longer have)."""
    return next((e for e in Emergency if e.value == value), None)


def emergency_guidance_key(emergency: Emergency | None) -> str:
    """The catalogue text that answers an emergency of this category (call now, go to the emergency
    department, or the crisis line): the one place that chooses it; chat, SMS, WhatsApp, WeChat and
    the form's done page all ask here."""
    return advice_for(emergency).message_key if emergency is not None else FALLBACK_GUIDANCE


def guidance(catalog: Catalog, lang: str, emergency: Emergency | None) -> Outbound:
    """The advice for the category, then its one first-aid line, with the site's numbers."""
    settings = get_settings()
    numbers = {"emergency_number": settings.emergency_number, "crisis_line": settings.crisis_line}
    parts = [Text(catalog.text(lang, emergency_guidance_key(emergency), **numbers))]
    if emergency is not None:
        parts.append(Text(catalog.text(lang, f"safety.tip.{emergency.value}", **numbers)))
    return Outbound(tuple(parts))


def guidance_text(catalog: Catalog, lang: str, emergency: Emergency | None) -> str:
    return guidance(catalog, lang, emergency).text


def do_handle_emergency(
    session: Session,
    conversation: Conversation,
    *,
    message_id: int,
    text: str,
    hit: SafetyHit,
    record_lang: str,
    catalog: Catalog,
    department_id: int | None,
    queued: list[int],
    now: datetime,
) -> SafetyAlert | None:
    """Answer, raise and tell, once per message. Returns the alert, or None when this message was
    acted on before. Outbox ids to kick after commit are appended to `queued`."""
    if session.scalar(sa.select(SafetyAlert.id).where(SafetyAlert.message_id == message_id)) is not None:
        return None
    held_by = conversation.owner
    lang = message_language(text, record_lang)
    guidance_id = _send_guidance(session, conversation, guidance(catalog, lang, hit.emergency), queued, now)
    category = hit.emergency.value if hit.emergency is not None else "unknown"
    task = _emergency_task(session, conversation, message_id, category, department_id, now)
    holder = _holder(session, conversation, task)
    if holder is not None:
        _tell(session, task, holder, message_id, now)
    conversation.owner = ConversationOwner.STAFF
    alert = SafetyAlert(
        message_id=message_id,
        conversation_id=conversation.id,
        patient_id=conversation.patient_id,
        category=category,
        language=lang,
        held_by=held_by.value,
        task_id=task.id,
        guidance_message_id=guidance_id,
        created_at=now,
    )
    session.add(alert)
    session.flush()
    audit.record(
        session,
        "safety.emergency",
        patient_id=conversation.patient_id,
        subject=("conversation", conversation.id),
        message_id=message_id,
        category=category,
        source=hit.source.value,
        held_by=held_by.value,
        task_id=task.id,
        guidance=guidance_id is not None,
        holder=holder,
    )
    return alert


def _send_guidance(
    session: Session, conversation: Conversation, outbound: Outbound, queued: list[int], now: datetime
) -> int | None:
    """The guidance's message id; None when the sender cannot be answered (an unknown phone number:
    only its blind index is kept, and that is no address)."""
    if conversation.channel is Channel.WEBCHAT:  # the page is the delivery
        message = Message(
            conversation_id=conversation.id,
            channel=conversation.channel,
            direction=Direction.OUTBOUND,
            status=MessageStatus.SENT,
            text=outbound.text,
            parts=outbound.to_json(),
            created_at=now,
        )
        session.add(message)
        session.flush()
        return message.id
    if conversation.channel in EXTERNAL and (conversation.patient_id is not None or conversation.reply_to):
        item = do_enqueue(
            session, conversation=conversation, outbound=outbound, kind=OutboxKind.EMERGENCY, now=now
        )
        queued.append(item.id)
        return item.message_id
    return None


def _emergency_task(
    session: Session,
    conversation: Conversation,
    message_id: int,
    category: str,
    department_id: int | None,
    now: datetime,
) -> Task:
    """The conversation's open hand-off made an emergency, or a new emergency task."""
    task = session.scalars(
        sa.select(Task)
        .where(
            Task.source_type == "conversation",
            Task.source_id == conversation.id,
            Task.status != TaskStatus.CLOSED,
        )
        .order_by(Task.id.desc())
        .limit(1)
    ).first()
    if task is not None:
        do_raise_priority(
            session,
            task=task,
            priority=TaskPriority.EMERGENCY,
            now=now,
            message_id=message_id,
            category=category,
        )
        return task
    return do_raise_task(
        session,
        kind=TaskKind.HANDOFF,
        priority=TaskPriority.EMERGENCY,
        title=EMERGENCY_TITLE,
        source=("conversation", conversation.id),
        patient_id=conversation.patient_id,
        department_id=department_id,
        now=now,
    )


def _holder(session: Session, conversation: Conversation, task: Task) -> int | None:
    """Who holds the conversation: the task's assignee, else the staff member who last wrote in it
    while staff held it."""
    if conversation.owner is not ConversationOwner.STAFF:
        return None
    if task.assignee_id is not None:
        return task.assignee_id
    found: int | None = session.scalar(
        sa.select(Message.sent_by_staff_id)
        .where(Message.conversation_id == conversation.id, Message.sent_by_staff_id.is_not(None))
        .order_by(Message.id.desc())
        .limit(1)
    )
    return found


def _tell(session: Session, task: Task, staff_id: int, message_id: int, now: datetime) -> None:
    """A system event naming her, recorded as a mention: "mentioned me" counts it (pushed live to her
    inbox) and she may open the task even outside her departments."""
    event = TaskEvent(
        task_id=task.id,
        kind=TaskEventKind.ALERTED,
        actor_id=None,
        detail={"staff": staff_id, "via": "inbox", "message_id": message_id},
        at=now,
    )
    session.add(event)
    session.flush()
    mentions.record(session, event, [staff_id], None)
    audit.record(
        session,
        "task.alerted",
        patient_id=task.patient_id,
        subject=("task", task.id),
        staff=staff_id,
        via="inbox",
    )
