"""Retention and erasure at volume on PostgreSQL: blanking old message texts in batches, anonymising one
patient with many rows, and collecting one patient's export.

Run from the repository root (no arguments):

    PYTHONPATH=. python bench/retention.py [--messages N] [--batch B]

A fresh database (``careloop_bench_<random>``, dropped at the end) is migrated and seeded with
``--messages`` inbound messages (default 200,000) spread over 2,000 patients' SMS conversations, 90 %
of them older than the message retention period; the rest are recent and must stay. Then the retention
job's own batch function (backend.privacy.retention.blank_messages) runs batch after batch, each its own
transaction, as the periodic job does: ``blank_per_s`` is rows blanked per second, ``batch_ms_p50`` and
``batch_ms_max`` how long one batch transaction holds its row locks (what a concurrent writer may wait
for). A second full run (``second_run_ms``) shows what the hourly job costs when nothing is due.

``anonymise_ms`` is the time to anonymise one patient with 2,000 messages (wipe_patient and commit), and
``export_collect_ms`` the time to gather the same patient's export (FHIR resources and PDF rows, without
the PDF itself). The output ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import fixed_env, migrated_database, report  # noqa: E402

PATIENTS = 2_000
BIG = 2_000  # messages of the patient anonymised and exported


def seed(messages: int) -> tuple[int, int]:
    """Patients, conversations and messages written in bulk; the id of the patient with BIG messages."""
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import Conversation, Direction, Message, MessageStatus, Patient
    from backend.models.base import utcnow
    from bots.domain import Channel

    now = utcnow()
    with session_scope() as session:
        people = [
            Patient(
                mrn=f"B{n:07d}",
                name=f"Bench {n}",
                language="en",
                timezone="Asia/Shanghai",
                phone=f"+86139{n:08d}",
            )
            for n in range(PATIENTS)
        ]
        session.add_all(people)
        session.flush()
        conversations = [
            Conversation(patient_id=p.id, channel=Channel.SMS, address=f"b-{p.id}") for p in people
        ]
        session.add_all(conversations)
        session.flush()
        conv_ids = [c.id for c in conversations]
        big_patient = people[0].id
    per = max(1, (messages - BIG) // PATIENTS)
    rows = []
    for i in range(messages - BIG):
        old = i % 10 != 0
        rows.append(
            {
                "conversation_id": conv_ids[1 + i % (PATIENTS - 1)],
                "channel": Channel.SMS,
                "direction": Direction.INBOUND,
                "status": MessageStatus.PROCESSED,
                "text": f"my blood pressure was {120 + i % 40} today, message {i}",
                "created_at": now - timedelta(days=4000 if old else 10, seconds=i),
            }
        )
    rows += [
        {
            "conversation_id": conv_ids[0],
            "channel": Channel.SMS,
            "direction": Direction.INBOUND,
            "status": MessageStatus.PROCESSED,
            "text": f"recent message {i} of the big patient",
            "created_at": now - timedelta(days=1, seconds=i),
        }
        for i in range(BIG)
    ]
    started = time.perf_counter()
    for start in range(0, len(rows), 20_000):
        with session_scope() as session:
            session.execute(sa.insert(Message), rows[start : start + 20_000])
    print(
        f"  seeded {len(rows)} messages ({per} per patient) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return big_patient, sum(1 for i in range(messages - BIG) if i % 10 != 0)


def blank_all(batch: int) -> tuple[int, list[float]]:
    from backend.app.db import session_scope
    from backend.app.settings import get_settings
    from backend.models.base import utcnow
    from backend.privacy.retention import blank_messages

    cutoff = utcnow() - timedelta(days=get_settings().retention_message_days)
    total, times = 0, []
    while True:
        started = time.perf_counter()
        with session_scope() as session:
            changed = blank_messages(session, cutoff, batch)
        times.append((time.perf_counter() - started) * 1000)
        total += changed
        if changed < batch:
            return total, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with migrated_database(fixed_env) as url:
        os.environ.update(fixed_env(url))
        big_patient, due = seed(args.messages)
        started = time.perf_counter()
        blanked, batches = blank_all(args.batch)
        seconds = time.perf_counter() - started
        assert blanked == due, (blanked, due)
        again_started = time.perf_counter()
        again, _ = blank_all(args.batch)
        second_ms = (time.perf_counter() - again_started) * 1000
        assert again == 0

        from backend.app.db import session_scope
        from backend.models import Patient, RightsKind
        from backend.privacy.erasure import wipe_patient
        from backend.privacy.export import collect

        started = time.perf_counter()
        with session_scope() as session:
            patient = session.get(Patient, big_patient)
            assert patient is not None
            collected = collect(session, patient)
        export_ms = (time.perf_counter() - started) * 1000
        assert len(collected.rows["messages"]) == BIG
        started = time.perf_counter()
        with session_scope() as session:
            patient = session.get(Patient, big_patient)
            assert patient is not None
            counts = wipe_patient(session, patient, RightsKind.ANONYMISATION)
        anonymise_ms = (time.perf_counter() - started) * 1000
        assert counts["messages"] == BIG
    ordered = sorted(batches)
    print(
        f"blanked {blanked} of {args.messages} messages in {seconds:.1f} s: {blanked / seconds:.0f} rows/s;"
        f" batch of {args.batch}: median {statistics.median(ordered):.1f} ms, max {ordered[-1]:.1f} ms"
    )
    print(f"second run with nothing due: {second_ms:.0f} ms")
    print(
        f"one patient with {BIG} messages: export collected in {export_ms:.0f} ms, anonymised in {anonymise_ms:.0f} ms"
    )
    report(
        {
            "bench": "retention",
            "messages": args.messages,
            "blanked": blanked,
            "batch": args.batch,
            "blank_per_s": round(blanked / seconds),
            "batch_ms_p50": round(statistics.median(ordered), 1),
            "batch_ms_max": round(ordered[-1], 1),
            "second_run_ms": round(second_ms),
            "export_collect_ms": round(export_ms),
            "anonymise_ms": round(anonymise_ms),
        }
    )


if __name__ == "__main__":
    main()
