"""Sending outbox items: claim, re-check the gates, hand to the channel adapter, record the outcome.

Each item is sent in three short steps so no database transaction is held open across a provider call:
claim (status `sending` with a short lease, and an attempt row `started`), call the adapter, record
(the attempt's outcome, code and duration). While the call runs a heartbeat extends the lease, so a
slow provider is not mistaken for a dead worker; a worker that dies mid-send stops the heartbeat, the
lease expires within `LEASE`, and its attempt becomes `ambiguous` (the provider may have the message).

At most once where the provider allows it: the generic SMS gateway takes our outbox id as an
idempotency `reference`, so a resend is harmless. Twilio has none, so after an ambiguous attempt (a
timeout, a broken connection, a worker killed mid-call) the adapter first looks the message up
(`channels.base.LooksUp`) and only sends when the provider has no record of it. WeChat can do neither
for every message, so its adapter says whether a resend may go (`channels.base.ResendPolicy`); an item it
holds back fails with `ambiguous_unconfirmed`, for a person to look at. Items are found by
`drain_outbox` (periodic) or kicked right after they are queued.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.jobs import enqueue
from backend.app.queues import JobQueue
from backend.app.settings import get_settings
from backend.models import (
    AttemptOutcome,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    OutboxAttempt,
    OutboxItem,
    OutboxStatus,
    Patient,
    StaffUser,
)
from backend.models.base import utcnow
from backend.outbox.gates import Action, Facts, Verdict, judge, judge_staff, judge_unlinked, load_facts
from backend.outbox.overrides import effective_settings
from backend.outbox.providers import (
    ChannelNotConfigured,
    delivery_for,
    delivery_to_follower,
    delivery_to_staff,
    sender_for,
    sender_key,
)
from backend.outbox.rate import send_rate
from backend.services import audit
from backend.services.consents import do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from channels.base import (
    Delivery,
    DeliveryStatus,
    LooksUp,
    ResendPolicy,
    SendFailed,
    SendResult,
    StatusUpdate,
)

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)  # a dead sender's items are picked up again this soon
HEARTBEAT = LEASE / 3  # a live sender extends its leases this often while the provider calls run
# Failures after which the provider may have accepted the message: the next try looks it up first.
AMBIGUOUS_CODES = frozenset({"timeout", "network", "lease_expired"})
# an item left unsent after ambiguous attempts by the channel's resend policy (channels.base.ResendPolicy)
AMBIGUOUS_HELD = "ambiguous_unconfirmed"
# Drain marks what it queued so the next drain does not queue it again. Short, because a job killed
# before it claimed its items leaves them waiting this long; a backlog older than this is queued twice,
# which is harmless (the claim is exclusive) and only costs a claim query.
QUEUED_LEASE = timedelta(seconds=45)
MAX_BACKOFF = timedelta(hours=1)
SEND_THREADS = 8
CHUNK = 100  # items gated and recorded per transaction
UNSUBSCRIBED_AT_PROVIDER = "21610"  # Twilio: the recipient replied STOP to Twilio itself

_MESSAGE_STATUS = {
    OutboxStatus.SENT: MessageStatus.SENT,
    OutboxStatus.DELIVERED: MessageStatus.DELIVERED,
    OutboxStatus.READ: MessageStatus.DELIVERED,
    OutboxStatus.FAILED: MessageStatus.FAILED,
    OutboxStatus.SUPPRESSED: MessageStatus.NOT_SENT,
}


def kick(item_id: int) -> None:
    """Send now (a job on RQ, inline without Redis). Call after the transaction that queued it commits."""
    enqueue(send_item, item_id, queue=JobQueue.SENDS)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... up to an hour, jittered so a provider outage does not end in a stampede."""
    base = min(timedelta(seconds=30 * 2 ** max(0, attempts - 1)), MAX_BACKOFF)
    return base * random.uniform(0.8, 1.2)


