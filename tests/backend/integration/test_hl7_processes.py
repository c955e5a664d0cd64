"""`careloop hl7-listen` with several processes on one port (CARELOOP_HL7_PROCESSES): connections are spread
over the processes, every message is acknowledged after its commit, and a process killed between its
commit and its ACK is replaced while the others keep serving; the resend is applied once."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Encounter, Hl7Message, Hl7Status, Patient
from tests.backend.integration.hl7_peer import MllpPeer, adt
from tests.backend.integration.test_hl7_crash import ROOT, Listener

CONNECTIONS = 12  # all on one of two processes by chance: 1 in 2,048
SERVED = re.compile(r"INFO (\d+) backend\.integration\.mllp hl7 connection from")


@pytest.fixture
def two_processes(database_url: str) -> Iterator[Listener]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=database_url,
        PYTHONPATH=str(ROOT),
        CARELOOP_HL7_PROCESSES="2",
        CARELOOP_HL7_CRASH_AFTER_COMMIT="KILL2",
    )
    listener = Listener(env)
    yield listener
    listener.stop()


def test_processes_share_the_port_and_a_killed_one_is_replaced(two_processes: Listener, db: Session) -> None:
    address = two_processes.address
    assert address is not None
    peers = [MllpPeer(*address) for _ in range(CONNECTIONS)]
    try:
        for i, peer in enumerate(peers):
            ack = peer.send(adt("A01", f"P{i}", mrn=f"MRN{i}", visit=f"V{i}"))
            assert (ack.code, ack.control_id) == ("AA", f"P{i}")
        for i, peer in enumerate(peers):  # each connection again, after the others: still in step
            assert peer.send(adt("A08", f"U{i}", mrn=f"MRN{i}", visit=f"V{i}")).code == "AA"
    finally:
        for peer in peers:
            peer.close()
    served = {int(m.group(1)) for line in list(two_processes.lines) if (m := SERVED.search(line))}
    assert len(served) == 2, served

    discharge = adt("A03", "KILL2", mrn="MRN0", visit="V0", discharge="20261205100000")
    with MllpPeer(*address) as peer, pytest.raises(OSError):
        peer.send(discharge)  # the process that committed it dies before the ACK
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("starting another" in line for line in two_processes.lines):
        time.sleep(0.1)
    with MllpPeer(*address) as peer:  # the engine's resend, served by whichever process is listening
        ack = peer.send(
            adt("A03", "KILL2", mrn="MRN0", visit="V0", discharge="20261205100000", sent="20261205100100")
        )
        assert (ack.code, ack.control_id) == ("AA", "KILL2")
    two_processes.stop()
    assert two_processes.proc.returncode == 0

    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == CONNECTIONS
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == CONNECTIONS
    rows = db.scalars(sa.select(Hl7Message)).all()
    assert len(rows) == 2 * CONNECTIONS + 1  # the resend found the committed row
    assert {row.status for row in rows} == {Hl7Status.APPLIED}
    assert db.scalar(sa.select(Encounter.ended_at).join(Hl7Message, Hl7Message.encounter_id == Encounter.id)
                     .where(Hl7Message.control_id == "KILL2")) is not None  # fmt: skip
    _ = signal  # SIGKILL is the receiver's own test hook
