"""Outreach batches: create one (a segment or an uploaded list), preview it, approve it, send it, cancel it.

Nothing is sent without a preview: `do_send` takes the id of a preview the same person rendered for the
batch, computes the counts again and refuses if they hash differently (someone revoked consent, a
patient was discharged into the segment). A batch that would reach more patients than the configured
threshold also needs the approval of a second person, given on a preview with the same counts. The send
itself is long work (`backend.outreach.sending`); every item it queues still passes the outbox gates
when it goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import Settings, get_settings
from backend.audiences.filters import Audience, patient_ids
from backend.audiences.preview import GateCounts, gate_counts, listed
from backend.models import (
    BatchPurpose,
    BatchState,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    OutreachBatch,
    OutreachPreview,
    StaffUser,
    WorkJob,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import EXTERNAL
from backend.outbox.providers import template_for
from backend.outreach.lists import match_list
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from backend.work import runs
from bots.domain import LANGUAGES, Channel, pick_language
from channels.segments import encoding_of, split_segments

SEND_KIND = "outreach.send"
MAX_TEXT = 1000
# WeChat and WhatsApp messages to patients who have not written lately go as approved templates
TEMPLATE_KEY = {Channel.WECHAT: "notice", Channel.WHATSAPP: "notice"}
WECHAT_FIELD_LIMIT = 20  # characters per template field that WeChat shows in full


def _refuse(reason: Reason) -> ActionRefused:
    return ActionRefused(reason)


def do_create_batch(
    session: Session,
    *,
    staff: StaffUser,
    name: str,
    purpose: BatchPurpose,
    channel: Channel,
    messages: Mapping[str, str],
    audience: Audience | None = None,
    listing: str | None = None,
) -> OutreachBatch:
    """A draft batch to a segment (`audience`) or to the rows of an uploaded list (`listing`)."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise _refuse(Reason.BATCH_NAME)
    texts = {lang: text.strip() for lang, text in messages.items() if lang in LANGUAGES and text.strip()}
    if not texts or any(len(text) > MAX_TEXT for text in texts.values()):
        raise _refuse(Reason.BATCH_MESSAGE)
    if channel not in EXTERNAL:
        raise _refuse(Reason.CHANNEL_NOT_SUPPORTED)
    if (audience is None) == (listing is None):
        raise _refuse(Reason.BATCH_RECIPIENTS)
    batch = OutreachBatch(
        name=name,
        purpose=purpose,
        channel=channel,
        messages=texts,
        audience=audience.to_json() if audience is not None else None,
        unmatched_rows=[],
        state=BatchState.DRAFT,
        created_by_id=staff.id,
    )
    if listing is not None:
        matched = match_list(session, listing)
        if matched.rows == 0:
            raise _refuse(Reason.BATCH_LIST)
        batch.listed_patient_ids = matched.patient_ids
        batch.unmatched_rows = matched.unmatched
    session.add(batch)
    session.flush()
    audit.record(
        session,
        "outreach.create",
        staff_id=staff.id,
        subject=("outreach_batch", batch.id),
        purpose=purpose.value,
        channel=channel.value,
        listed=len(batch.listed_patient_ids or []),
        unmatched=len(batch.unmatched_rows),
    )
    return batch


def recipient_ids(session: Session, batch: OutreachBatch, now: datetime) -> list[int]:
    """The batch's patients now, sorted: the segment evaluated today, or the uploaded list's matches."""
    if batch.audience is None:
        return sorted(set(batch.listed_patient_ids or []))
    audience = Audience.from_json(batch.audience)
    return list(session.scalars(patient_ids(audience, now.date())))


def counts_now(session: Session, batch: OutreachBatch, now: datetime) -> GateCounts:
    """What the outbox gates would do now with the batch's items."""
    if batch.audience is not None:
        population = patient_ids(Audience.from_json(batch.audience), now.date())
        return gate_counts(session, population, batch.channel, batch.purpose.consent, now)
    ids = set(batch.listed_patient_ids or [])
    counts = gate_counts(session, listed(session, sorted(ids)), batch.channel, batch.purpose.consent, now)
    if gone := len(ids) - counts.total:  # merged away or removed since the list was matched
        counts.suppress["unknown_patient"] += gone
    return counts