def _set_status(item: OutboxItem, message: Message | None, status: OutboxStatus, reason: str | None) -> None:
    item.status, item.reason = status, reason
    if message is not None and status in _MESSAGE_STATUS:
        message.status = _MESSAGE_STATUS[status]


@dataclass
class _Loaded:
    """A chunk's items with their messages and patients. Holding them here keeps them in the session's
    identity map (it only holds weak references), so `session.get` finds them without a query."""

    items: list[OutboxItem]
    messages: dict[int, Message]
    patients: dict[int, Patient]
    followers: dict[int, Conversation] = field(default_factory=dict)  # unlinked items' conversations


def _load(session: Session, item_ids: Sequence[int], *, lock: bool, patients: bool = True) -> _Loaded:
    """The items, their messages and (with `patients`) their patients in three queries; a fourth for
    the conversations of replies to unlinked WeChat followers, when the chunk has any."""
    query = sa.select(OutboxItem).where(OutboxItem.id.in_(item_ids)).order_by(OutboxItem.id)
    items = list(session.scalars(query.with_for_update(skip_locked=True) if lock else query))
    loaded = _Loaded(items, {}, {})
    if items:
        query_messages = sa.select(Message).where(Message.id.in_([i.message_id for i in items]))
        loaded.messages = {m.id: m for m in session.scalars(query_messages)}
        if patients:
            ids = {i.patient_id for i in items if i.patient_id is not None}
            if ids:
                query_patients = sa.select(Patient).where(Patient.id.in_(ids))
                loaded.patients = {p.id: p for p in session.scalars(query_patients)}
            unlinked = {
                loaded.messages[i.message_id].conversation_id
                for i in items
                if i.patient_id is None and i.to_staff_id is None
            }
            if unlinked:
                query_followers = sa.select(Conversation).where(Conversation.id.in_(unlinked))
                loaded.followers = {c.id: c for c in session.scalars(query_followers)}
    return loaded


def _verdict(session: Session, loaded: _Loaded, item: OutboxItem, facts: Facts, now: datetime) -> Verdict:
    if item.to_staff_id is not None:
        return judge_staff(session.get(StaffUser, item.to_staff_id), item.channel)
    if item.patient_id is not None:
        patient = loaded.patients.get(item.patient_id)
        return judge(item, patient, facts, now) if patient else Verdict(Action.SUPPRESS, "unknown_patient")
    follower = loaded.followers.get(loaded.messages[item.message_id].conversation_id)
    if follower is None or not follower.reply_to:
        return Verdict(Action.SUPPRESS, "unknown_patient")
    return judge_unlinked(item, conversation_window_open(session, follower.id, item.channel, now))


def _delivery(session: Session, loaded: _Loaded, item: OutboxItem, now: datetime) -> Delivery:
    if item.to_staff_id is not None:
        staff = session.get(StaffUser, item.to_staff_id)
        assert staff is not None
        return delivery_to_staff(session, item, staff)
    if item.patient_id is not None:
        return delivery_for(session, item, loaded.patients[item.patient_id], now)
    follower = loaded.followers[loaded.messages[item.message_id].conversation_id]
    return delivery_to_follower(session, item, follower)


def _due(item: OutboxItem, now: datetime) -> bool:
    if item.not_before > now:
        return False
    if item.status is OutboxStatus.PENDING:
        return True
    return item.status is OutboxStatus.SENDING and (item.lease_until is None or item.lease_until <= now)


@dataclass(frozen=True)
class _Claim:
    delivery: Delivery
    channel: Channel
    attempt_id: int
    ambiguous_since: datetime | None  # an earlier attempt may have reached the provider: look it up
    ambiguous: int = 0  # how many attempts ended that way
    now: datetime | None = None


@dataclass(frozen=True)
class _Done:
    result: SendResult | SendFailed
    found: bool  # the lookup found the provider already had it: nothing was sent now
    duration_ms: int


