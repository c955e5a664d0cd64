"""The turn job every channel uses: run the bot over a conversation's pending inbound messages, in order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.jobs import clear_mark, enqueue
from backend.app.queues import JobQueue
from backend.app.settings import get_settings
from backend.content.catalogue import catalog_at, current_catalog, pin
from backend.content.flow_library import DatabaseFlows
from backend.content.safety_lexicon import sync as sync_site_lexicon
from backend.dialogue.flow_ports import DatabasePorts
from backend.dialogue.handoff_notice import complaint_text, handoff_text
from backend.dialogue.safety_net import do_handle_emergency, screen
from backend.dialogue.understanding import reading_of
from backend.models import (
    Conversation,
    ConversationOwner,
    ConversationStep,
    Direction,
    Encounter,
    Message,
    MessageStatus,
    OutboxKind,
    Patient,
    TaskKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import EXTERNAL, do_enqueue
from backend.outbox.sender import kick
from backend.services import audit
from backend.services.consents import do_grant_consent, do_revoke_consent
from backend.services.conversations import lock_conversation
from backend.services.feedback_intake import take_feedback
from backend.services.surveys_intake import take_survey
from backend.services.tasks import do_raise_task
from bots.catalog import Catalog
from bots.domain import Channel, pick_language
from bots.effects import (
    CompleteSurvey,
    Effect,
    FeedbackKind,
    GrantConsent,
    HandoffReason,
    RequestHandoff,
    RevokeConsent,
    SetLanguage,
    SubmitFeedback,
)
from bots.engine import MENU_FLOW, ConversationState, Screened, hand_over, take_turn
from bots.messages import Inbound, InboundKind, Outbound, Text
from nlu.language_id import detect
from nlu.safety import SafetyHit, SafetyKind
from nlu.symptoms import mentions_symptom

log = logging.getLogger(__name__)
DEFAULT_FLOW = "welcome"


def queue_turn(conversation_id: int, *, unless_queued: bool = False) -> bool:
    """Queue the conversation's turn on the turns queue. One queued turn handles every message stored
    before it starts, so the retry sweep (`unless_queued`) adds none while one is still waiting; a new
    message always queues one, since the waiting turn may start before the message is committed."""
    return enqueue(
        run_turn,
        conversation_id,
        queue=JobQueue.TURNS,
        mark=_turn_mark(conversation_id),
        unless_marked=unless_queued,
    )


def _turn_mark(conversation_id: int) -> str:
    return f"turn:{conversation_id}"


def run_turn(conversation_id: int) -> int:
    """Job entry point (ids only). Returns how many inbound messages it handled."""
    clear_mark(_turn_mark(conversation_id))  # before the turn reads: later messages need a turn of their own
    queued: list[int] = []
    with session_scope() as session:
        handled = handle_pending(session, conversation_id, queued)
    for item_id in queued:  # replies on external channels go out once the turn has committed
        kick(item_id)
    return handled


class InlineTurnFailed(Exception):
    """An inline turn raised; the caller's transaction must be rolled back (see run_turn_in)."""


def run_turn_in(session: Session, conversation: Conversation, *, language: str | None = None) -> list[int]:
    """Inline jobs: the turn inside the caller's transaction, which must already hold the
    conversation's lock (services.conversations.lock_conversation), so the request stores the inbound
    and the replies in one commit. `language` is the patient's, when the caller has read it.

    No savepoint (two more round trips on every turn): if the turn fails it raises InlineTurnFailed,
    the caller rolls its transaction back and stores the inbound alone, which then waits for the retry
    sweep as after a failed job. Returns the outbox ids to kick once the caller has committed."""
    queued: list[int] = []
    try:
        _handle_locked(session, conversation, queued, language)
        session.flush()
    except Exception as exc:
        log.exception("inline turn of conversation %s failed; the periodic sweep retries it", conversation.id)
        raise InlineTurnFailed from exc
    return queued


def handle_pending(session: Session, conversation_id: int, queued: list[int] | None = None) -> int:
    """Run the bot over pending inbound; outbox ids of replies to send are appended to `queued`."""
    conversation = lock_conversation(session, conversation_id)
    if conversation is None:
        return 0
    return _handle_locked(session, conversation, queued if queued is not None else [])