def needs_approval(counts: GateCounts, settings: Settings) -> bool:
    return counts.reachable > settings.outreach_approval_threshold


def _draft(batch: OutreachBatch) -> None:
    if batch.state is not BatchState.DRAFT:
        raise _refuse(Reason.BATCH_NOT_DRAFT)


def do_preview(
    session: Session, batch: OutreachBatch, staff: StaffUser, now: datetime | None = None
) -> OutreachPreview:
    """Count what would be sent, deferred and suppressed now, and keep it under the viewer's name."""
    _draft(batch)
    counts = counts_now(session, batch, now or utcnow())
    preview = OutreachPreview(
        batch_id=batch.id, staff_id=staff.id, counts=counts.to_json(), counts_hash=counts.digest()
    )
    session.add(preview)
    session.flush()
    audit.record(
        session,
        "outreach.preview",
        staff_id=staff.id,
        subject=("outreach_batch", batch.id),
        preview_id=preview.id,
        send=counts.send,
        total=counts.total,
    )
    return preview


def _own_preview(
    session: Session, batch: OutreachBatch, staff: StaffUser, preview_id: int
) -> OutreachPreview:
    preview = session.get(OutreachPreview, preview_id)
    if preview is None or preview.batch_id != batch.id or preview.staff_id != staff.id:
        raise _refuse(Reason.PREVIEW_REQUIRED)
    return preview


def do_approve(session: Session, batch: OutreachBatch, staff: StaffUser, preview_id: int) -> None:
    """A second person approves the counts she was shown (her own preview of this batch)."""
    _draft(batch)
    if staff.id == batch.created_by_id:
        raise _refuse(Reason.OWN_BATCH)
    preview = _own_preview(session, batch, staff, preview_id)
    batch.approved_by_id, batch.approved_at, batch.approved_preview_id = staff.id, utcnow(), preview.id
    audit.record(
        session,
        "outreach.approve",
        staff_id=staff.id,
        subject=("outreach_batch", batch.id),
        preview_id=preview.id,
    )


def do_send(
    session: Session,
    batch: OutreachBatch,
    staff: StaffUser,
    preview_id: int,
    now: datetime | None = None,
    at: datetime | None = None,
) -> WorkJob | None:
    """Start sending, or with a later `at` schedule it: refused unless `preview_id` is this person's
    preview of this batch and the counts are still those it showed (and, over the threshold, a second
    person approved the same counts). The caller commits, then `runs.launch(job.id)`; a scheduled batch
    has no job until `start_scheduled_batches` reaches its time (None)."""
    _draft(batch)
    now = now or utcnow()
    if at is not None and at <= now:
        raise _refuse(Reason.SEND_TIME_PAST)
    preview = _own_preview(session, batch, staff, preview_id)
    counts = counts_now(session, batch, now)
    if counts.digest() != preview.counts_hash:
        raise _refuse(Reason.COUNTS_CHANGED)
    if counts.reachable == 0:
        raise _refuse(Reason.NOTHING_TO_SEND)
    if needs_approval(counts, get_settings()):
        approved = session.get(OutreachPreview, batch.approved_preview_id or 0)
        if approved is None or approved.counts_hash != preview.counts_hash:
            raise _refuse(Reason.APPROVAL_REQUIRED)
    if at is not None:
        batch.state, batch.scheduled_for = BatchState.SCHEDULED, at
        audit.record(
            session,
            "outreach.schedule",
            staff_id=staff.id,
            subject=("outreach_batch", batch.id),
            preview_id=preview.id,
            at=at.isoformat(),
            send=counts.send,
            defer=sum(counts.defer.values()),
        )
        return None
    job = _start_job(session, batch, staff.id, now)
    audit.record(
        session,
        "outreach.send",
        staff_id=staff.id,
        subject=("outreach_batch", batch.id),
        preview_id=preview.id,
        job_id=job.id,
        send=counts.send,
        defer=sum(counts.defer.values()),
    )
    return job