def _settle_cut_short(session: Session, items: Sequence[OutboxItem]) -> dict[int, tuple[datetime, int]]:
    """Attempts still `started` on items whose lease ran out were cut short (the sender died): they
    become `ambiguous`. Returns, per item, when its earliest ambiguous attempt began and how many
    there were."""
    cut = [item.id for item in items if item.status is OutboxStatus.SENDING]
    if cut:
        for attempt in session.scalars(
            sa.select(OutboxAttempt).where(
                OutboxAttempt.outbox_id.in_(cut), OutboxAttempt.outcome == AttemptOutcome.STARTED
            )
        ):
            attempt.outcome, attempt.code = AttemptOutcome.AMBIGUOUS, "lease_expired"
            log.warning(
                "outbox item %s: the sender died mid-send; looking it up before resending", attempt.outbox_id
            )
        session.flush()
    if not items:
        return {}
    rows = session.execute(
        sa.select(OutboxAttempt.outbox_id, sa.func.min(OutboxAttempt.started_at), sa.func.count())
        .where(
            OutboxAttempt.outbox_id.in_([item.id for item in items]),
            OutboxAttempt.outcome == AttemptOutcome.AMBIGUOUS,
        )
        .group_by(OutboxAttempt.outbox_id)
    )
    return {item_id: (since, count) for item_id, since, count in rows}


def _claim(item_ids: Sequence[int], now: datetime) -> tuple[dict[int, _Claim], dict[int, str]]:
    """Gate every due item; mark the ones that may go as `sending` with a lease and start an attempt
    for each. One transaction."""
    claimed: dict[int, _Claim] = {}
    outcomes: dict[int, str] = dict.fromkeys(item_ids, "skipped")
    with session_scope() as session:
        loaded = _load(session, item_ids, lock=True)
        items = [item for item in loaded.items if _due(item, now)]
        ambiguous = _settle_cut_short(session, items)
        facts = load_facts(session, items, now)
        for item in items:
            message = loaded.messages.get(item.message_id)
            verdict = _verdict(session, loaded, item, facts, now)
            if verdict.action is Action.SUPPRESS:
                _set_status(item, message, OutboxStatus.SUPPRESSED, verdict.reason)
                outcomes[item.id] = f"suppressed:{verdict.reason}"
            elif verdict.action is Action.DEFER:
                assert verdict.until is not None
                item.status, item.reason, item.not_before, item.lease_until = (
                    OutboxStatus.PENDING,
                    verdict.reason,
                    verdict.until,
                    None,
                )
                outcomes[item.id] = f"deferred:{verdict.reason}"
            else:
                attempt = OutboxAttempt(outbox_id=item.id, started_at=now, outcome=AttemptOutcome.STARTED)
                session.add(attempt)
                session.flush()
                delivery = _delivery(session, loaded, item, now)
                since, count = ambiguous.get(item.id, (None, 0))
                claimed[item.id] = _Claim(delivery, item.channel, attempt.id, since, count, now)
                item.status, item.lease_until = OutboxStatus.SENDING, now + LEASE
                item.attempts += 1
    return claimed, outcomes


def _deliver(claim: _Claim) -> _Done:
    started = time.monotonic()
    result, found = _call(claim)
    return _Done(result, found, int((time.monotonic() - started) * 1000))


def _call(claim: _Claim) -> tuple[SendResult | SendFailed, bool]:
    delivery, channel = claim.delivery, claim.channel
    try:
        sender = sender_for(channel)
        if claim.ambiguous_since is not None and isinstance(sender, LooksUp):
            found = sender.find_sent(delivery, claim.ambiguous_since)
            if found is not None:
                return found, True
        elif claim.ambiguous_since is not None and isinstance(sender, ResendPolicy):
            now = claim.now or claim.ambiguous_since
            if not sender.may_resend(delivery, claim.ambiguous_since, claim.ambiguous, now):
                return SendFailed(
                    "not resent: the provider may have it already and cannot say; look before sending again",
                    permanent=True,
                    code=AMBIGUOUS_HELD,
                ), False
        # the provider's per-sender rate, shared by every worker: wait for this send's slot
        settings = effective_settings()
        key = sender_key(channel, settings)
        send_rate(settings.redis_url).wait(key, settings.send_rates.get(key))
        return sender.send(delivery), False
    except SendFailed as exc:
        return exc, False
    except ChannelNotConfigured as exc:
        return SendFailed(str(exc), permanent=True, code="not_configured"), False
    except Exception as exc:  # an adapter bug must not lose the message: retry like a transient error
        log.exception("sender for %s raised; item %s will be retried", channel.value, delivery.reference)
        return SendFailed(type(exc).__name__, permanent=False), False


