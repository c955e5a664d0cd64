"""One received HL7 message: kept, applied and acknowledged, in that order, exactly once per content.

The message row and what it changes are written in one transaction: the row first, then the facts
applied inside a savepoint, so a message that fails to apply is still kept with its error. The ACK
is built from the committed row and only returned after the commit: an AA means the facts are durable,
and a sender that got no ACK (listener killed) resends, finds the row and gets the same answer again
without anything applied twice.

Idempotency key: (MSH-3, MSH-4, MSH-10) with the content hash (MSH-7 left out, it changes on resend).
The same key with other content is kept, not applied, and answered AE (ERR 205 on MSH-10): an AA would
tell the sender the new content is in our records when it is not, and the sender's operators are the
ones who can say why their engine reused a control id. Staff see the held message in the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, defer, sessionmaker

from backend.app.settings import Settings
from backend.integration.ack import AckAddress, AckCode, build_ack
from backend.integration.adt import ApplyConfig, apply_adt
from backend.integration.batch import batch_reply, is_batch, split_batch
from backend.integration.his_appointments import UnknownAppointment
from backend.integration.hl7_parse import (
    ErrorCode,
    Header,
    InvalidField,
    RawHeader,
    Unparseable,
    content_hash,
    decode,
    normalise_segments,
    parse,
    sniff_header,
)
from backend.integration.mllp import Event, Frame, FramingError
from backend.integration.records import IdentityConflict
from backend.integration.siu import apply_siu
from backend.models import Hl7Message, Hl7Status
from backend.models.base import utcnow
from backend.services import audit

log = logging.getLogger(__name__)
ATTEMPTS = 3  # a unique-key race with another connection (same new patient at once) is retried


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    apply: ApplyConfig
    fallback_charset: str
    crash_after_commit: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ReceiverConfig:
        return cls(
            apply=ApplyConfig(
                zone=ZoneInfo(settings.default_timezone),
                default_language=settings.default_language,
                default_timezone=settings.default_timezone,
                region=settings.default_region,
                death_dispositions=frozenset(settings.hl7_death_dispositions),
                mrn_authorities=tuple(settings.hl7_mrn_authorities),
            ),
            fallback_charset=settings.hl7_fallback_charset,
            crash_after_commit=settings.hl7_crash_after_commit,
        )


REPROCESSABLE = {Hl7Status.HELD, Hl7Status.INVALID, Hl7Status.FAILED}
STATUS_ACK = {
    Hl7Status.APPLIED: AckCode.ACCEPT,
    Hl7Status.IGNORED: AckCode.ACCEPT,
    Hl7Status.INVALID: AckCode.ERROR,
    Hl7Status.HELD: AckCode.ERROR,
    Hl7Status.FAILED: AckCode.ERROR,
    Hl7Status.REJECTED: AckCode.REJECT,
}


def _address_from_raw(raw: RawHeader | None, control_id: str = "") -> AckAddress:
    if raw is None:
        return AckAddress(control_id=control_id)

    component = raw.get(2)[:1] or "^"  # MSH-2 may declare other encoding characters

    def first(position: int) -> str:
        return raw.get(position).split(component)[0][:180]

    return AckAddress(
        sending_application=first(3),
        sending_facility=first(4),
        receiving_application=first(5),
        receiving_facility=first(6),
        control_id=control_id or raw.get(10)[:199],
        trigger=raw.get(9).split(component)[1][:8] if component in raw.get(9) else "",
        version=raw.get(12).split(component)[0][:16] or "2.5",
    )


def _ack(row: Hl7Message, address: AckAddress) -> str:
    error = None
    if row.error_location and row.ack_code != AckCode.ACCEPT:
        segment, _, position = row.error_location.partition("-")
        error = InvalidField(
            segment, int(position) if position.isdigit() else None, row.error_code or 207, row.outcome
        )
    text = row.outcome if row.ack_code != AckCode.ACCEPT else row.status.value
    return build_ack(address, row.ack_code, text=text, error=error, ack_control_id=f"CL{row.id}")


_EARLIER = (  # the rows of one idempotency key; built once
    sa.select(Hl7Message)
    .options(defer(Hl7Message.payload))  # sealed; only its hash matters here
    .where(
        Hl7Message.sending_application == sa.bindparam("application"),
        Hl7Message.sending_facility == sa.bindparam("facility"),
        Hl7Message.control_id == sa.bindparam("control_id"),
    )
)


def _lock_key(session: Session, header: Header) -> None:
    """Serialise work on one control id across connections (SQLite's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        key = f"{header.sending_application}\x00{header.sending_facility}\x00{header.control_id}"
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})


