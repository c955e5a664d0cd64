"""Malformed frames and messages are answered (AR) or dropped cleanly; the listener and the connection
carry on, and a good message right after is applied."""

from __future__ import annotations

import random
import socket

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Hl7Message, Hl7Status, Patient
from tests.backend.integration.hl7_peer import END, START, MllpPeer, adt
from tests.conftest import reset_caches

Address = tuple[str, int]


def _good_message_still_works(peer: MllpPeer, control_id: str = "GOOD1") -> None:
    assert peer.send(adt("A01", control_id)).code == "AA"


def _junk(size: int, seed: int = 7) -> bytes:
    generator = random.Random(seed)
    return bytes(b for b in generator.randbytes(size) if b not in (0x0B, 0x1C))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"PID|1||X1^^^HOSP\rPV1|1|I\r", "does not start with an MSH"),
        (b"MSHX^~\\&XHISXHOSP\r", "field separator"),
        (b"MSH||HIS|HOSP|CL|CL|2026||ADT^A01|X|P|2.5\r", "encoding characters"),
        (b"MSH|^~\\&|HIS|HOSP|CL|CL|2026||ADT^A01||P|2.5\rPID|1||X\r", "MSH-10"),
        (b"MSH|^~\\&|HIS|HOSP|CL|CL|2026||ADT^A01|Q1|P|3.0\rPID|1||X\r", "not HL7 v2"),
        (adt("A01", "U1").encode("utf-8").replace(b"Zhang", b"Zh\xff\xfeng"), "not valid UNICODE UTF-8"),
        (b"MSH|^~\\&|HIS|HOSP|CL|CL|2026||ADT^A01|C1|P|2.5|||||CHN|KLINGON\r", "character set"),
        (_junk(2000), "does not start with an MSH"),
    ],
    ids=["no-msh", "bad-field-separator", "no-encoding-chars", "no-control-id", "not-v2", "bad-utf8",
         "charset", "binary-junk"],
)  # fmt: skip
def test_unreadable_messages_get_ar_and_the_connection_goes_on(
    hl7_address: Address, db: Session, payload: bytes, reason: str
) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(payload)
        assert ack.code == "AR"
        assert reason in ack.segments["ERR"][8].replace("\\T\\", "&")
        _good_message_still_works(peer)
    db.expire_all()
    statuses = sorted(m.status for m in db.scalars(sa.select(Hl7Message)))
    assert statuses == [Hl7Status.APPLIED, Hl7Status.REJECTED]  # the unreadable bytes are kept too


def test_ar_for_a_readable_header_is_addressed_to_its_sender(hl7_address: Address) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(b"MSH|^~\\&|HIS|HOSP|CL|CL|2026||ADT^A01|Q1|P|3.0\rPID|1||X\r")
    assert ack.code == "AR" and ack.control_id == "Q1"
    assert ack.segments["MSH"][4:6] == ["HIS", "HOSP"]


def test_oversized_message_is_refused_and_the_connection_stays_in_step(
    hl7_address: Address, db: Session
) -> None:
    big = adt("A01", "BIG1").encode() + b"NTE|1||" + b"x" * (10 * 1024 * 1024 + 10) + b"\r"
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(big)
        assert ack.code == "AR" and ack.control_id == "BIG1"
        assert "over the 10485760-byte limit" in ack.note
        _good_message_still_works(peer)
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1


def test_bytes_outside_frames_are_skipped(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        peer.send_raw(b"garbage before any frame\r\n" + _junk(500))
        _good_message_still_works(peer)


def test_a_frame_cut_short_by_a_new_start_block_is_answered_ar(hl7_address: Address) -> None:
    with MllpPeer(*hl7_address) as peer:
        peer.send_raw(START + adt("A01", "CUT1").encode()[:120])
        ack = peer.send(adt("A01", "NEXT1"))  # its start block ends the cut frame
        assert (ack.code, ack.control_id) == ("AR", "CUT1")
        assert peer.read_ack().code == "AA"


def test_end_block_without_cr_is_accepted(hl7_address: Address) -> None:
    with MllpPeer(*hl7_address) as peer:
        peer.send_raw(START + adt("A01", "NOCR").encode() + b"\x1c")
        assert peer.read_ack().code == "AA"


def test_truncated_frame_then_hang_up_leaves_the_listener_serving(hl7_address: Address, db: Session) -> None:
    sock = socket.create_connection(hl7_address, timeout=5)
    sock.sendall(START + adt("A01", "HALF").encode()[:100])
    sock.close()
    with MllpPeer(*hl7_address) as peer:
        _good_message_still_works(peer)
    assert db.scalar(sa.select(sa.func.count()).select_from(Hl7Message)) == 1


@pytest.fixture
def short_frame_timeout(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_HL7_FRAME_TIMEOUT_SECONDS", "0.5")
    reset_caches()


def test_frame_left_unfinished_is_answered_after_the_timeout(
    short_frame_timeout: None, hl7_address: Address
) -> None:
    with MllpPeer(*hl7_address) as peer:
        peer.send_raw(START + adt("A01", "STALL").encode()[:80])
        ack = peer.read_ack()
        assert (ack.code, ack.control_id) == ("AR", "STALL")
        assert "not completed" in ack.note
        _good_message_still_works(peer)


def test_many_connections_at_once(hl7_address: Address, db: Session) -> None:
    peers = [MllpPeer(*hl7_address) for _ in range(6)]
    try:
        for n, peer in enumerate(peers):
            peer.send_raw(START + adt("A01", f"C{n}", mrn=f"M{n}", visit=f"V{n}").encode() + END)
        assert [peer.read_ack().code for peer in peers] == ["AA"] * 6
    finally:
        for peer in peers:
            peer.close()
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 6


def test_no_ack_while_nothing_can_be_stored_and_the_resend_is_applied(
    hl7_address: Address, db: Session
) -> None:
    db.execute(sa.text("ALTER TABLE hl7_messages RENAME TO hl7_messages_away"))  # the store is unusable
    db.commit()
    try:
        with MllpPeer(*hl7_address) as peer, pytest.raises(OSError):
            peer.send(adt("A01", "DOWN1"))  # closed without an ACK: the engine keeps the message
    finally:
        db.execute(sa.text("ALTER TABLE hl7_messages_away RENAME TO hl7_messages"))
        db.commit()
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "DOWN1")).code == "AA"
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1