class _Heartbeat:
    """Extends the leases of the items being sent every `HEARTBEAT` until stopped, so only a dead
    sender's items are picked up again."""

    def __init__(self, item_ids: Sequence[int]) -> None:
        self.item_ids = list(item_ids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT.total_seconds()):
            try:
                with session_scope() as session:
                    session.execute(
                        sa.update(OutboxItem)
                        .where(OutboxItem.id.in_(self.item_ids), OutboxItem.status == OutboxStatus.SENDING)
                        .values(lease_until=utcnow() + LEASE)
                    )
            except Exception:  # a missed beat only risks a lookup-before-resend, never a lost item
                log.warning("outbox heartbeat for %d items failed", len(self.item_ids), exc_info=True)


def send_items(item_ids: Sequence[int], now: datetime | None = None) -> list[str]:
    """Job entry point (ids): gate, send and record a chunk of items. Returns each item's outcome."""
    now = now or utcnow()
    claimed, outcomes = _claim(item_ids, now)
    results: dict[int, _Done] = {}
    with _Heartbeat(list(claimed)):
        if len(claimed) == 1:
            [(item_id, claim)] = claimed.items()
            results[item_id] = _deliver(claim)
        elif claimed:  # overlap the provider round trips
            with ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="outbox") as pool:
                futures = {item_id: pool.submit(_deliver, claim) for item_id, claim in claimed.items()}
                results = {item_id: future.result() for item_id, future in futures.items()}
    if results:
        outcomes.update(_record_all(results, claimed, now))
    return [outcomes[item_id] for item_id in item_ids]


def _record_all(results: dict[int, _Done], claimed: dict[int, _Claim], now: datetime) -> dict[int, str]:
    """Record a chunk's outcomes and attempts in one transaction."""
    outcomes: dict[int, str] = {}
    with session_scope() as session:
        loaded = _load(session, list(results), lock=False, patients=False)
        for item in loaded.items:
            done = results[item.id]
            attempt = session.get(OutboxAttempt, claimed[item.id].attempt_id)
            if attempt is not None and attempt.outcome is not AttemptOutcome.STARTED:
                # Another sender took the item over after our lease ran out (this process was
                # stopped or starved): its outcome stands; ours only goes into the history.
                _record_attempt(session, item, attempt, done, "taken_over")
                outcomes[item.id] = "taken_over"
                continue
            outcome = _record(session, item, loaded.messages.get(item.message_id), done.result, now)
            if attempt is not None:
                _record_attempt(session, item, attempt, done, outcome)
            outcomes[item.id] = outcome
    return outcomes


def send_item(item_id: int, now: datetime | None = None) -> str:
    """Job entry point (an id). Returns what happened, for logs and tests."""
    return send_items([item_id], now)[0]


def attempt_outcome(result: SendResult | SendFailed, *, found: bool) -> AttemptOutcome:
    """How one attempt ended, from the adapter's answer."""
    if isinstance(result, SendResult):
        return AttemptOutcome.FOUND if found else AttemptOutcome.SENT
    if result.permanent:
        return AttemptOutcome.FAILED
    return AttemptOutcome.AMBIGUOUS if result.code in AMBIGUOUS_CODES else AttemptOutcome.RETRY


