"""The cost of the audit hash chain on a write-heavy path, on PostgreSQL.

Each transaction writes one audit row and commits, the way a staff action or a record view does. Two
ways, with 1 and with 4 concurrent writers (threads, each with its own connection):

- `plain`: the row added directly, never sealed: what an audit write cost before the chain;
- `sealed`: through `backend.services.audit.record` (inserted unsealed) while a sealer thread runs
  `run_sealer` every `--seal-every` seconds, as the periodic job does: the writers never take the chain
  head's lock, the sealer does, one short transaction per batch.

For each: transactions per second and the commit's p50/p95 latency; for `sealed`, also the longest a row
waited for the sealer (the oldest unsealed row's age each time the sealer started) and how long the final
catch-up took after the writers stopped. Then the sealer's own rate over a backlog of unsealed rows, and
`careloop audit verify`'s walk over every sealed row (rows per second), which also proves the concurrent
writers and the sealer left one valid chain. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import percentile, postgres_database, report  # noqa: E402


def _sealer_loop(stop: threading.Event, every: float, waits: list[float]) -> None:
    """The periodic job's work on a fixed beat; notes the oldest unsealed row's age at each start."""
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import AuditEvent
    from backend.models.base import utcnow
    from backend.security.audit_chain import run_sealer

    while not stop.wait(every):
        with session_scope() as session:
            oldest = session.scalar(sa.select(sa.func.min(AuditEvent.at)).where(AuditEvent.seq.is_(None)))
        if oldest is not None:
            waits.append((utcnow() - oldest).total_seconds())
        run_sealer()


def _run(mode: str, writers: int, per_writer: int, seal_every: float) -> dict[str, float]:
    from backend.app.db import session_scope
    from backend.models import AuditEvent
    from backend.security.audit_chain import run_sealer
    from backend.services import audit

    latencies: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def work(writer: int) -> None:
        mine = []
        barrier.wait()
        for n in range(per_writer):
            started = time.perf_counter_ns()
            with session_scope() as session:
                if mode == "sealed":
                    audit.record(session, "bench.write", subject=("bench", n), writer=writer)
                else:
                    session.add(
                        AuditEvent(action="bench.write", subject_type="bench", subject_id=n, detail={})
                    )
            mine.append(time.perf_counter_ns() - started)
        with lock:
            latencies.extend(mine)

    stop, waits = threading.Event(), list[float]()
    sealer = threading.Thread(target=_sealer_loop, args=(stop, seal_every, waits))
    if mode == "sealed":
        sealer.start()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    result = {
        "tx_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
    }
    if mode == "sealed":
        stop.set()
        sealer.join()
        catch_up = time.perf_counter()
        run_sealer()
        result["max_wait_s"] = round(max(waits, default=0.0), 2)
        result["catch_up_s"] = round(time.perf_counter() - catch_up, 3)
    return result


def _seal_rate(rows: int) -> dict[str, float]:
    """The sealer alone over a backlog of `rows` committed, unsealed rows (as after an outage)."""
    from backend.app.db import session_scope
    from backend.models import AuditEvent
    from backend.security.audit_chain import run_sealer

    with session_scope() as session:
        session.add_all(
            AuditEvent(action="bench.backlog", subject_type="bench", subject_id=n, detail={"n": n})
            for n in range(rows)
        )
    started = time.perf_counter()
    sealed = run_sealer()
    elapsed = time.perf_counter() - started
    return {"seal_backlog_rows": sealed, "seal_rows_per_s": round(sealed / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-writer", type=int, default=400, help="transactions per writer and run")
    parser.add_argument("--seal-every", type=float, default=1.0, help="the sealer thread's interval (s)")
    parser.add_argument("--backlog", type=int, default=20_000, help="unsealed rows for the sealer's rate")
    args = parser.parse_args()
    with postgres_database() as (url, _name):
        os.environ.update(
            DATABASE_URL=url,
            CARELOOP_ENV_FILE="/nonexistent/careloop.env",
            CARELOOP_SECRET_KEY="bench-secret-" + "x" * 40,
            CARELOOP_DATA_KEY=base64.b64encode(bytes(range(32))).decode(),
        )
        from sqlalchemy import delete

        from backend.app.db import dispose_engines, session_scope
        from backend.app.migrate import upgrade
        from backend.app.settings import get_settings
        from backend.models import AuditEvent
        from backend.security.audit_verify import verify_chain

        upgrade(url)
        figures: dict[str, object] = {"load": os.getloadavg()[0]}
        for writers in (1, 4):
            for mode in ("plain", "sealed"):
                _run(mode, writers, 20, args.seal_every)  # warm the pool and the statement caches
                result = _run(mode, writers, args.per_writer, args.seal_every)
                print(f"{mode:6} writers={writers}: {result}", flush=True)
                for name, value in result.items():
                    figures[f"{mode}_w{writers}_{name}"] = value
                if mode == "plain":
                    with session_scope() as session:  # the baseline's rows are not the sealed run's work
                        session.execute(delete(AuditEvent).where(AuditEvent.seq.is_(None)))
        seal = _seal_rate(args.backlog)
        print(f"sealer: {seal}", flush=True)
        figures.update(seal)
        started = time.perf_counter()
        with session_scope() as session:
            verdict = verify_chain(session, get_settings().audit_key_bytes)
        elapsed = time.perf_counter() - started
        print(
            f"verify: {verdict.checked} rows in {elapsed:.2f} s, ok={verdict.ok} pending={verdict.pending} "
            f"{verdict.problem or ''}"
        )
        figures.update(
            verify_rows=verdict.checked,
            verify_rows_per_s=round(verdict.checked / elapsed),
            chain_ok=verdict.ok and verdict.pending == 0,
        )
        dispose_engines()
    report(figures)


if __name__ == "__main__":
    main()