def _start_job(session: Session, batch: OutreachBatch, staff_id: int | None, now: datetime) -> WorkJob:
    job = runs.start(session, SEND_KIND, {"batch_id": batch.id}, staff_id)
    batch.state, batch.job_id, batch.send_started_at = BatchState.SENDING, job.id, now
    return job


def start_scheduled_batches(session: Session, now: datetime | None = None) -> list[int]:
    """The periodic job's part: scheduled batches whose time has come start sending (their recipients are
    read now, and every item still passes the gates when it goes: consent withdrawn meanwhile is
    honoured). Returns the jobs to launch once the caller has committed."""
    now = now or utcnow()
    due = session.scalars(
        sa.select(OutreachBatch)
        .where(OutreachBatch.state == BatchState.SCHEDULED, OutreachBatch.scheduled_for <= now)
        .order_by(OutreachBatch.scheduled_for, OutreachBatch.id)
        .with_for_update(skip_locked=True)
    ).all()
    jobs = []
    for batch in due:
        job = _start_job(session, batch, batch.created_by_id, now)
        audit.record(
            session, "outreach.send", subject=("outreach_batch", batch.id), job_id=job.id, scheduled=True
        )
        jobs.append(job.id)
    return jobs


def do_cancel(session: Session, batch: OutreachBatch, staff: StaffUser) -> int:
    """Stop a batch: its job stops at the next chunk, and items queued but not yet handed to a provider
    (waiting for quiet hours to end, say) are withdrawn, suppressed as cancelled. Returns how many."""
    if batch.state is BatchState.CANCELLED:
        raise _refuse(Reason.BATCH_NOT_DRAFT)
    job = session.get(WorkJob, batch.job_id) if batch.job_id else None
    if job is not None:
        runs.request_cancel(session, job)
    batch.state = BatchState.CANCELLED
    pending = sa.select(OutboxItem.id).where(
        OutboxItem.batch_id == batch.outbox_key, OutboxItem.status == OutboxStatus.PENDING
    )
    message_ids = sa.select(OutboxItem.message_id).where(OutboxItem.id.in_(pending))
    session.execute(
        sa.update(Message).where(Message.id.in_(message_ids)).values(status=MessageStatus.NOT_SENT)
    )
    withdrawn = session.execute(
        sa.update(OutboxItem)
        .where(OutboxItem.batch_id == batch.outbox_key, OutboxItem.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SUPPRESSED, reason="batch_cancelled")
    ).rowcount  # type: ignore[attr-defined]
    audit.record(
        session,
        "outreach.cancel",
        staff_id=staff.id,
        subject=("outreach_batch", batch.id),
        withdrawn=withdrawn,
    )
    return int(withdrawn)


@dataclass(frozen=True)
class Rendered:
    """The message one language's patients get: its text, SMS cost, and template fields where used."""

    lang: str
    text: str
    encoding: str
    segments: int
    template_fields: dict[str, str]
    long_fields: tuple[str, ...]  # WeChat fields over the limit (cut on the phone)


def message_for(batch: OutreachBatch, language: str) -> str:
    """The patient's language if the batch has it, else the first one written (zh-CN, vi, en order)."""
    lang = pick_language(language)
    if lang in batch.messages:
        return batch.messages[lang]
    return next(batch.messages[code] for code in LANGUAGES if code in batch.messages)


def rendered(batch: OutreachBatch, settings: Settings, session: Session | None = None) -> list[Rendered]:
    out = []
    for lang in LANGUAGES:
        if lang not in batch.messages:
            continue
        text = batch.messages[lang]
        fields: dict[str, str] = {}
        key = TEMPLATE_KEY.get(batch.channel)
        if key is not None:
            probe = OutboxItem(
                channel=batch.channel,
                kind=OutboxKind.OUTREACH,
                template_key=key,
                template_vars={"text": text},
            )
            template = template_for(probe, lang, settings, session)
            fields = dict(template.variables) if template is not None else {}
        long_fields = (
            tuple(k for k, v in fields.items() if len(v) > WECHAT_FIELD_LIMIT)
            if batch.channel is Channel.WECHAT
            else ()
        )
        out.append(Rendered(lang, text, encoding_of(text), len(split_segments(text)), fields, long_fields))
    return out