def _record_attempt(
    session: Session, item: OutboxItem, attempt: OutboxAttempt, done: _Done, outcome: str
) -> None:
    attempt.outcome = attempt_outcome(done.result, found=done.found)
    attempt.duration_ms = done.duration_ms
    if isinstance(done.result, SendFailed):
        attempt.code = (done.result.code or type(done.result).__name__)[:64]
        # the id, the channel and the provider's code: never the text or the address
        log.warning(
            "outbox item %s: %s attempt %d %s (%s, %d ms): %s",
            item.id,
            item.channel.value,
            item.attempts,
            attempt.outcome.value,
            attempt.code,
            done.duration_ms,
            outcome,
        )
    elif outcome == "taken_over":
        log.warning(
            "outbox item %s: a late %s attempt finished after another sender took over",
            item.id,
            attempt.outcome.value,
        )
    elif done.found:
        log.info("outbox item %s: the provider already had it after an ambiguous attempt", item.id)


def _record(
    session: Session,
    item: OutboxItem,
    message: Message | None,
    result: SendResult | SendFailed,
    now: datetime,
) -> str:
    item.lease_until = None
    if isinstance(result, SendResult):
        item.provider_message_id = result.provider_message_ids[0] if result.provider_message_ids else None
        item.sent_at = now  # last_error stays: the attempt history tells what came before
        _set_status(item, message, OutboxStatus.SENT, None)
        if message is not None and item.provider_message_id:
            message.provider_message_id = item.provider_message_id
        return "sent"
    item.last_error = f"{result.code or ''} {result.reason}".strip()[:300]
    if result.invalid_address and item.patient_id is not None:
        do_mark_contact_invalid(session, item.patient_id, item.channel, reason=result.code or "invalid")
    if result.code == UNSUBSCRIBED_AT_PROVIDER and item.patient_id is not None:
        do_record_provider_opt_out(session, item.patient_id, item.channel)
    if result.permanent:
        reason = (
            "window_closed"
            if result.window_closed
            else AMBIGUOUS_HELD
            if result.code == AMBIGUOUS_HELD
            else "rejected"
        )
        _set_status(item, message, OutboxStatus.FAILED, reason)
        return "failed"
    if item.attempts >= get_settings().send_max_attempts:
        _set_status(item, message, OutboxStatus.FAILED, "retries_exhausted")
        return "failed"
    wait = timedelta(seconds=result.retry_after) if result.retry_after else backoff(item.attempts)
    reason = "ambiguous" if result.code in AMBIGUOUS_CODES else "retry"
    item.status, item.reason, item.not_before = OutboxStatus.PENDING, reason, now + wait
    return "retry"


def do_record_provider_opt_out(session: Session, patient_id: int, channel: Channel) -> None:
    """The provider says the recipient unsubscribed (replied STOP to it directly): revoke here too."""
    for purpose in ConsentPurpose:
        do_revoke_consent(
            session, patient_id=patient_id, purpose=purpose, channel=channel, source="provider:opt_out"
        )


