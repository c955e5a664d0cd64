"""Nothing acknowledged is lost and nothing is applied twice when the listener dies between its commit
and its ACK: `careloop hl7-listen` in a subprocess killed with SIGKILL at exactly that point, restarted,
and sent the same message again, as the sender's engine does when no ACK came."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Encounter, FollowUpPlan, Hl7Message, Hl7Status, OutreachTask, Patient
from tests import factories
from tests.backend.integration.hl7_peer import MllpPeer, adt

ROOT = Path(__file__).resolve().parents[3]
LISTENING = re.compile(r"hl7 listening on ([\d.]+):(\d+)")


class Listener:
    """`careloop hl7-listen` on a free port; a thread drains its output (a full pipe would block it)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.app.cli", "hl7-listen", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: deque[str] = deque(maxlen=400)
        self.address: tuple[str, int] | None = None
        self._bound = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._bound.wait(30):
            self.stop()
            raise AssertionError("the listener did not start:\n" + "".join(self.lines))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = LISTENING.search(line)
            if match:
                self.address = (match.group(1), int(match.group(2)))
                self._bound.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def listener_env(database_url: str) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    yield env


def test_killed_between_commit_and_ack_then_resent_is_applied_once(
    listener_env: dict[str, str], db: Session
) -> None:
    department = factories.department(db, code="CARD")
    db.add(
        FollowUpPlan(
            name="discharge",
            questionnaire_id="recovery",
            encounter_kinds=["discharge"],
            department_ids=[department.id],
            offsets_days=[1, 7],
            channels=["webchat"],
            send_hour=10,
        )
    )
    db.commit()
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    discharge = adt("A03", "KILL1", discharge=now, sent="20261205100000")

    doomed = Listener({**listener_env, "CARELOOP_HL7_CRASH_AFTER_COMMIT": "KILL1"})
    assert doomed.address is not None
    with MllpPeer(*doomed.address) as peer, pytest.raises(OSError):
        peer.send(discharge)  # the connection drops: no ACK came
    assert doomed.proc.wait(timeout=10) == -signal.SIGKILL
    db.expire_all()
    row = db.scalars(sa.select(Hl7Message)).one()
    assert row.status is Hl7Status.APPLIED  # committed before the ACK that never went out

    listener = Listener(listener_env)
    try:
        assert listener.address is not None
        with MllpPeer(*listener.address) as peer:
            ack = peer.send(adt("A03", "KILL1", discharge=now, sent="20261205100100"))  # the engine's resend
            assert (ack.code, ack.control_id) == ("AA", "KILL1")
            assert peer.send(adt("A08", "AFTER1")).code == "AA"
    finally:
        listener.stop()
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 2
    assert db.scalar(sa.select(sa.func.count()).select_from(Hl7Message)) == 2
    assert listener.proc.returncode == 0


def test_listener_stops_cleanly_on_sigterm(listener_env: dict[str, str]) -> None:
    listener = Listener(listener_env)
    started = time.monotonic()
    listener.stop()
    assert listener.proc.returncode == 0 and time.monotonic() - started < 10