@dataclass(frozen=True)
class _Pending:
    """An inbound message waiting for its turn: the columns the turn reads (no ORM object)."""

    id: int
    channel: Channel
    provider_message_id: str | None
    text: str
    choice: str | None
    created_at: datetime


def _handle_locked(
    session: Session, conversation: Conversation, queued: list[int], language: str | None = None
) -> int:
    session.flush()  # the statements below run on the connection, past the session's autoflush
    connection = session.connection()
    pending = [_Pending(*row) for row in connection.execute(_PENDING, {"conversation": conversation.id})]
    if not pending:
        return 0
    connection.execute(_MARK_PROCESSED, {"ids": [m.id for m in pending]})
    sync_site_lexicon(session)  # the hospital's published red-flag phrases, as of this message
    if language is None and conversation.patient_id is not None:
        language = connection.execute(_LANGUAGE, {"patient": conversation.patient_id}).scalar()
    for message in pending:
        _handle_one(session, conversation, message, queued, language)
    return len(pending)


# The turn's own statements, built once (building and cache-keying one per call costs about as much as
# running it); they run on the session's connection.
_MESSAGES = cast(sa.Table, Message.__table__)
_PENDING = (
    sa.select(
        Message.id,
        Message.channel,
        Message.provider_message_id,
        Message.text,
        Message.choice,
        Message.created_at,
    )
    .where(
        Message.conversation_id == sa.bindparam("conversation"),
        Message.direction == Direction.INBOUND,
        Message.status == MessageStatus.RECEIVED,
    )
    .order_by(Message.id)
)
_MARK_PROCESSED = (
    sa.update(_MESSAGES)
    .where(_MESSAGES.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(status=MessageStatus.PROCESSED)
)
_LANGUAGE = sa.select(Patient.language).where(Patient.id == sa.bindparam("patient"))
_INSERT_MESSAGES = sa.insert(_MESSAGES)
_INSERT_STEPS = sa.insert(cast(sa.Table, ConversationStep.__table__))


def _handle_one(
    session: Session, conversation: Conversation, message: _Pending, queued: list[int], language: str | None
) -> None:
    started = bool(message.provider_message_id and message.provider_message_id.startswith("start:"))
    hit = None if started else screen(message.text, message.choice)
    if hit is not None and hit.kind is SafetyKind.EMERGENCY:
        # whoever holds the conversation: an emergency never waits for a turn of the bot
        _emergency(session, conversation, message, hit, queued, language)
        return
    if conversation.owner is ConversationOwner.STAFF:
        # staff own it now; their inbox shows the message, ordered by its arrival (a no-op when the
        # store already moved last_message_at: the session writes only changed values)
        conversation.last_message_at = message.created_at
        return
    settings = get_settings()
    lang = pick_language(language or settings.default_language)
    flow_id = conversation.flow_id or DEFAULT_FLOW
    state = ConversationState.from_json(conversation.state) if conversation.state else None
    # the published revision of each flow a run starts; the state keeps the revision a run is on (a
    # parsed revision is cached, so a turn inside a run reads no flow from the database)
    library = DatabaseFlows(session, settings.content_dir)
    flow = library.get(
        flow_id, state.flow_version if state is not None and state.flow_id == flow_id else None
    )
    inbound = Inbound(
        channel=message.channel,
        sender=conversation.address,
        provider_message_id=message.provider_message_id or str(message.id),
        received_at=message.created_at,
        text=message.text,
        choice=message.choice,
        kind=InboundKind.CONVERSATION_STARTED if started else InboundKind.MESSAGE,
    )
    # the texts stay those the run started with; a run starting now takes the published ones
    catalog, conversation.texts_revision = pin(
        session, conversation.texts_revision, starting=_between_runs(state, library)
    )
    ports = DatabasePorts(session, conversation, catalog, settings.content_dir).ports()
    clear = detect(message.text)  # one message answers in its own language; the record's stays
    inbound_lang = clear.lang if clear.confident else None
    result = take_turn(
        flow,
        state,
        inbound,
        lang,
        catalog,
        understand=reading_of,
        library=library,
        ports=ports,
        message_lang=inbound_lang,
        screened=Screened(hit),
    )
    now = utcnow()
    if conversation.notice_sent_at is None and result.replies:
        turn_lang = pick_language(inbound_lang or (state.lang if state else None) or lang)
        result.replies[0] = _with_notice(result.replies[0], catalog, turn_lang)
        conversation.notice_sent_at = now
    # the flow (and version) the conversation is in now; the state keeps the versions of parent flows
    conversation.flow_id, conversation.flow_version = result.state.flow_id, result.state.flow_version
    conversation.state = result.state.to_json()
    conversation.last_message_at = now  # set with the state: one UPDATE of the conversation per turn
    # where the patient answered (the flow and step before this turn), not where the turn ended: a flow
    # that ends now hands over to the menu, and a consent's evidence must name the question it answered
    where = (flow_id, state.step if state else flow.start)
    reply_lang = pick_language(inbound_lang or result.state.lang or lang)
    for effect in result.effects:
        told = _apply(session, conversation, message, effect, where)
        if told is not None:  # what the patient must know of what the effect did (a wait, a case number)
            result.replies.append(Outbound((Text(told(catalog, reply_lang)),)))
    # Rows nothing reads back in this turn go straight to the connection (no ORM objects to build and flush).
    replies = []
    # through the outbox: a patient's external channels, and a WeChat follower not yet linked
    linked = conversation.patient_id is not None
    outbox = conversation.channel in EXTERNAL and (linked or bool(conversation.reply_to))
    for reply in result.replies:
        if outbox:
            item = do_enqueue(
                session, conversation=conversation, outbound=reply, kind=OutboxKind.REPLY, now=now
            )
            queued.append(item.id)
            continue
        replies.append(
            {
                "conversation_id": conversation.id,
                "channel": conversation.channel,
                "direction": Direction.OUTBOUND,
                # the web chat page is the delivery: it shows the row as soon as it exists
                "status": MessageStatus.SENT
                if conversation.channel is Channel.WEBCHAT
                else MessageStatus.QUEUED,
                "text": reply.text,
                "parts": reply.to_json(),
                "created_at": now,
            }
        )
    if replies:
        session.connection().execute(_INSERT_MESSAGES, replies)
    steps = [
        {
            "conversation_id": conversation.id,
            "flow_id": v.flow_id,
            "flow_version": v.flow_version,
            "step": v.step,
            "at": now,
        }
        for v in result.visits
    ]
    if steps:
        session.connection().execute(_INSERT_STEPS, steps)
    log.info("turn conversation=%s message=%s replies=%d", conversation.id, message.id, len(result.replies))


def _with_notice(reply: Outbound, catalog: Catalog, lang: str) -> Outbound:
    """The first reply of a conversation tells the patient, once, that nobody watches this chat around
    the clock and what to do in an emergency; after its own text, before its choices."""
    notice = Text(catalog.text(lang, "safety.notice", emergency_number=get_settings().emergency_number))
    at = next((i for i, part in enumerate(reply.parts) if not isinstance(part, Text)), len(reply.parts))
    return Outbound((*reply.parts[:at], notice, *reply.parts[at:]))


def _emergency(
    session: Session,
    conversation: Conversation,
    message: _Pending,
    hit: SafetyHit,
    queued: list[int],
    language: str | None,
) -> None:
    settings = get_settings()
    state = ConversationState.from_json(conversation.state) if conversation.state else None
    record_lang = pick_language((state.lang if state else None) or language or settings.default_language)
    if state is not None and conversation.owner is ConversationOwner.BOT:
        conversation.state = hand_over(state).to_json()  # stops as a hand-off does; a survey is kept
    now = utcnow()
    do_handle_emergency(
        session,
        conversation,
        message_id=message.id,
        text=message.text,
        hit=hit,
        record_lang=record_lang,
        # the conversation's texts; with none pinned yet (an emergency as the first message), the published
        catalog=catalog_at(session, conversation.texts_revision)
        if conversation.texts_revision is not None
        else current_catalog(session),
        department_id=_latest_department(session, conversation),
        queued=queued,
        now=now,
    )
    conversation.last_message_at = now
    log.info("emergency conversation=%s message=%s", conversation.id, message.id)


def _handoff_priority(reason: HandoffReason, text: str) -> TaskPriority:
    """Emergencies first; a patient the bot could not understand twice who mentions a symptom comes
    before routine questions."""
    if reason is HandoffReason.EMERGENCY:
        return TaskPriority.EMERGENCY
    if reason is HandoffReason.CLARIFICATION_FAILED and mentions_symptom(text):
        return TaskPriority.HIGH
    return TaskPriority.NORMAL


Told = Callable[[Catalog, str], str]  # a text for the patient, in the turn's language


def _apply(
    session: Session, conversation: Conversation, message: _Pending, effect: Effect, where: tuple[str, str]
) -> Told | None:
    source = f"{conversation.channel.value}:{where[0]}"
    evidence = {"message_id": message.id, "step": where[1]}
    if isinstance(effect, GrantConsent | RevokeConsent) and conversation.patient_id is None:
        if conversation.reply_to:  # an unlinked follower: kept until registration binds the record
            answer = {"purpose": effect.purpose.value, "granted": isinstance(effect, GrantConsent)}
            kept = {**answer, "source": source, "evidence": evidence}
            conversation.pending_consents = [*(conversation.pending_consents or []), kept]
    elif isinstance(effect, GrantConsent) and conversation.patient_id:
        do_grant_consent(
            session,
            patient_id=conversation.patient_id,
            purpose=effect.purpose,
            channel=conversation.channel,
            source=source,
            evidence=evidence,
        )
    elif isinstance(effect, RevokeConsent) and conversation.patient_id:
        do_revoke_consent(
            session,
            patient_id=conversation.patient_id,
            purpose=effect.purpose,
            channel=conversation.channel,
            source=source,
            evidence=evidence,
        )
    elif isinstance(effect, SetLanguage):
        patient = session.get(Patient, conversation.patient_id) if conversation.patient_id else None
        if patient is not None and patient.language != effect.lang:
            patient.language = effect.lang
            audit.record(session, "patient.language", patient_id=patient.id, subject=("patient", patient.id))
    elif isinstance(effect, SubmitFeedback):
        case = take_feedback(session, conversation, effect)
        if effect.kind is FeedbackKind.COMPLAINT:
            return lambda catalog, lang: complaint_text(session, catalog, lang, case)
    elif isinstance(effect, CompleteSurvey) and conversation.patient_id:
        take_survey(session, conversation, effect)
    elif isinstance(effect, RequestHandoff):
        conversation.owner = ConversationOwner.STAFF
        task = do_raise_task(
            session,
            kind=TaskKind.HANDOFF,
            priority=_handoff_priority(effect.reason, message.text),
            title=f"handoff:{effect.reason.value}",
            source=("conversation", conversation.id),
            patient_id=conversation.patient_id,
            department_id=_latest_department(session, conversation),
        )
        if effect.reason is not HandoffReason.EMERGENCY:  # an emergency's advice says what to do now
            return lambda catalog, lang: handoff_text(session, catalog, lang, task)
    return None


def _latest_department(session: Session, conversation: Conversation) -> int | None:
    if conversation.patient_id is None:
        return None
    return session.connection().execute(_LATEST_DEPARTMENT, {"patient": conversation.patient_id}).scalar()


_LATEST_DEPARTMENT = (
    sa.select(Encounter.department_id)
    .where(Encounter.patient_id == sa.bindparam("patient"))
    .order_by(Encounter.started_at.desc())
    .limit(1)
)


def _between_runs(state: ConversationState | None, library: DatabaseFlows) -> bool:
    """Whether the next message starts a new run: a new or ended conversation, or one waiting at the top
    of the main menu, where every finished flow comes back to (otherwise a conversation that never ends
    would keep its first texts for ever)."""
    if state is None or state.ended:
        return True
    if state.flow_id != MENU_FLOW or state.stack or state.survey:
        return False
    return state.step == library.get(MENU_FLOW, state.flow_version).start