def _set_outcome(row: Hl7Message, status: Hl7Status, outcome: str, error: InvalidField | None = None) -> None:
    row.status = status
    row.ack_code = STATUS_ACK[status]
    row.outcome = outcome[:2000]
    row.error_location = error.location if error is not None else None
    row.error_code = error.code if error is not None else None
    row.processed_at = utcnow()


class Receiver:
    """Turns one MLLP event into the ACK bytes; blocking (database), so the listener runs it in a thread."""

    def __init__(self, sessions: sessionmaker[Session], config: ReceiverConfig) -> None:
        self._sessions = sessions
        self._config = config

    def handle(self, event: Event, peer: str) -> bytes:
        if isinstance(event, FramingError):
            return self._reject(event.head, peer, f"MLLP framing: {event.reason}", store=False).encode()
        assert isinstance(event, Frame)
        if is_batch(event.payload):
            return self._batch(event.payload, peer)
        ack, codec = self._one(event.payload, peer)
        return ack.encode(codec, errors="replace")

    def _batch(self, payload: bytes, peer: str) -> bytes:
        """Each message of a batch received as if it came alone; the answer is the batch of their ACKs."""
        envelope, messages = split_batch(payload)
        acks = [self._one(message, peer) for message in messages]
        log.info("hl7 batch of %d messages from %s", len(messages), peer)
        return batch_reply(envelope, [ack for ack, _ in acks]).encode(
            acks[0][1] if acks else "utf-8", errors="replace"
        )

    def _one(self, payload: bytes, peer: str) -> tuple[str, str]:
        """The ACK for one message and the codec to write it in (the message's own)."""
        try:
            raw = sniff_header(payload)
        except Unparseable as exc:
            return self._reject(payload, peer, exc.reason), "utf-8"
        try:
            text, codec = decode(payload, raw, self._config.fallback_charset)
            text = normalise_segments(text)
            message, header = parse(text, codec)
        except Unparseable as exc:
            return self._reject(payload, peer, exc.reason, raw=raw, control_id=exc.control_id), "utf-8"
        address = AckAddress.of(header)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                ack, row_id, fresh = self._receive(message, header, text, codec, payload, peer, address)
                break
            except (IntegrityError, OperationalError) as exc:
                if attempt == ATTEMPTS:
                    raise
                log.info(
                    "hl7 %s: retrying after a conflict with another connection (%s)", header.control_id, exc
                )
        # (only when this call wrote the row: the resend that follows is answered, as in production)
        if fresh and self._config.crash_after_commit and header.control_id == self._config.crash_after_commit:
            log.warning("hl7 test hook: dying after the commit of message row %s, before its ACK", row_id)
            os.kill(os.getpid(), signal.SIGKILL)
        return ack, codec

    def _receive(
        self,
        message: Any,
        header: Header,
        text: str,
        codec: str,
        payload: bytes,
        peer: str,
        address: AckAddress,
    ) -> tuple[str, int, bool]:
        try:
            return self._receive_once(message, header, text, codec, payload, peer, address, None)
        except _NotApplied as failed:
            # The facts were rolled back with everything else; the message is kept with its error in a
            # transaction of its own (the lock and the lookup are taken again: a resend may have raced).
            return self._receive_once(message, header, text, codec, payload, peer, address, failed.outcome)

    def _receive_once(
        self,
        message: Any,
        header: Header,
        text: str,
        codec: str,
        payload: bytes,
        peer: str,
        address: AckAddress,
        failure: Outcome | None,
    ) -> tuple[str, int, bool]:
        """One transaction: the lock on the key, the earlier rows, the facts applied, then the row itself
        (inserted once, with its outcome). No savepoint and no second write of the row on the common path:
        a message whose facts cannot be applied raises _NotApplied, which rolls the transaction back, and
        is then kept with `failure` as its outcome."""
        digest = content_hash(text)
        with self._sessions.begin() as session:
            _lock_key(session, header)
            earlier = session.scalars(
                _EARLIER,
                {
                    "application": header.sending_application,
                    "facility": header.sending_facility,
                    "control_id": header.control_id,
                },
            ).all()
            same = next((row for row in earlier if row.content_hash == digest), None)
            if same is not None and not same.status.retried_on_resend:
                log.info(
                    "hl7 %s resent: answered %s again, not applied again", header.control_id, same.ack_code
                )
                return _ack(same, address), same.id, False
            row = same or Hl7Message(
                peer=peer[:64],
                sending_application=header.sending_application,
                sending_facility=header.sending_facility,
                control_id=header.control_id,
                content_hash=digest,
                message_type=header.message_type[:16],
                version=header.version,
                charset=codec[:32],
                size=len(payload),
                payload=payload,
            )
            if same is None and earlier:
                _set_outcome(
                    row,
                    Hl7Status.HELD,
                    "control id already used with other content; held for review",
                    InvalidField("MSH", 10, ErrorCode.DUPLICATE_KEY, "MSH-10 reused with different content"),
                )
                session.add(row)
                session.flush()
                log.warning("hl7 %s: same key, different content: held", header.control_id)
                return _ack(row, address), row.id, True
            if failure is None:
                outcome = _apply(session, message, header, self._config)
                if outcome.status is not Hl7Status.APPLIED and outcome.status is not Hl7Status.IGNORED:
                    raise _NotApplied(outcome)
            else:
                outcome = failure
            _record(row, outcome)
            session.add(row)
            session.flush()
            return _ack(row, address), row.id, True

    def reprocess(self, message_id: int, *, staff_id: int | None) -> Hl7Message:
        """`do_reprocess` in a transaction of its own."""
        with self._sessions.begin() as session:
            return do_reprocess(session, message_id, self._config, staff_id=staff_id)

    def _reject(
        self,
        payload: bytes,
        peer: str,
        reason: str,
        *,
        raw: RawHeader | None = None,
        control_id: str = "",
        store: bool = True,
    ) -> str:
        """AR; the bytes are kept (sealed) so staff can see what was sent, once per distinct content."""
        log.warning("hl7 from %s rejected: %s", peer, reason)
        if raw is None:
            try:
                raw = sniff_header(payload)
            except Unparseable:
                raw = None
        address = _address_from_raw(raw, control_id)
        error = InvalidField("MSH", None, ErrorCode.SEGMENT_SEQUENCE, reason)
        row_id = 0
        if store:
            digest = hashlib.sha256(payload).hexdigest()
            with self._sessions.begin() as session:
                row = session.scalars(sa.select(Hl7Message).where(Hl7Message.content_hash == digest)).first()
                if row is None:
                    row = Hl7Message(
                        peer=peer[:64],
                        sending_application=address.sending_application,
                        sending_facility=address.sending_facility,
                        control_id=address.control_id,
                        content_hash=digest,
                        size=len(payload),
                        payload=payload,
                    )
                    _set_outcome(row, Hl7Status.REJECTED, reason, error)
                    session.add(row)
                    session.flush()
                row_id = row.id
        return build_ack(
            address, AckCode.REJECT, text=reason, error=error, ack_control_id=f"CL{row_id or 'R'}"
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying a message came to, to be written on its row."""

    status: Hl7Status
    text: str
    error: InvalidField | None = None
    patient_id: int | None = None
    encounter_id: int | None = None


class _NotApplied(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.text)
        self.outcome = outcome


def _apply(session: Session, message: Any, header: Header, config: ReceiverConfig) -> Outcome:
    """Apply the facts in the caller's transaction; bad data becomes an Outcome (never raised), a race
    with another connection is raised for the whole unit to be retried. When the outcome is not
    applied or ignored, the caller must not commit what was written (a savepoint or a rollback)."""
    try:
        apply = apply_siu if header.message_code == "SIU" else apply_adt
        applied = apply(session, message, header, config.apply)
    except InvalidField as exc:
        return Outcome(Hl7Status.INVALID, exc.reason, exc)
    except IdentityConflict as exc:
        location = {"patient": ("PID", 3), "appointment": ("SCH", 2)}.get(exc.about, ("PV1", 19))
        return Outcome(
            Hl7Status.HELD, f"{exc.reason}; held for review", InvalidField(*location, 207, exc.reason)
        )
    except UnknownAppointment as exc:
        # held, not invalid: a cancellation that overtook its booking applies once the booking is in
        return Outcome(
            Hl7Status.HELD,
            f"{exc.reason}; held for review",
            InvalidField("SCH", 2, ErrorCode.UNKNOWN_KEY, exc.reason),
        )
    except (IntegrityError, OperationalError):
        raise  # a race with another connection: the whole unit is retried
    except Exception as exc:
        log.exception("hl7 %s could not be applied", header.control_id)
        return Outcome(
            Hl7Status.FAILED,
            f"internal error: {type(exc).__name__}",
            InvalidField("MSH", 10, ErrorCode.INTERNAL_ERROR, "internal error; a resend is applied anew"),
        )
    return Outcome(applied.status, applied.outcome, None, applied.patient_id, applied.encounter_id)


def _record(row: Hl7Message, outcome: Outcome) -> None:
    _set_outcome(row, outcome.status, outcome.text, outcome.error)
    if outcome.status in (Hl7Status.APPLIED, Hl7Status.IGNORED):
        row.patient_id = outcome.patient_id
        row.encounter_id = outcome.encounter_id


def apply_kept(
    session: Session, row: Hl7Message, message: Any, header: Header, config: ReceiverConfig
) -> None:
    """Apply a stored message in a savepoint and record the outcome on its row (never raises for bad data)."""
    savepoint = session.begin_nested()
    try:
        outcome = _apply(session, message, header, config)
    except BaseException:
        savepoint.rollback()
        raise
    if outcome.status in (Hl7Status.APPLIED, Hl7Status.IGNORED):
        savepoint.commit()
    else:
        savepoint.rollback()
    _record(row, outcome)


def do_reprocess(
    session: Session, message_id: int, config: ReceiverConfig, *, staff_id: int | None
) -> Hl7Message:
    """Apply a kept message again, by a person's decision: a held one (its key was reused, or its
    identifiers named two patients until someone merged them), an invalid or a failed one. Audited,
    in the caller's transaction; ValueError when the message is not one to reprocess."""
    row = session.get_one(Hl7Message, message_id)
    if row.status not in REPROCESSABLE:
        raise ValueError(f"a {row.status.value} message is not reprocessed")
    try:
        raw = sniff_header(row.payload)
        text, codec = decode(row.payload, raw, config.fallback_charset)
        message, header = parse(normalise_segments(text), codec)
    except Unparseable as exc:
        raise ValueError(f"the kept message cannot be read: {exc.reason}") from None
    before = row.status
    apply_kept(session, row, message, header, config)
    audit.record(
        session,
        "integration.reprocessed",
        staff_id=staff_id,
        patient_id=row.patient_id,
        subject=("hl7_message", row.id),
        before=before.value,
        after=row.status.value,
    )
    session.flush()
    return row
