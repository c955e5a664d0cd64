"""A rotation SIGKILLed mid-run (a real process, killed between chunks of the chunked write-back) leaves
every value readable under the ring, and a fresh `keys rotate` job finishes the work: every value then
names the new key and reads under the new key alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Patient, WorkJob, WorkState
from backend.security import rotation
from backend.security.crypto import current_cipher
from backend.work.runs import run_job, start
from tests import factories
from tests.backend.security.test_phi_at_rest import KEY_A, KEY_B, _b64, _use_ring

ROOT = Path(__file__).resolve().parents[3]
PEOPLE = 120

# the job with chunks of 10 rows, each write-back followed by a pause: it prints once two chunks are
# committed, then keeps going until the test kills it
_SLOW_ROTATION = """
import sys, time
from backend.app.db import session_scope
from backend.security import rotation
from backend.work.runs import run_job, start

rotation.CHUNK = 10
chunked = rotation.write_back
written = []

def slow(session, col, renewals):
    n = chunked(session, col, renewals)
    if not renewals:  # an empty table's column
        return n
    written.append(n)
    if len(written) == 3:  # two chunks committed with their checkpoints, the third in its transaction
        print("mid-rotation", flush=True)
    time.sleep(0.2)
    return n

rotation.write_back = slow
with session_scope() as session:
    job_id = start(session, rotation.ROTATE_KIND, {}, None).id
print(job_id, flush=True)
run_job(job_id)
print("finished", flush=True)
"""


def _names(db: Session) -> list[tuple[str, str, str | None]]:
    """Every patient's identifiers, decrypted through the models."""
    db.expire_all()
    return [(p.mrn, p.name, p.phone) for p in db.scalars(sa.select(Patient).order_by(Patient.id))]


def _prefixes(db: Session) -> dict[str, int]:
    """How many of the patients' MRNs, names and phones each key sealed (the MRNs are walked first)."""
    found: dict[str, int] = {}
    for row in db.execute(sa.text("SELECT mrn, name, phone FROM patients")):
        for token in row:
            prefix = str(token).partition(":")[0]
            found[prefix] = found.get(prefix, 0) + 1
    return found


def test_a_rotation_killed_mid_chunk_leaves_everything_readable_and_a_rerun_finishes(
    database_url: str, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_ring(monkeypatch, current=KEY_A, previous=[], cipher="aes-gcm")
    for n in range(PEOPLE):
        factories.patient(db, name=f"Người bệnh {n}")
    db.commit()
    expected = _names(db)
    old_prefix = current_cipher().current_prefix
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher="aes-gcm")
    new_prefix = current_cipher().current_prefix

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CARELOOP_DATA_KEY": _b64(KEY_B),
        "CARELOOP_DATA_KEYS_PREVIOUS": _b64(KEY_A),
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_ROTATION], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        job_id = int(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "mid-rotation"
    finally:
        proc.kill()  # SIGKILL: no rollback from the process, no last checkpoint
        proc.wait(timeout=30)

    # half-way: some values under B, the rest under A, and every one of them reads
    half = _prefixes(db)
    assert set(half) == {old_prefix, new_prefix} and half[new_prefix] >= 20, half
    assert _names(db) == expected
    killed = db.get_one(WorkJob, job_id)
    assert killed.state is WorkState.RUNNING and killed.done >= 20  # the checkpoints that committed

    # a new `keys rotate` job finishes the work; what the killed one wrote counts as current
    again = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(again.id)
    db.refresh(again)
    assert again.state is WorkState.DONE and again.error_count == 0
    assert again.counts["rewritten"] + half[new_prefix] >= 3 * PEOPLE
    assert _prefixes(db) == {new_prefix: 3 * PEOPLE}
    _use_ring(monkeypatch, current=KEY_B, previous=[], cipher="aes-gcm")
    monkeypatch.delenv("CARELOOP_DATA_KEYS_PREVIOUS")
    assert _names(db) == expected
