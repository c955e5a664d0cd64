"""Sending a batch as long work: queue one outbox item per patient, a chunk at a time, and hand each chunk
to the sender.

The recipients are read when the job starts (a resumed job reads them again), in patient id order; the
cursor is the last patient whose chunk committed, so a resumed job carries on after it. Queuing and the
checkpoint commit together, and the outbox's unique (batch, patient) index makes a second item for the
same patient impossible even if two runs overlapped. Queuing decides nothing: the sender judges every
item when it goes (consent, exclusions, quiet hours, caps), so a patient who revokes consent while the
batch runs gets nothing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.jobs import enqueue
from backend.app.queues import JobQueue
from backend.followup.eligibility import channel_address
from backend.models import BatchState, OutboxItem, OutreachBatch, Patient
from backend.models.base import utcnow
from backend.outbox.enqueue import do_enqueue_batch
from backend.outbox.sender import send_items
from backend.outreach.batches import SEND_KIND, TEMPLATE_KEY, message_for, recipient_ids
from backend.work.runs import Progress, Runner, WorkError, register
from bots.messages import Outbound, Text

CHUNK = 500


def _batch(session: Session, progress: Progress) -> OutreachBatch:
    batch = session.get(OutreachBatch, int(progress.params["batch_id"]))
    if batch is None:
        raise WorkError("the batch no longer exists")
    return batch


def _queue_chunk(session: Session, batch: OutreachBatch, chunk: list[int], staff_id: int | None) -> list[int]:
    """Queue the chunk's items (skipping patients who already have one); returns the new items' ids."""
    already = set(
        session.scalars(
            sa.select(OutboxItem.patient_id).where(
                OutboxItem.batch_id == batch.outbox_key, OutboxItem.patient_id.in_(chunk)
            )
        )
    )
    fresh = [patient_id for patient_id in chunk if patient_id not in already]
    if not fresh:
        return []

    def outbound_for(patient: Patient) -> Outbound:
        return Outbound((Text(message_for(batch, patient.language)),))

    do_enqueue_batch(
        session,
        patient_ids=fresh,
        channel=batch.channel,
        outbound_for=outbound_for,
        address_for=lambda patient: channel_address(patient, batch.channel),
        batch_id=batch.outbox_key,
        purpose=batch.purpose.consent,
        template_key=TEMPLATE_KEY.get(batch.channel),
        staff_id=staff_id,
    )
    return list(
        session.scalars(
            sa.select(OutboxItem.id)
            .where(OutboxItem.batch_id == batch.outbox_key, OutboxItem.patient_id.in_(fresh))
            .order_by(OutboxItem.id)
        )
    )


def send_batch(progress: Progress) -> dict[str, Any]:
    with session_scope() as session:
        batch = _batch(session, progress)
        if batch.state is not BatchState.SENDING:
            raise WorkError("the batch is not being sent (cancelled?)")
        staff_id = batch.created_by_id
        ids = recipient_ids(session, batch, batch.send_started_at or utcnow())
    after = int((progress.cursor or {}).get("after", 0))
    progress.total = len(ids)
    remaining = [patient_id for patient_id in ids if patient_id > after]
    progress.done = len(ids) - len(remaining)
    for start in range(0, len(remaining), CHUNK):
        chunk = remaining[start : start + CHUNK]
        with session_scope() as session:
            batch = _batch(session, progress)
            item_ids = _queue_chunk(session, batch, chunk, staff_id)
            progress.advance(len(chunk), queued=len(item_ids))
            progress.checkpoint(session, {"after": chunk[-1]})
        if item_ids:
            # after the commit: the sender (an RQ job, or right here without Redis) gates and sends them
            enqueue(send_items, item_ids, queue=JobQueue.SENDS)
    with session_scope() as session:
        batch = _batch(session, progress)
        if batch.state is BatchState.SENDING:
            batch.state = BatchState.SENT
    return {"batch_id": int(progress.params["batch_id"]), "queued": progress.counts.get("queued", 0)}


register(
    Runner(
        kind=SEND_KIND,
        run=send_batch,
        title="Outreach batch send",
        result_url=lambda job: f"/staff/outreach/{(job.params or {}).get('batch_id')}",
    )
)
