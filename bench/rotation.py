"""Key rotation's rate on PostgreSQL: rows re-encrypted per second by `careloop keys rotate`'s job over
sealed message texts, with one UPDATE per row (how the job wrote before; 20,000 texts) and with one
`UPDATE … FROM unnest(…)` per chunk of 500 (backend/security/rotation_writes.py; 100,000 texts).

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (a scratch database is made and dropped):

    PYTHONPATH=. python bench/rotation.py [--rows 100000]

Each way rotates to a fresh key (A to B per row; then, with the rest added under B, B to C per chunk)
through the real job (start + run_job: chunks committed with their checkpoints), and checks afterwards
that every value names the new key and that a sample decrypts. Wall time, so the figures move with the machine's load (printed).
The output ends with one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import postgres_database, report

KEYS = [bytes(range(32)), os.urandom(32), os.urandom(32)]


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _use_ring(current: int) -> None:
    """Key `current` encrypts; the older ones still decrypt (as after the operator's restart)."""
    from backend.app import db as db_module
    from backend.app import settings
    from backend.security import crypto

    os.environ["CARELOOP_DATA_KEY"] = _b64(KEYS[current])
    os.environ["CARELOOP_DATA_KEYS_PREVIOUS"] = ",".join(_b64(k) for k in reversed(KEYS[:current]))
    db_module.dispose_engines()
    settings.get_settings.cache_clear()
    crypto.cipher_for.cache_clear()


def _conversation() -> int:
    """One patient's conversation, for the messages."""
    from backend.app.db import session_scope
    from backend.models import Conversation, Patient
    from bots.domain import Channel

    with session_scope() as session:
        person = Patient(name="Bench Patient", mrn="BENCH-1", language="zh-CN", timezone="Asia/Shanghai")
        session.add(person)
        session.flush()
        conversation = Conversation(patient_id=person.id, channel=Channel.SMS, address="bench")
        session.add(conversation)
        session.flush()
        return conversation.id


def _fill(conversation_id: int, first: int, rows: int) -> None:
    """Messages numbered first..rows-1, each text sealed under the current key."""
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import Message
    from backend.models.messaging import Direction, MessageStatus
    from bots.domain import Channel

    text = "我昨天出院以后伤口有点渗血，今天早上量体温37.8度，需要回医院吗？"
    for start in range(first, rows, 10_000):
        with session_scope() as session:
            session.execute(
                sa.insert(Message),
                [
                    {
                        "conversation_id": conversation_id,
                        "channel": Channel.SMS,
                        "direction": Direction.INBOUND,
                        "status": MessageStatus.RECEIVED,
                        "text": f"{text} #{n}",
                    }
                    for n in range(start, min(rows, start + 10_000))
                ],
            )


def _rotate(per_row: bool) -> dict[str, Any]:
    """The whole job once; rows/s over the values it rewrote."""
    from backend.app.db import session_scope
    from backend.models import WorkJob
    from backend.security import rotation, rotation_writes
    from backend.work.runs import run_job, start

    if per_row:  # the job as it wrote before: one statement per row
        setattr(rotation, "write_back", rotation_writes._write_each)  # noqa: B010
    try:
        with session_scope() as session:
            job_id = start(session, rotation.ROTATE_KIND, {}, None).id
        started = time.perf_counter()
        run_job(job_id)
        elapsed = time.perf_counter() - started
    finally:
        setattr(rotation, "write_back", rotation_writes.write_back)  # noqa: B010
    with session_scope() as session:
        job = session.get_one(WorkJob, job_id)
        rewritten = int(job.counts.get("rewritten", 0))
        state, errors = job.state.value, job.error_count
    return {"rewritten": rewritten, "seconds": round(elapsed, 2), "rows_per_s": round(rewritten / elapsed),
            "state": state, "errors": errors}  # fmt: skip


def _check(rows: int) -> None:
    """Every stored text names the current key, and the newest few decrypt to what was written."""
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import Message
    from backend.security.crypto import current_cipher

    prefix = current_cipher().current_prefix
    with session_scope() as session:
        stale = session.scalar(
            sa.select(sa.func.count()).select_from(sa.table("messages", sa.column("text")))
            .where(~sa.column("text").startswith(prefix + ":"))
        )  # fmt: skip
        texts = session.scalars(sa.select(Message.text).order_by(Message.id.desc()).limit(3)).all()
    if stale or not all(t.endswith(f"#{rows - 1 - i}") for i, t in enumerate(texts)):
        raise SystemExit(f"rotation left {stale} values under another key, or texts read wrong: {texts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="sealed texts the chunked job rotates")
    parser.add_argument(
        "--per-row-rows",
        type=int,
        default=20_000,
        help="sealed texts the per-row job rotates (the first ones)",
    )
    args = parser.parse_args()
    with postgres_database() as (url, _name):
        os.environ.update(
            DATABASE_URL=url,
            CARELOOP_ENV_FILE="/nonexistent/careloop.env",
            CARELOOP_SECRET_KEY="bench-secret-" + "x" * 40,
            CARELOOP_INDEX_KEY=_b64(KEYS[0]),
            CARELOOP_MEDIA_DIR=tempfile.mkdtemp(prefix="careloop-bench-media-"),
        )
        os.environ.pop("REDIS_URL", None)  # the job runs in this process
        _use_ring(0)
        from backend.app.db import dispose_engines
        from backend.app.migrate import upgrade

        upgrade(url)
        conversation_id = _conversation()
        figures: dict[str, Any] = {"rows": args.rows, "per_row_rows": args.per_row_rows}
        # the old way on a part of the rows (at ~150 rows/s on a loaded machine, all of them would
        # take over ten minutes), then the rest added and the chunked way on all of them
        for label, current, per_row, rows in (
            ("per_row", 1, True, args.per_row_rows),
            ("per_chunk", 2, False, args.rows),
        ):
            started = time.perf_counter()
            _fill(conversation_id, figures.get("filled", 0), rows)
            figures["filled"] = rows
            print(f"filled {rows} sealed texts in {time.perf_counter() - started:.1f} s", flush=True)
            _use_ring(current)
            result = _rotate(per_row)
            _check(rows)
            print(f"{label:9}: {result}", flush=True)
            if result["rewritten"] < rows or result["errors"]:  # the patient's own values too
                raise SystemExit(f"{label}: expected {rows} rewritten without errors: {result}")
            figures[f"{label}_rows_per_s"] = result["rows_per_s"]
            figures[f"{label}_seconds"] = result["seconds"]
        figures["speed_up"] = round(figures["per_chunk_rows_per_s"] / figures["per_row_rows_per_s"], 1)
        figures["load"] = round(os.getloadavg()[0], 1)
        dispose_engines()
    report(figures)


if __name__ == "__main__":
    main()