def do_mark_contact_invalid(session: Session, patient_id: int, channel: Channel, *, reason: str) -> None:
    """The provider says the number/account cannot receive. Phone channels stop; WeChat is its own flag
    (the follower left); an email address that does not exist stops email only, until staff edit it."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return
    if channel in (Channel.SMS, Channel.WHATSAPP, Channel.VOICE) and not patient.invalid_contact:
        patient.invalid_contact = True
    if channel is Channel.EMAIL:
        patient.email_bounced = True
    audit.record(
        session, "patient.contact_invalid", patient_id=patient_id, channel=channel.value, code=reason
    )


def do_record_status(
    session: Session, channel: Channel, update: StatusUpdate, now: datetime | None = None
) -> bool:
    """A provider's delivery callback. States only move forward (a late `sent` never undoes `delivered`).
    Returns whether the message was known."""
    item = session.scalars(
        sa.select(OutboxItem).where(
            OutboxItem.channel == channel, OutboxItem.provider_message_id == update.provider_message_id
        )
    ).first()
    if item is None:
        return False
    item.status_at = update.at or now or utcnow()
    new = {
        DeliveryStatus.QUEUED: OutboxStatus.SENT,
        DeliveryStatus.SENT: OutboxStatus.SENT,
        DeliveryStatus.DELIVERED: OutboxStatus.DELIVERED,
        DeliveryStatus.READ: OutboxStatus.READ,
        DeliveryStatus.FAILED: OutboxStatus.FAILED,
        DeliveryStatus.UNDELIVERED: OutboxStatus.FAILED,
    }[update.status]
    order = [OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.READ]
    if new is OutboxStatus.FAILED:
        if item.status in (OutboxStatus.SENT, OutboxStatus.SENDING):
            item.last_error = (update.error_code or "undelivered")[:300]
            _set_status(item, session.get(Message, item.message_id), OutboxStatus.FAILED, "undelivered")
        if update.invalid_address and item.patient_id is not None:
            do_mark_contact_invalid(session, item.patient_id, channel, reason=update.error_code or "invalid")
    elif item.status in order and order.index(new) > order.index(item.status):
        _set_status(item, session.get(Message, item.message_id), new, None)
    return True


def drain_outbox(now: datetime | None = None, limit: int = 2000) -> Counter[str]:
    """Periodic: queue every due item (inline mode sends them here, one transaction each)."""
    now = now or utcnow()
    with session_scope() as session:
        ids = list(
            session.scalars(
                sa.select(OutboxItem.id)
                .where(
                    sa.or_(
                        sa.and_(
                            OutboxItem.status == OutboxStatus.PENDING,
                            OutboxItem.not_before <= now,
                            sa.or_(OutboxItem.lease_until.is_(None), OutboxItem.lease_until <= now),
                        ),
                        sa.and_(OutboxItem.status == OutboxStatus.SENDING, OutboxItem.lease_until <= now),
                    )
                )
                .order_by(OutboxItem.not_before, OutboxItem.id)
                .limit(limit)
            )
        )
        if ids:
            session.execute(
                sa.update(OutboxItem)
                .where(OutboxItem.id.in_(ids), OutboxItem.status == OutboxStatus.PENDING)
                .values(lease_until=now + QUEUED_LEASE)
            )
    outcomes: Counter[str] = Counter()
    chunks = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
    if get_settings().redis_url:
        for chunk in chunks:
            enqueue(send_items, chunk, queue=JobQueue.SENDS)
        outcomes["queued"] = len(ids)
        return outcomes
    for chunk in chunks:
        try:
            outcomes.update(outcome.split(":")[0] for outcome in send_items(chunk, now))
        except Exception:
            log.exception("outbox chunk of %d failed to send; its items stay due", len(chunk))
            outcomes["error"] += len(chunk)
    return outcomes


_WINDOW_HOURS = {Channel.WECHAT: 48, Channel.WHATSAPP: 24}


def window_open(session: Session, patient_id: int, channel: Channel, now: datetime) -> bool:
    """The provider's free-form window: WeChat 48 h, WhatsApp 24 h after the patient's last message."""
    return _window_open(session, Conversation.patient_id == patient_id, channel, now)


def conversation_window_open(session: Session, conversation_id: int, channel: Channel, now: datetime) -> bool:
    """The same window, after the last message in one conversation (an unlinked follower's)."""
    return _window_open(session, Conversation.id == conversation_id, channel, now)


def _window_open(session: Session, which: sa.ColumnElement[bool], channel: Channel, now: datetime) -> bool:
    hours = _WINDOW_HOURS.get(channel)
    if hours is None:
        return True
    last = session.scalar(
        sa.select(sa.func.max(Message.created_at))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(which, Message.channel == channel, Message.direction == Direction.INBOUND)
    )
    return last is not None and last > now - timedelta(hours=hours)
